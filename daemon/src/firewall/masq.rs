//! ptp's `ipMasq`: records what each attachment's own masquerade installed (so DEL, CHECK
//! and GC use the backend and addresses of the ADD, even when the container's netns is
//! gone — the reference reads the addresses back from the interface and leaks the rules
//! when it cannot).

use std::path::Path;

use crate::error::Result;
use crate::firewall::{self, Firewall, MasqRules};
use crate::state::{file_key, lock_file, StateDir};

/// Where masquerade records live and which backend new ones use.
pub struct Masqs {
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

impl Masqs {
    /// Opens the records under `run_dir` with backend `kind` (`auto`, `iptables`, `nftables`).
    pub fn open(run_dir: &Path, kind: &str) -> Result<Self> {
        Ok(Self {
            state: crate::records::Record::CniMasq.open(run_dir)?,
            lock: run_dir.join("cni-masq.lock"),
            run_dir: run_dir.to_path_buf(),
            fw: firewall::select(kind, run_dir, firewall::DEFAULT_MARK_BIT)?,
        })
    }

    fn with_recorded<R>(&self, m: &MasqRules, f: impl FnOnce(&dyn Firewall) -> R) -> R {
        firewall::as_recorded(self.fw.as_ref(), m.backend, firewall::DEFAULT_MARK_BIT, &self.run_dir, f)
    }

    /// Installs `m` (all or nothing); a previous record of the attachment is replaced.
    pub fn add(&self, m: &MasqRules) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        let k = key(&m.network, &m.container_id, &m.ifname);
        if let Some(old) = self.state.load::<MasqRules>(&k) {
            self.with_recorded(&old, |fw| fw.remove_masq(&old))?;
        }
        let m = MasqRules { backend: self.fw.backend(), ..m.clone() };
        // Recorded first: a kill before the rules are in still lets DEL find them.
        self.state.save(&k, &m)?;
        if let Err(e) = self.fw.add_masq(&m) {
            let _ = self.fw.remove_masq(&m);
            let _ = self.state.remove(&k);
            return Err(e);
        }
        Ok(())
    }

    /// Removes what an attachment installed; nothing recorded is success.
    pub fn del(&self, network: &str, container_id: &str, ifname: &str) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        let k = key(network, container_id, ifname);
        if let Some(m) = self.state.load::<MasqRules>(&k) {
            self.with_recorded(&m, |fw| fw.remove_masq(&m))?;
        }
        self.state.remove(&k)
    }

    /// The record of an attachment, if any.
    pub fn record(&self, network: &str, container_id: &str, ifname: &str) -> Option<MasqRules> {
        self.state.load(&key(network, container_id, ifname))
    }

    /// Checks the recorded attachment's rules are in place.
    pub fn check(&self, m: &MasqRules) -> Result<()> {
        self.with_recorded(m, |fw| fw.check_masq(m))
    }

    /// Removes every record of `network` whose key is not in `valid`.
    pub fn gc(&self, network: &str, valid: &[String]) -> Result<()> {
        let _lock = lock_file(&self.lock)?;
        for k in self.state.keys() {
            let Some(m) = self.state.load::<MasqRules>(&k) else { continue };
            if m.network == network && !valid.contains(&k) {
                self.with_recorded(&m, |fw| fw.remove_masq(&m))?;
                self.state.remove(&k)?;
            }
        }
        Ok(())
    }
}
