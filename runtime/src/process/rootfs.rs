//! The container's filesystem, built inside its own mount namespace: overlayfs over the
//! image layers, bind mounts, /etc files, /proc, /sys, a minimal /dev, then pivot_root.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::unistd::{chdir, fchdir, pivot_root};

use crate::beneath;
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
    /// `--privileged`: /sys and cgroupfs writable, nothing masked.
    pub privileged: bool,
}

/// Kernel files and directories hidden from containers, as Docker hides them.
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel paths containers may read but not write, as Docker's.
pub const READ_ONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn m(src: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| Error::sys(format!("mount {}", target.display()), e))
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))
}

fn touch(p: &Path) -> Result<()> {
    if !p.exists() {
        fs::write(p, b"").map_err(|e| Error::io("create", p, e))?;
    }
    Ok(())
}

/// A mount point for `dst` inside the image's root, resolved without following the
/// image's symlinks: a directory, or a file when `file`. Returns the descriptor whose
/// `/proc/self/fd` path the mount goes onto.
fn mount_point(root: &beneath::Root, dst: &str, file: bool) -> Result<OwnedFd> {
    let rel = beneath::clean_in_root(dst);
    let res = if file { root.mount_file(&rel) } else { root.dir(&rel, true) };
    res.map_err(|e| Error::io("resolve mount point in the image", dst.to_string(), e))
}

/// As Docker does for a volume still empty: the image's content at the mount point is
/// copied into it first, so `-v data:/etc/app` starts with the image's files. The image's
/// directory is reached beneath its root and walked without following its symlinks.
fn copy_up(image: &beneath::Root, target: &str, volume: &Path) -> Result<()> {
    let empty = fs::read_dir(volume).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let Ok(src) = image.dir(&beneath::clean_in_root(target), false) else { return Ok(()) };
    // Through descriptors only: another container sharing the volume may be planting
    // symlinks in it while this runs (see beneath::copy).
    let vol = beneath::Root::open(volume).map_err(|e| Error::io("open", volume, e))?;
    beneath::copy::tree(src.as_fd(), vol.fd(), None)
        .map_err(|e| Error::io("copy the image's content into the volume at", target.to_string(), e))
}

/// Builds the root and pivots into it. Runs in the container's fresh mount namespace.
pub fn setup(plan: &Plan) -> Result<()> {
    m(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let lowers: Vec<String> = plan.lowers.iter().map(|p| p.display().to_string()).collect();
    let opts = format!("lowerdir={},upperdir={},workdir={}", lowers.join(":"), plan.upper.display(), plan.work.display());
    m(Some(Path::new("overlay")), &plan.merged, Some("overlay"), MsFlags::empty(), Some(&opts))?;
    let root = &plan.merged;
    let image = beneath::Root::open(root).map_err(|e| Error::io("open", root, e))?;
    for v in &plan.volumes {
        if v.volume.is_some() {
            copy_up(&image, &v.container, Path::new(&v.host))?;
        }
        let file = !Path::new(&v.host).is_dir();
        let target = mount_point(&image, &v.container, file)?;
        let t = beneath::fd_path(&target);
        m(Some(Path::new(&v.host)), &t, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        if v.readonly {
            // The fd above is the directory under the new mount: look the path up again
            // to reach the mount itself.
            let mounted = mount_point(&image, &v.container, file)?;
            m(None, &beneath::fd_path(&mounted), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
        }
    }
    for (src, dst) in &plan.etc {
        let target = mount_point(&image, dst, true)?;
        m(Some(src), &beneath::fd_path(&target), None, MsFlags::MS_BIND, None)?;
    }
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc_dir = mount_point(&image, "/proc", false)?;
    m(Some(Path::new("proc")), &beneath::fd_path(&proc_dir), Some("proc"), nosuid, None)?;
    // A fresh sysfs shows the links of the netns we are in (ours, the host's, or the
    // joined container's); read-only unless privileged, in every network mode.
    let sys_dir = mount_point(&image, "/sys", false)?;
    let ro = if plan.privileged { MsFlags::empty() } else { MsFlags::MS_RDONLY };
    m(Some(Path::new("sysfs")), &beneath::fd_path(&sys_dir), Some("sysfs"), nosuid | ro, None)?;
    let dev_dir = mount_point(&image, "/dev", false)?;
    dev(&beneath::fd_path(&dev_dir), &root.join("dev"))?;
    // From here on, only mounts of our own are touched: plain paths are safe.
    let sys = root.join("sys");
    cgroupfs(&sys.join("fs/cgroup"), ro)?;
    if !plan.privileged {
        mask(root)?;
    }
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

/// Masks [`MASKED`] (files under /dev/null, directories under an empty read-only tmpfs)
/// and makes [`READ_ONLY`] read-only, in the fresh /proc and /sys of `root`.
fn mask(root: &Path) -> Result<()> {
    let null = root.join("dev/null");
    for p in MASKED {
        let target = root.join(p.trim_start_matches('/'));
        match fs::symlink_metadata(&target) {
            Ok(md) if md.is_dir() => m(Some(Path::new("tmpfs")), &target, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))?,
            Ok(_) => m(Some(&null), &target, None, MsFlags::MS_BIND, None)?,
            Err(_) => {}
        }
    }
    for p in READ_ONLY {
        let target = root.join(p.trim_start_matches('/'));
        if target.exists() {
            m(Some(&target), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            let flags =
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            m(None, &target, None, flags, None)?;
        }
    }
    Ok(())
}

/// The container's own cgroups, read-only at /sys/fs/cgroup: with the cgroup namespace
/// already entered, the container's group is the root there, so its limits are visible.
fn cgroupfs(target: &Path, ro: MsFlags) -> Result<()> {
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | ro;
    if crate::cgroups::is_v2() {
        return m(Some(Path::new("cgroup2")), target, Some("cgroup2"), ro, None);
    }
    m(Some(Path::new("tmpfs")), target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=755"))?;
    for ctrl in crate::cgroups::V1_CONTROLLERS {
        if !Path::new("/sys/fs/cgroup").join(ctrl).join("cgroup.procs").is_file() {
            continue;
        }
        let dir = target.join(ctrl);
        mkdir(&dir)?;
        m(Some(Path::new("cgroup")), &dir, Some("cgroup"), ro, Some(ctrl))?;
    }
    // The tmpfs holding the controllers is read-only too.
    m(None, target, None, MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | ro, Some("mode=755"))
}

/// A minimal /dev: tmpfs mounted on `target` (the checked mount point of `d`) with the
/// usual devices bound from the host, devpts, shm.
fn dev(target: &Path, d: &Path) -> Result<()> {
    m(Some(Path::new("tmpfs")), target, Some("tmpfs"), MsFlags::MS_NOSUID, Some("mode=755,size=65536k"))?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = d.join(name);
        touch(&target)?;
        m(Some(&Path::new("/dev").join(name)), &target, None, MsFlags::MS_BIND, None)?;
    }
    let pts = d.join("pts");
    mkdir(&pts)?;
    m(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = d.join("shm");
    mkdir(&shm)?;
    m(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
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
