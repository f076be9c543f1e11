//! tap devices made inside the container's netns through `/dev/net/tun` (no `ip`
//! exec): `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR` (and `IFF_MULTI_QUEUE` when asked), the
//! owner and group set, made persistent so it outlives the descriptor; then MTU, MAC, an
//! optional bridge inside the netns, addresses and routes.

use std::os::fd::AsRawFd;

use super::bridge::{bring_up_on, configure_container_on, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{Link, Socket};
use crate::netns::NetNs;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// What a tap attachment asks for.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// MTU.
    pub mtu: Option<u32>,
    /// A fixed hardware address.
    pub mac: Option<[u8; 6]>,
    /// IFF_MULTI_QUEUE.
    pub multi_queue: bool,
    /// The user that may open it.
    pub owner: Option<u32>,
    /// The group that may open it.
    pub group: Option<u32>,
    /// A bridge inside the container's netns to make it a port of.
    pub bridge: Option<String>,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn ioctl(fd: libc::c_int, req: libc::c_ulong, arg: libc::c_ulong, what: &'static str) -> Result<()> {
    // SAFETY: a tun descriptor and a request that takes an integer argument.
    if unsafe { libc::ioctl(fd, req as _, arg) } < 0 {
        return Err(Error::io(what, "/dev/net/tun", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Creates the persistent tap `name` in the calling thread's netns.
fn create(name: &str, spec: &Spec) -> Result<()> {
    let tun = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").map_err(|e| Error::io("open", "/dev/net/tun", e))?;
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, _pad: [0; 22] };
    if spec.multi_queue {
        req.flags |= IFF_MULTI_QUEUE;
    }
    req.name[..name.len().min(libc::IFNAMSIZ - 1)].copy_from_slice(&name.as_bytes()[..name.len().min(libc::IFNAMSIZ - 1)]);
    // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
        return Err(Error::io("TUNSETIFF", "/dev/net/tun", std::io::Error::last_os_error()));
    }
    if let Some(uid) = spec.owner {
        ioctl(tun.as_raw_fd(), TUNSETOWNER, libc::c_ulong::from(uid), "TUNSETOWNER")?;
    }
    if let Some(gid) = spec.group {
        ioctl(tun.as_raw_fd(), TUNSETGROUP, libc::c_ulong::from(gid), "TUNSETGROUP")?;
    }
    ioctl(tun.as_raw_fd(), TUNSETPERSIST, 1, "TUNSETPERSIST")
}

/// Makes the tap `ifname` in `netns`, configured with `cfg` (None: only up). Nothing is
/// left if a step fails.
pub fn attach(spec: &Spec, netns: &NetNs, ifname: &str, cfg: Option<&IfaceConfig>) -> Result<Link> {
    netns.run(|| {
        let mut sock = Socket::open()?;
        if sock.link_by_name(ifname)?.is_some() {
            return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display())));
        }
        let bridge = match &spec.bridge {
            Some(b) => Some(sock.link_by_name(b)?.filter(|l| l.kind.as_deref() == Some("bridge")).ok_or_else(|| Error::BadOption {
                key: "bridge".into(),
                value: b.clone(),
                why: "no such bridge in the container's netns",
            })?),
            None => None,
        };
        create(ifname, spec)?;
        let made = (|| {
            let link = sock.link_by_name(ifname)?.ok_or_else(|| Error::LinkExists(ifname.to_string()))?;
            if let Some(mtu) = spec.mtu {
                sock.set_mtu(link.index, mtu)?;
            }
            if let Some(mac) = spec.mac {
                sock.set_mac(link.index, &mac)?;
            }
            if let Some(b) = &bridge {
                sock.set_master(link.index, b.index)?;
            }
            match cfg {
                Some(cfg) => configure_container_on(&mut sock, ifname, cfg, cfg.ipv6_off()),
                None => bring_up_on(&mut sock, ifname),
            }
        })();
        if made.is_err() {
            if let Ok(Some(l)) = sock.link_by_name(ifname) {
                let _ = sock.delete_link(l.index);
            }
        }
        made
    })
}
