//! Network-wide outbound masquerade, reference-counted by attachment records: the first
//! attachment of a network installs the rule, the last one to leave removes it, so a
//! steady-state ADD or DEL costs no firewall call at all.

use std::fs::File;

use crate::error::Result;
use crate::firewall::{Firewall, Masquerade};
use crate::state::{file_key, StateDir};

fn lock(dir: &StateDir, network: &str) -> Result<File> {
    crate::state::lock_file(&dir.path().join(format!(".{}.lock", file_key(&[network]))))
}

fn others(dir: &StateDir, network: &str, holder: &str) -> bool {
    let prefix = format!("{}~", file_key(&[network]));
    dir.keys().iter().any(|k| k.starts_with(&prefix) && k != holder)
}

/// Records `holder` (an attachment key made with `file_key(&[network, id, ifname])`) and
/// installs `masq` if it is the network's first attachment.
pub fn hold(dir: &StateDir, fw: &dyn Firewall, network: &str, holder: &str, masq: &[Masquerade]) -> Result<()> {
    let _lock = lock(dir, network)?;
    let first = !others(dir, network, holder);
    dir.save(holder, &masq)?;
    if first {
        for m in masq {
            if let Err(e) = fw.add_masquerade(m) {
                let _ = dir.remove(holder);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Forgets `holder` and removes the network's masquerade when it was the last attachment.
/// `fallback` is used when the record is gone (state lost): DEL still cleans up.
pub fn release(dir: &StateDir, fw: &dyn Firewall, network: &str, holder: &str, fallback: &[Masquerade]) -> Result<()> {
    let _lock = lock(dir, network)?;
    let masq: Vec<Masquerade> = dir.load(holder).unwrap_or_else(|| fallback.to_vec());
    dir.remove(holder)?;
    if !others(dir, network, holder) {
        for m in &masq {
            fw.remove_masquerade(m)?;
        }
    }
    Ok(())
}

/// The masquerade rules `holder` relies on, for CHECK.
pub fn held(dir: &StateDir, holder: &str) -> Option<Vec<Masquerade>> {
    dir.load(holder)
}

/// Every attachment key recorded for `network`, for GC.
pub fn holders(dir: &StateDir, network: &str) -> Vec<String> {
    let prefix = format!("{}~", file_key(&[network]));
    dir.keys().into_iter().filter(|k| k.starts_with(&prefix)).collect()
}
