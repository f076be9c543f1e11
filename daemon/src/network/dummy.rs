//! dummy links: an interface with addresses and no wire, made straight in the
//! container's netns under its name. Kernels built without the kind (this project's CI
//! among them) refuse it: that is [`Error::KernelLacks`], with nothing made.

use super::bridge::{bring_up, configure_container, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{Link, Socket};
use crate::netns::NetNs;

/// Creates dummy `ifname` in `netns`, configured with `cfg` (None: only up).
pub fn attach(netns: &NetNs, ifname: &str, cfg: Option<&IfaceConfig>) -> Result<Link> {
    match Socket::open()?.create_dummy(ifname, Some(netns.fd())) {
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => return Err(Error::KernelLacks("dummy")),
        Err(e) if e.errno() == Some(libc::EEXIST) => return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display()))),
        r => r?,
    }
    let result = netns.run(|| match cfg {
        Some(cfg) => configure_container(ifname, cfg, cfg.ipv6_off()),
        None => bring_up(ifname),
    });
    if result.is_err() {
        let _ = super::bridge::detach(Some(netns.path()), ifname);
    }
    result
}
