//! A network's own firewall rules (forward acceptance, outbound masquerade),
//! reference-counted by attachment records: the first attachment of a network installs
//! them, the last one to leave removes them, so a steady-state ADD or DEL costs no
//! firewall call at all.

use std::fs::File;
use std::path::Path;

use crate::error::Result;
use crate::firewall::{Firewall, NetworkRules};
use crate::records::{self, Record};
use crate::state::{file_key, StateDir};

/// Opens the endpoint registry of `run`: one record per attachment, whoever made it (the
/// runtime, the CNI bridge plugin, the daemon), so a network's rules are counted once
/// across all of them.
pub fn registry(run: &Path) -> Result<StateDir> {
    Record::Endpoints.open(run)
}

fn lock(dir: &StateDir, network: &str) -> Result<File> {
    crate::state::lock_file(&dir.path().join(format!(".{}.lock", file_key(&[network]))))
}

/// Reconcile's lock (shared), in the run directory above the registry.
fn changing(dir: &StateDir) -> Result<File> {
    records::changing(dir.path().parent().unwrap_or(dir.path()))
}

fn others(dir: &StateDir, network: &str, holder: &str) -> bool {
    let prefix = format!("{}~", file_key(&[network]));
    dir.any_key(|k| k.starts_with(&prefix) && k != holder)
}

/// Records `holder` (an attachment key made with `file_key(&[network, id, ifname])`) and
/// installs `rules` if it is the network's first attachment.
pub fn hold(dir: &StateDir, fw: &dyn Firewall, network: &str, holder: &str, rules: &[NetworkRules]) -> Result<()> {
    let _changing = changing(dir)?;
    let _lock = lock(dir, network)?;
    let first = !others(dir, network, holder);
    let rules: Vec<NetworkRules> = rules.iter().map(|m| NetworkRules { backend: fw.backend(), ..m.clone() }).collect();
    dir.save(holder, &rules)?;
    if first {
        for m in &rules {
            if let Err(e) = fw.ensure_network(m) {
                let _ = dir.remove(holder);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Forgets `holder` and removes the network's rules when it was the last attachment.
/// `fallback` is used when the record is gone (state lost): DEL still cleans up.
pub fn release(dir: &StateDir, fw: &dyn Firewall, network: &str, holder: &str, fallback: &[NetworkRules]) -> Result<()> {
    let _changing = changing(dir)?;
    let _lock = lock(dir, network)?;
    let fallback = || fallback.iter().map(|m| NetworkRules { backend: fw.backend(), ..m.clone() }).collect();
    let rules: Vec<NetworkRules> = dir.load(holder).unwrap_or_else(fallback);
    dir.remove(holder)?;
    if !others(dir, network, holder) {
        let run = dir.path().parent().unwrap_or(dir.path());
        for m in &rules {
            crate::firewall::as_recorded(fw, m.backend, fw.mark_bit(), run, |fw| fw.remove_network(m))?;
        }
    }
    Ok(())
}

/// The network rules `holder` relies on, for CHECK.
pub fn held(dir: &StateDir, holder: &str) -> Option<Vec<NetworkRules>> {
    dir.load(holder)
}

/// The (network, container, interface) an attachment key names: each part a validated
/// name, joined by `~`.
pub fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let mut p = key.splitn(3, '~');
    Some((p.next()?, p.next()?, p.next()?))
}

/// Every attachment key recorded for `network`, for GC.
pub fn holders(dir: &StateDir, network: &str) -> Vec<String> {
    let prefix = format!("{}~", file_key(&[network]));
    dir.keys().into_iter().filter(|k| k.starts_with(&prefix)).collect()
}
