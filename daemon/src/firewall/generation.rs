//! The nf_tables ruleset generation: a counter the kernel bumps on every ruleset change
//! (iptables-nft and nft alike). Reading it is one netlink round trip, so a watcher can
//! notice that something changed the firewall without listing any table.

use std::io;

/// The current generation; an error where nf_tables is missing. Asked over the
/// process's one nf_tables socket, so a watcher polling it opens and closes none.
pub fn current() -> io::Result<u32> {
    super::nft::msg::with_conn(|c| c.generation())
}
