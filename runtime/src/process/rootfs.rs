//! The container's filesystem, built inside its own mount namespace: overlayfs over the
//! image layers, bind mounts, /etc files, /proc, /sys, a minimal /dev, then pivot_root.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::AsRawFd;

use nix::unistd::{chdir, fchdir, pivot_root};

use crate::container::Volume;
use crate::error::{Error, Result};

/// Everything needed to build the root filesystem.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Layer directories, top first.
    pub lowers: Vec<PathBuf>,
    /// Writable layer.
    pub upper: PathBuf,
    /// overlayfs work directory.
    pub work: PathBuf,
    /// Mount point of the merged root.
    pub merged: PathBuf,
    /// Bind mounts.
    pub volumes: Vec<Volume>,
    /// Files bind-mounted over /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub etc: Vec<(PathBuf, &'static str)>,
    /// Mount a fresh sysfs (only possible with a netns of our own).
    pub own_sysfs: bool,
}

fn m(src: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| Error::sys(format!("mount {}", target.display()), e))
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))
}

fn touch(p: &Path) -> Result<()> {
    if let Some(d) = p.parent() {
        mkdir(d)?;
    }
    if !p.exists() {
        fs::write(p, b"").map_err(|e| Error::io("create", p, e))?;
    }
    Ok(())
}

/// Resolves a path inside the new root without following symlinks out of it.
fn inside(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// Builds the root and pivots into it. Runs in the container's fresh mount namespace.
pub fn setup(plan: &Plan) -> Result<()> {
    m(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let lowers: Vec<String> = plan.lowers.iter().map(|p| p.display().to_string()).collect();
    let opts = format!("lowerdir={},upperdir={},workdir={}", lowers.join(":"), plan.upper.display(), plan.work.display());
    m(Some("overlay"), &plan.merged, Some("overlay"), MsFlags::empty(), Some(&opts))?;
    let root = &plan.merged;
    for v in &plan.volumes {
        let target = inside(root, &v.container);
        if Path::new(&v.host).is_dir() {
            mkdir(&target)?;
        } else {
            touch(&target)?;
        }
        m(Some(&v.host), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        if v.readonly {
            m(None, &target, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
        }
    }
    for (src, dst) in &plan.etc {
        let target = inside(root, dst);
        if target.is_symlink() {
            let _ = fs::remove_file(&target);
        }
        touch(&target)?;
        m(Some(&src.display().to_string()), &target, None, MsFlags::MS_BIND, None)?;
    }
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc_dir = inside(root, "/proc");
    mkdir(&proc_dir)?;
    m(Some("proc"), &proc_dir, Some("proc"), nosuid, None)?;
    let sys = inside(root, "/sys");
    mkdir(&sys)?;
    if plan.own_sysfs {
        m(Some("sysfs"), &sys, Some("sysfs"), nosuid | MsFlags::MS_RDONLY, None)?;
        cgroupfs(&sys.join("fs/cgroup"))?;
    } else {
        m(Some("/sys"), &sys, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    }
    dev(root)?;
    // pivot_root(".", ".") stacks the old root on the new one; detach it from there.
    let old = fs::File::open("/").map_err(|e| Error::io("open", "/", e))?;
    chdir(root).map_err(|e| Error::sys("chdir to new root", e))?;
    pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
    fchdir(old.as_raw_fd()).map_err(|e| Error::sys("fchdir to old root", e))?;
    m(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("detach old root", e))?;
    chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    Ok(())
}

/// The container's own cgroups, read-only at /sys/fs/cgroup: with the cgroup namespace
/// already entered, the container's group is the root there, so its limits are visible.
fn cgroupfs(target: &Path) -> Result<()> {
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    if crate::cgroups::is_v2() {
        return m(Some("cgroup2"), target, Some("cgroup2"), ro, None);
    }
    m(Some("tmpfs"), target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=755"))?;
    for ctrl in crate::cgroups::V1_CONTROLLERS {
        if !Path::new("/sys/fs/cgroup").join(ctrl).join("cgroup.procs").is_file() {
            continue;
        }
        let dir = target.join(ctrl);
        mkdir(&dir)?;
        m(Some("cgroup"), &dir, Some("cgroup"), ro, Some(ctrl))?;
    }
    Ok(())
}

/// A minimal /dev: tmpfs with the usual devices bound from the host, devpts, shm.
fn dev(root: &Path) -> Result<()> {
    let d = inside(root, "/dev");
    mkdir(&d)?;
    m(Some("tmpfs"), &d, Some("tmpfs"), MsFlags::MS_NOSUID, Some("mode=755,size=65536k"))?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = d.join(name);
        touch(&target)?;
        m(Some(&format!("/dev/{name}")), &target, None, MsFlags::MS_BIND, None)?;
    }
    let pts = d.join("pts");
    mkdir(&pts)?;
    m(Some("devpts"), &pts, Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620"))?;
    let shm = d.join("shm");
    mkdir(&shm)?;
    m(Some("shm"), &shm, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=1777,size=65536k"))?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, d.join(link)).map_err(|e| Error::io("symlink", d.join(link), e))?;
    }
    Ok(())
}
