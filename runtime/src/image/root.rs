//! An image's root filesystem, read-only, for `COPY --from`: its layers mounted as an
//! overlay in a mount namespace private to one thread. The mount goes with the thread, so
//! nothing is left mounted on the host whatever happens.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::{layer_dir, Image};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Runs `f` with the merged, read-only root of `img` (its path is valid only inside `f`).
pub fn with_root<T: Send>(paths: &Paths, img: &Image, f: impl FnOnce(&Path) -> Result<T> + Send) -> Result<T> {
    let scratch = crate::scratch::Scratch::dir(paths, "root")?;
    let (merged, empty) = (scratch.as_path().join("merged"), scratch.as_path().join("empty"));
    for d in [&merged, &empty] {
        std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    // Overlay wants two lower directories when there is no upper one.
    let mut lowers: Vec<PathBuf> = img.layers.iter().rev().map(|l| layer_dir(paths, l)).collect();
    lowers.push(empty.clone());
    let res = std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::sys("unshare a mount namespace", e))?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(|e| Error::sys("make mounts private", e))?;
            let opts = format!("lowerdir={}", lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"));
            mount(Some("overlay"), &merged, Some("overlay"), MsFlags::MS_RDONLY, Some(opts.as_str()))
                .map_err(|e| Error::sys("mount the image's layers", e))?;
            f(&merged)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::State("reading the image's root failed".into())))
    });
    drop(scratch);
    res
}
