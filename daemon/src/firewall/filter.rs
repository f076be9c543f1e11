//! The CNI `firewall` plugin's engine: records what each attachment installed (so DEL,
//! CHECK and GC use the backend and rules of the ADD) and keeps a bridge's isolation while
//! any attachment on it asked for it.

use std::path::Path;

use crate::error::Result;
use crate::firewall::{self, FilterRules, Firewall};
use crate::state::{file_key, lock_file, StateDir};

/// Where `firewall` plugin records live and which backend new ones use.
pub struct Filters {
    state: StateDir,
    lock: std::path::PathBuf,
    run_dir: std::path::PathBuf,
    /// The backend for new attachments.
    pub fw: Box<dyn Firewall>,
}

/// The record key of an attachment.
pub fn key(network: &str, container_id: &str, ifname: &str) -> String {
    file_key(&[network, container_id, ifname])
}

impl Filters {
    /// Opens the records under `run_dir` with backend `kind` (`auto`, `iptables`,
    /// `nftables`).
    pub fn open(run_dir: &Path, kind: &str) -> Result<Self> {
        Ok(Self {
            state: crate::records::Record::CniFirewall.open(run_dir)?,
            lock: run_dir.join("cni-firewall.lock"),
            run_dir: run_dir.to_path_buf(),
            fw: firewall::select(kind, run_dir, firewall::DEFAULT_MARK_BIT)?,
        })
    }

    fn recorded(&self) -> Vec<(String, FilterRules)> {
        self.state.keys().into_iter().filter_map(|k| self.state.load::<FilterRules>(&k).map(|r| (k, r))).collect()
    }

    /// Installs `f` (all or nothing); a previous record of the attachment is replaced.
    pub fn add(&self, f: &FilterRules) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        let k = key(&f.network, &f.container_id, &f.ifname);
        if let Some(old) = self.state.load::<FilterRules>(&k) {
            self.remove_record(&k, &old)?;
        }
        let f = FilterRules { backend: self.fw.backend(), ..f.clone() };
        // Recorded first: a kill before the rules are in still lets DEL find them.
        self.state.save(&k, &f)?;
        if let Err(e) = self.fw.add_filter(&f) {
            let _ = self.remove_record(&k, &f);
            return Err(e);
        }
        Ok(())
    }

    /// Removes what an attachment installed: its record's rules, else (no record) those
    /// `fallback` describes. Nothing there is success.
    pub fn del(&self, network: &str, container_id: &str, ifname: &str, fallback: Option<&FilterRules>) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        let k = key(network, container_id, ifname);
        match self.state.load::<FilterRules>(&k).or_else(|| fallback.cloned()) {
            Some(f) => self.remove_record(&k, &f),
            None => Ok(()),
        }
    }

    fn remove_record(&self, k: &str, f: &FilterRules) -> Result<()> {
        self.remove_among(k, f, &self.recorded())
    }

    /// Removes one attachment's rules and record; its bridge's isolation goes unless
    /// another of `records` (a snapshot under the lock) still asks for it.
    fn remove_among(&self, k: &str, f: &FilterRules, records: &[(String, FilterRules)]) -> Result<()> {
        let others = records.iter().filter(|(ok, _)| ok != k).any(|(_, o)| o.isolate.is_some() && o.isolate == f.isolate);
        firewall::as_recorded(self.fw.as_ref(), f.backend, firewall::DEFAULT_MARK_BIT, &self.run_dir, |fw| fw.remove_filter(f, !others))?;
        self.state.remove(k)
    }

    /// The record of an attachment, if any.
    pub fn record(&self, network: &str, container_id: &str, ifname: &str) -> Option<FilterRules> {
        self.state.load(&key(network, container_id, ifname))
    }

    /// Checks the recorded attachment's rules are in place.
    pub fn check(&self, f: &FilterRules) -> Result<()> {
        firewall::as_recorded(self.fw.as_ref(), f.backend, firewall::DEFAULT_MARK_BIT, &self.run_dir, |fw| fw.check_filter(f))
    }

    /// Removes every record of `network` whose key is not in `valid`.
    pub fn gc(&self, network: &str, valid: &[String]) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        // One read of the records, not one per removal.
        let mut records = self.recorded();
        let stale: Vec<(String, FilterRules)> =
            records.iter().filter(|(k, f)| f.network == network && !valid.contains(k)).cloned().collect();
        for (k, f) in stale {
            self.remove_among(&k, &f, &records)?;
            records.retain(|(rk, _)| *rk != k);
        }
        Ok(())
    }
}
