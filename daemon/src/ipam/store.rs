//! host-local's on-disk store, byte-compatible with the reference plugin:
//! `<dataDir>/<network>/<ip>` holds `<containerID>\r\n<ifname>`,
//! `last_reserved_ip.<rangeset>` holds the last address handed out, and `lock` is flocked.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// host-local's line separator between container ID and ifname.
const LINE_BREAK: &str = "\r\n";
const LAST_PREFIX: &str = "last_reserved_ip.";
const TMP_PREFIX: &str = ".tmp-";

/// The allocation files of one network.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Holds the network's flock; every read-modify-write of the store happens under it.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a Store,
    _lock: File,
}

/// One allocation as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The allocated address.
    pub ip: IpAddr,
    /// Container ID that holds it.
    pub id: String,
    /// Interface name inside the container (empty in files from old host-local versions).
    pub ifname: String,
}

impl Store {
    /// Opens (creating if needed) the store of `network` under `data_dir`.
    pub fn open(data_dir: &Path, network: &str) -> Result<Self> {
        if network.is_empty() || network.contains('/') || network.starts_with('.') {
            let why = "not a directory name";
            return Err(crate::name::NameError { kind: crate::name::Kind::Network, value: network.to_string(), why }.into());
        }
        let dir = data_dir.join(network);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create IPAM directory", &dir, e))?;
        Ok(Self { dir })
    }

    /// The directory holding this network's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the network's exclusive lock (the same `lock` file the reference plugin uses).
    pub fn lock(&self) -> Result<Locked<'_>> {
        let file = crate::state::lock_file(&self.dir.join("lock"))?;
        Ok(Locked { store: self, _lock: file })
    }
}

fn parse_owner(content: &str) -> (String, String) {
    let mut parts = content.trim().splitn(2, LINE_BREAK);
    let id = parts.next().unwrap_or("").trim().to_string();
    let ifname = parts.next().unwrap_or("").trim().to_string();
    (id, ifname)
}

impl Locked<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.store.dir.join(name)
    }

    /// Claims `ip` for (id, ifname). Returns false if it is already taken.
    /// The file is written under a temporary name and linked into place, so a crash
    /// never leaves a claimed address without its owner.
    pub fn reserve(&self, ip: IpAddr, id: &str, ifname: &str, rangeset: usize) -> Result<bool> {
        let target = self.path(&ip.to_string());
        if target.exists() {
            return Ok(false);
        }
        let tmp = self.path(&format!("{TMP_PREFIX}{ip}"));
        write_file(&tmp, format!("{}{LINE_BREAK}{ifname}", id.trim()).as_bytes())?;
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(Error::io("reserve address", target, e)),
        }
        crate::state::write_atomic(&self.path(&format!("{LAST_PREFIX}{rangeset}")), ip.to_string().as_bytes())?;
        Ok(true)
    }

    /// The last address handed out from a range set.
    pub fn last_reserved(&self, rangeset: usize) -> Option<IpAddr> {
        fs::read_to_string(self.path(&format!("{LAST_PREFIX}{rangeset}"))).ok().and_then(|s| s.trim().parse().ok())
    }

    /// Who holds `ip`, if anyone.
    pub fn owner(&self, ip: IpAddr) -> Option<(String, String)> {
        fs::read_to_string(self.path(&ip.to_string())).ok().map(|c| parse_owner(&c))
    }

    /// Releases `ip` if (id, ifname) holds it; returns whether it did.
    pub fn release_if_owned(&self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool> {
        match self.owner(ip) {
            Some((oid, oif)) if oid == id.trim() && (oif == ifname || oif.is_empty()) => {
                let path = self.path(&ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(Error::io("release address", path, e)),
                }
            }
            _ => Ok(false),
        }
    }

    /// Every allocation in the store (temporary files of interrupted claims are removed).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let dir = &self.store.dir;
        let rd = fs::read_dir(dir).map_err(|e| Error::io("list IPAM directory", dir, e))?;
        let mut out = Vec::new();
        for de in rd.flatten() {
            let name = de.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(de.path());
                continue;
            }
            let Ok(ip) = name.parse::<IpAddr>() else {
                continue;
            };
            if let Ok(content) = fs::read_to_string(de.path()) {
                let (id, ifname) = parse_owner(&content);
                out.push(Entry { ip, id, ifname });
            }
        }
        Ok(out)
    }

    /// Releases every address held by (id, ifname); returns them.
    pub fn release_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let mut freed = Vec::new();
        for e in self.entries()? {
            if e.id == id.trim() && (e.ifname == ifname || e.ifname.is_empty()) && self.release_if_owned(e.ip, id, ifname)? {
                freed.push(e.ip);
            }
        }
        Ok(freed)
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(data).map_err(|e| Error::io("write", path, e))
}
