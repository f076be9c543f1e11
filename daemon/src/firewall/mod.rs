//! Firewall rules for port mappings and outbound masquerade, behind one trait so the
//! plugins, the daemon and the runtime share one implementation per backend.

pub mod filter;
pub mod generation;
mod iptables;
pub mod masq;
pub mod nft;
pub mod rules;

pub use iptables::Iptables;
pub use nft::Nftables;
pub use rules::{Backend, FilterRules, MasqRules, NetworkRules, PortRules, LEGACY_HOST_IF};

use crate::error::Result;

/// What every firewall backend provides. Each call is one batch; each backend touches
/// only its own chains; removal tolerates rules already gone.
pub trait Firewall {
    /// Which backend this is, recorded with what it installs.
    fn backend(&self) -> Backend;
    /// The connection-mark bit it uses, recorded likewise.
    fn mark_bit(&self) -> u8;
    /// Installs the DNAT (and hairpin/localhost masquerade) rules of one attachment.
    /// Not idempotent: a caller repeating an ADD removes the previous one first.
    fn add_ports(&self, p: &PortRules) -> Result<()>;
    /// Removes exactly what `add_ports` installed for the attachment.
    fn remove_ports(&self, p: &PortRules) -> Result<()>;
    /// Fails with a precise message if any rule of the attachment is missing.
    fn check_ports(&self, p: &PortRules) -> Result<()>;
    /// Restores missing base chains and rules (the 127.0.0.0/8 drop among them) of both
    /// families; slow (probes each rule), for reconcile only. True if anything was missing.
    fn ensure_base(&self) -> Result<bool>;
    /// Rebuilds the port rules of every attachment in `all` in one batch per family: the
    /// DNAT dispatch chain and each attachment's chain are declared (so emptied) and
    /// refilled, so the result is exactly `all`, whatever was left. For reconcile.
    fn rebuild_ports(&self, all: &[PortRules]) -> Result<()>;
    /// Whether the base jumps are all in place: cheap (a few probes), so a watcher can ask
    /// every time the ruleset changed. A flush or reload removes them first.
    fn base_intact(&self) -> Result<bool>;
    /// Installs a network's own rules (forward acceptance, outbound masquerade, the drop
    /// of traffic routed directly to the subnet).
    fn ensure_network(&self, m: &NetworkRules) -> Result<()>;
    /// Removes them.
    fn remove_network(&self, m: &NetworkRules) -> Result<()>;
    /// Fails if one of them is missing.
    fn check_network(&self, m: &NetworkRules) -> Result<()>;
    /// Re-installs a network's rules if any is missing, as one step under the backend's
    /// lock, so a concurrent attach cannot interleave and leave a copy twice. Returns
    /// whether it did. For reconcile.
    fn repair_network(&self, m: &NetworkRules) -> Result<bool>;
    /// Removes every chain and rule of this backend (`netd cleanup`), nothing else.
    fn cleanup(&self) -> Result<()>;
    /// Installs the `firewall` plugin's rules of one attachment (and its bridge's
    /// isolation, kept once however many attachments ask for it).
    fn add_filter(&self, f: &FilterRules) -> Result<()>;
    /// Removes the attachment's rules, and its bridge's isolation when `last_on_bridge`.
    fn remove_filter(&self, f: &FilterRules, last_on_bridge: bool) -> Result<()>;
    /// Fails with a precise message if one of the attachment's rules is missing.
    fn check_filter(&self, f: &FilterRules) -> Result<()>;
    /// Installs an attachment's own outbound masquerade (ptp `ipMasq`).
    fn add_masq(&self, m: &MasqRules) -> Result<()>;
    /// Removes it; rules already gone are fine.
    fn remove_masq(&self, m: &MasqRules) -> Result<()>;
    /// Fails with a precise message if one of its rules is missing.
    fn check_masq(&self, m: &MasqRules) -> Result<()>;
}

/// The default administrator chain of the `firewall` plugin (iptables).
pub const ADMIN_CHAIN: &str = "BERTH-ADMIN";

/// The default connection-mark bit for hairpin/localhost masquerade (as CNI portmap).
pub const DEFAULT_MARK_BIT: u8 = 13;

/// The environment variable that overrides what `auto` picks (`iptables`, `nftables`).
pub const BACKEND_ENV: &str = "BERTH_FIREWALL";

/// Where the run directory remembers what `auto` found, so every process of a boot
/// agrees and none opens an nf_tables socket only to ask.
const AUTO_FILE: &str = "firewall-auto";

/// What `auto` means here: `$BERTH_FIREWALL` if set, else nftables where the kernel has
/// nf_tables, else iptables; probed once per boot (the answer is kept in `run_dir`).
pub fn default_backend(run_dir: &std::path::Path) -> Result<Backend> {
    if let Ok(v) = std::env::var(BACKEND_ENV) {
        if !v.is_empty() && v != "auto" {
            return parse_backend(&v);
        }
    }
    let file = run_dir.join(AUTO_FILE);
    if let Some(b) = std::fs::read_to_string(&file).ok().and_then(|s| parse_backend(s.trim()).ok()) {
        return Ok(b);
    }
    let b = if Nftables::available() { Backend::Nftables } else { Backend::Iptables };
    // Best effort: without a writable run directory every process probes.
    if std::fs::create_dir_all(run_dir).is_ok() {
        let _ = crate::state::write_atomic(&file, b.to_string().as_bytes());
    }
    Ok(b)
}

fn parse_backend(kind: &str) -> Result<Backend> {
    match kind {
        "iptables" => Ok(Backend::Iptables),
        "nftables" => Ok(Backend::Nftables),
        other => Err(crate::Error::UnknownBackend(other.to_string())),
    }
}

/// Picks the backend by name (`auto`, empty, `iptables`, `nftables`).
pub fn select(kind: &str, run_dir: &std::path::Path, mark_bit: u8) -> Result<Box<dyn Firewall>> {
    let backend = match kind {
        "" | "auto" => default_backend(run_dir)?,
        other => parse_backend(other)?,
    };
    Ok(open(backend, run_dir, mark_bit))
}

/// The backend a record names, to remove or repair what it installed.
pub fn open(backend: Backend, run_dir: &std::path::Path, mark_bit: u8) -> Box<dyn Firewall> {
    match backend {
        Backend::Iptables => Box::new(Iptables::new(run_dir.join("iptables.lock"), mark_bit)),
        Backend::Nftables => Box::new(Nftables::new(run_dir.join("nftables.lock"), mark_bit)),
    }
}

/// Runs `f` with the backend a record was made with: `fw` itself when it is that one,
/// else that backend opened under `run_dir`.
pub fn as_recorded<R>(
    fw: &dyn Firewall,
    backend: Backend,
    mark_bit: u8,
    run_dir: &std::path::Path,
    f: impl FnOnce(&dyn Firewall) -> R,
) -> R {
    if fw.backend() == backend && fw.mark_bit() == mark_bit {
        f(fw)
    } else {
        f(open(backend, run_dir, mark_bit).as_ref())
    }
}
