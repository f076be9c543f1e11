//! Host-port claims: refuses a host port that another attachment already publishes or
//! that a listening socket holds. Claims are files under one flock, so the check and the
//! claim are atomic across concurrent plugin and CLI processes.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::spec::{PortMapping, Proto};
use crate::error::{Error, Result};

/// The claim directory, usually `<stateDir>/ports`.
#[derive(Debug, Clone)]
pub struct Claims {
    dir: PathBuf,
}

fn slot(m: &PortMapping) -> String {
    format!("{}-{}", m.proto, m.host_port)
}

fn ip_name(ip: Option<IpAddr>) -> String {
    ip.map(|i| i.to_string()).unwrap_or_else(|| "any".into())
}

impl Claims {
    /// Opens the claim directory, creating it if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create port claim directory", &dir, e))?;
        Ok(Self { dir })
    }

    /// The claims directory (other per-host publication state lives beside it).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn lock(&self) -> Result<File> {
        crate::state::lock_file(&self.dir.join("lock"))
    }

    /// Claims every mapping for `owner`, all or nothing, and returns them with ephemeral
    /// host ports picked (free of claims and, with `probe`, of listening sockets). A
    /// mapping `owner` already holds is kept (ADD after a crash). `probe` also refuses
    /// ports a listening socket holds.
    pub fn claim(&self, owner: &str, maps: &[PortMapping], probe: bool) -> Result<Vec<PortMapping>> {
        let _lock = self.lock()?;
        let mut done: Vec<PathBuf> = Vec::new();
        let mut out = Vec::with_capacity(maps.len());
        let res = (|| {
            for m in maps {
                let m = if m.is_ephemeral() { self.pick(m, probe)? } else { *m };
                out.push(m);
                let m = &m;
                let sdir = self.dir.join(slot(m));
                let file = sdir.join(ip_name(m.host_ip));
                if fs::read_to_string(&file).is_ok_and(|o| o == owner) {
                    continue;
                }
                if let Some(holder) = self.conflict(&sdir, m.host_ip)? {
                    return Err(in_use(m, format!(": published by {holder}")));
                }
                if probe && listening(m) {
                    return Err(in_use(m, ": a process is listening on it".into()));
                }
                fs::create_dir_all(&sdir).map_err(|e| Error::io("create port claim", &sdir, e))?;
                // Written aside and renamed in: a kill never leaves a claim without its owner.
                let tmp = self.dir.join(format!(".tmp-{}", std::process::id()));
                fs::write(&tmp, owner).map_err(|e| Error::io("write port claim", &tmp, e))?;
                fs::rename(&tmp, &file).map_err(|e| Error::io("write port claim", &file, e))?;
                done.push(file);
            }
            Ok(())
        })();
        if res.is_err() {
            for f in done {
                let _ = fs::remove_file(f);
            }
        }
        res.map(|()| out)
    }

    /// A free host port for an ephemeral mapping, from a random start in the range.
    fn pick(&self, m: &PortMapping, probe: bool) -> Result<PortMapping> {
        let (lo, hi) = super::spec::EPHEMERAL_RANGE;
        let span = (hi - lo) as u32 + 1;
        let mut seed = [0u8; 4];
        crate::netlink::fill_random(&mut seed);
        let start = u32::from_le_bytes(seed) % span;
        for i in 0..span {
            let mut c = *m;
            c.host_port = lo + ((start + i) % span) as u16;
            if self.conflict(&self.dir.join(slot(&c)), c.host_ip)?.is_none() && !(probe && listening(&c)) {
                return Ok(c);
            }
        }
        Err(in_use(m, ": no free port left in the ephemeral range".into()))
    }

    /// Releases the claims `owner` holds for these mappings; missing claims are fine.
    pub fn release(&self, owner: &str, maps: &[PortMapping]) -> Result<()> {
        let _lock = self.lock()?;
        for m in maps {
            let sdir = self.dir.join(slot(m));
            let file = sdir.join(ip_name(m.host_ip));
            if fs::read_to_string(&file).is_ok_and(|o| o == owner) {
                fs::remove_file(&file).map_err(|e| Error::io("remove port claim", &file, e))?;
                let _ = fs::remove_dir(&sdir);
            }
        }
        Ok(())
    }

    /// Releases every claim `owner` holds, whatever the mappings (GC of a dead container
    /// whose records are gone).
    pub fn release_owner(&self, owner: &str) -> Result<()> {
        let _lock = self.lock()?;
        let Ok(slots) = fs::read_dir(&self.dir) else { return Ok(()) };
        for slot in slots.flatten().filter(|s| s.path().is_dir()) {
            for f in fs::read_dir(slot.path()).into_iter().flatten().flatten() {
                if fs::read_to_string(f.path()).is_ok_and(|o| o == owner) {
                    fs::remove_file(f.path()).map_err(|e| Error::io("remove port claim", f.path(), e))?;
                }
            }
            let _ = fs::remove_dir(slot.path());
        }
        Ok(())
    }

    /// Removes claims whose owner starts with `prefix` (one network) but is not in `valid`.
    pub fn gc(&self, prefix: &str, valid: &[String]) -> Result<()> {
        let _lock = self.lock()?;
        let Ok(slots) = fs::read_dir(&self.dir) else { return Ok(()) };
        for slot in slots.flatten() {
            if slot.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(slot.path());
                continue;
            }
            if !slot.path().is_dir() {
                continue;
            }
            for f in fs::read_dir(slot.path()).into_iter().flatten().flatten() {
                let owner = fs::read_to_string(f.path()).unwrap_or_default();
                if owner.starts_with(prefix) && !valid.contains(&owner) {
                    fs::remove_file(f.path()).map_err(|e| Error::io("remove port claim", f.path(), e))?;
                }
            }
            let _ = fs::remove_dir(slot.path());
        }
        Ok(())
    }

    /// Who holds a slot that conflicts with `ip` (the wildcard conflicts with everything).
    fn conflict(&self, sdir: &Path, ip: Option<IpAddr>) -> Result<Option<String>> {
        let Ok(rd) = fs::read_dir(sdir) else {
            return Ok(None);
        };
        for de in rd.flatten() {
            let name = de.file_name().to_string_lossy().to_string();
            if ip.is_none() || name == "any" || name == ip_name(ip) {
                return Ok(Some(fs::read_to_string(de.path()).unwrap_or_default()));
            }
        }
        Ok(None)
    }
}

fn in_use(m: &PortMapping, by: String) -> Error {
    Error::PortInUse { port: m.host_port, proto: m.proto.to_string(), host_ip: m.host_ip_display(), by }
}

/// Whether a socket already holds the host port (a listener for TCP/SCTP, any bound
/// socket for UDP). SO_REUSEADDR makes TIME_WAIT leftovers not count.
fn listening(m: &PortMapping) -> bool {
    let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, m.host_port);
    let probe = |ip: IpAddr| -> bool {
        let addr = SocketAddr::new(ip, addr.port());
        let (ty, proto) = match m.proto {
            Proto::Tcp => (libc::SOCK_STREAM, 0),
            Proto::Udp => (libc::SOCK_DGRAM, 0),
            Proto::Sctp => (libc::SOCK_STREAM, libc::IPPROTO_SCTP),
        };
        bind_fails(addr, ty, proto)
    };
    if m.host_ip.is_none() {
        probe(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) || probe(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        probe(ip)
    }
}

fn bind_fails(addr: SocketAddr, ty: i32, proto: i32) -> bool {
    use nix::sys::socket::{bind, setsockopt, sockopt, SockaddrStorage};
    use std::os::fd::{FromRawFd, OwnedFd};
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket(2) returns a fresh descriptor or -1; OwnedFd takes ownership once.
    let raw = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, proto) };
    if raw < 0 {
        return false;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
    if addr.is_ipv6() {
        let _ = setsockopt(&fd, sockopt::Ipv6V6Only, &true);
    }
    let sa = SockaddrStorage::from(addr);
    matches!(bind(fd.as_raw_fd(), &sa), Err(nix::errno::Errno::EADDRINUSE))
}
