//! Firewall rules for port mappings and outbound masquerade, behind one trait so the
//! plugins, the daemon and the runtime share one implementation per backend.

pub mod generation;
mod iptables;
pub mod rules;

pub use iptables::Iptables;
pub use rules::{Family, NetworkRules, PortRules, Rule};

use crate::error::Result;

/// What every firewall backend provides. Each call is one batch; each backend touches
/// only its own chains; removal tolerates rules already gone.
pub trait Firewall {
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
}

/// The default connection-mark bit for hairpin/localhost masquerade (as CNI portmap).
pub const DEFAULT_MARK_BIT: u8 = 13;

/// Picks the backend. Only iptables exists today; `auto` resolves to it.
pub fn select(kind: &str, run_dir: &std::path::Path, mark_bit: u8) -> Result<Box<dyn Firewall>> {
    match kind {
        "" | "auto" | "iptables" => Ok(Box::new(Iptables::new(run_dir.join("iptables.lock"), mark_bit))),
        other => Err(crate::Error::UnknownBackend(other.to_string())),
    }
}
