//! Small JSON state files: written to a temporary name and renamed into place, so a kill
//! at any point leaves either the old or the new file, never a torn one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Creates `dir` and its missing parents with mode 0700: berth's state is root's alone.
pub fn private_dir(dir: &Path) -> Result<()> {
    make_private_dir(dir).map_err(|e| Error::io("create directory", dir, e))
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// How long a lock is waited for: `BERTH_LOCK_TIMEOUT` seconds, 30 by default.
fn lock_timeout() -> Duration {
    let secs = std::env::var("BERTH_LOCK_TIMEOUT").ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| s.is_finite() && *s > 0.0);
    Duration::from_secs_f64(secs.unwrap_or(30.0))
}

fn open_lock(path: &Path) -> Result<fs::File> {
    let open = || {
        in_private_dir(path, || {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
        })
        .map_err(|e| Error::io("open lock", path, e))
    };
    let f = open()?;
    let md = f.metadata().map_err(|e| Error::io("stat lock", path, e))?;
    // A lock file someone else made (or left readable) could be held by anyone: replace it.
    if md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o077 != 0 {
        drop(f);
        fs::remove_file(path).map_err(|e| Error::io("replace foreign lock", path, e))?;
        return open();
    }
    Ok(f)
}

/// Runs `create` (which makes a file at `path`); if `path`'s directory is missing, makes
/// it with [`private_dir`] and runs `create` again. A directory is made once, not checked
/// on every write.
pub(crate) fn in_private_dir<T>(path: &Path, create: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_private_dir(path.parent().unwrap_or(Path::new(".")))?;
            create()
        }
        r => r,
    }
}

/// Opens (creating it 0600 in a 0700 directory, so no other user can open it) and
/// exclusively flocks `path`; the lock is held until the returned file is dropped. Waits
/// at most `BERTH_LOCK_TIMEOUT` seconds (30), then fails naming the lock. Every lock of
/// berth and its plugins goes through here, so concurrent processes serialise the same way.
pub fn lock_file(path: &Path) -> Result<fs::File> {
    flock_path(path, libc::LOCK_EX)
}

/// As [`lock_file`], shared: any number of holders at once, none while someone holds it
/// exclusively.
pub fn lock_shared(path: &Path) -> Result<fs::File> {
    flock_path(path, libc::LOCK_SH)
}

fn flock_path(path: &Path, op: libc::c_int) -> Result<fs::File> {
    let f = open_lock(path)?;
    flock_open(&f, path, op)?;
    Ok(f)
}

/// Flocks an already open file (`op` is LOCK_EX or LOCK_SH), waiting as [`lock_file`]
/// does; the lock lasts as long as that open file.
pub(crate) fn flock_open(f: &fs::File, path: &Path, op: libc::c_int) -> Result<()> {
    let deadline = Instant::now() + lock_timeout();
    let mut pause = Duration::from_micros(200);
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), op | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("lock", path, err));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::LockTimeout { path: path.to_path_buf(), waited: lock_timeout() });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Writes `data` to `dst` (mode 0600) through a temporary file in the same directory
/// renamed into place, so readers and a kill at any point see the old or the new content,
/// never a torn one. Leftover temporaries are named `.tmp-*`.
pub fn write_atomic(dst: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(dst, data, 0o600)
}

/// [`write_atomic`] with another mode, for files a container must read (its /etc files).
pub fn write_atomic_mode(dst: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    let name = dst.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let create = || fs::OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(&tmp);
    let mut f = match in_private_dir(&tmp, create) {
        // Left by a killed process that had this pid.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            create()
        }
        r => r,
    }
    .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, dst).map_err(|e| Error::io("rename", dst, e))
}

/// A directory of JSON records keyed by name.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// Turns an arbitrary key (network/container/ifname) into a safe file name.
pub fn file_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect::<String>())
        .collect::<Vec<_>>()
        .join("~")
}

impl StateDir {
    /// Opens (creating) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        private_dir(&dir)?;
        Ok(Self { dir })
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Saves `value` under `key` atomically.
    pub fn save<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let data = serde_json::to_vec(value).map_err(|e| Error::io("encode state", self.dir.join(key), e.into()))?;
        write_atomic(&self.dir.join(format!("{key}.json")), &data)
    }

    /// Loads the record under `key`; `None` if there is none or it cannot be read.
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let data = fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Removes the record; a missing one is success.
    pub fn remove(&self, key: &str) -> Result<()> {
        let p = self.dir.join(format!("{key}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", p, e)),
            _ => Ok(()),
        }
    }

    /// Whether any record's key satisfies `pred`. Reads the directory a few entries at a
    /// time and stops at the first match: "is there another holder?" is then O(1) when
    /// there is one, where listing every record is O(N) kernel work per call.
    pub fn any_key(&self, mut pred: impl FnMut(&str) -> bool) -> bool {
        use rustix::fs::{open, Mode, OFlags, RawDir};
        let Ok(fd) = open(&self.dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
            return false;
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut entries = RawDir::new(fd, &mut buf);
        while let Some(Ok(e)) = entries.next() {
            let Ok(name) = e.file_name().to_str() else { continue };
            if let Some(key) = name.strip_suffix(".json").filter(|_| !name.starts_with('.')) {
                if pred(key) {
                    return true;
                }
            }
        }
        false
    }

    /// Every record's key.
    pub fn keys(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix(".json").filter(|_| !n.starts_with('.')).map(str::to_string)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::StateDir;

    #[test]
    fn any_key_reads_past_many_entries_and_skips_dotfiles() {
        let dir = std::env::temp_dir().join(format!("berth-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = StateDir::open(&dir).unwrap();
        std::fs::write(dir.join(".net.lock"), b"").unwrap();
        for i in 0..300 {
            d.save(&format!("net~c{i}~eth0"), &i).unwrap();
        }
        // Far more entries than one 1 KB read holds: the last one is still found.
        assert!(d.any_key(|k| k == "net~c299~eth0"));
        assert!(d.any_key(|k| k.starts_with("net~") && k != "net~c0~eth0"));
        assert!(!d.any_key(|k| k.starts_with(".") || k == "net~c300~eth0"));
        let mut seen = 0;
        assert!(!d.any_key(|_| {
            seen += 1;
            false
        }));
        assert_eq!(seen, 300, "every record, and nothing else, is offered");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
