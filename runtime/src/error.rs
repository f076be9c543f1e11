//! The runtime's errors, each mapped to Docker's exit codes: 125 for berth's own
//! failures, 126 when the command cannot be run, 127 when it is not found.

use std::path::PathBuf;

/// Everything `berth` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network engine failed.
    #[error(transparent)]
    Net(netd::Error),
    /// A confinement setting is invalid or cannot be applied.
    #[error(transparent)]
    Security(#[from] crate::security::Error),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// No image with that name.
    #[error("unable to find image '{0}' (import it with `berth import` or `berth load`)")]
    NoImage(String),
    /// An image archive is malformed.
    #[error("invalid image archive {path}: {why}")]
    BadArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No container with that name or ID.
    #[error("no such container: {0}")]
    NoContainer(String),
    /// The name is taken.
    #[error("the container name \"{0}\" is already in use")]
    NameInUse(String),
    /// A flag or argument value is invalid; nothing was changed.
    #[error("invalid {flag} {value:?}: {why}")]
    Flag {
        /// The flag or the kind of value (`--memory` → "size").
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong, with what is accepted.
        why: String,
    },
    /// Options that cannot go together (or a run with nothing to run).
    #[error("{0}")]
    Conflict(&'static str),
    /// A stored record (image, container) cannot be read or written.
    #[error("record {path}: {why}")]
    Record {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An ID prefix matches several containers.
    #[error("multiple containers match ID prefix {0}")]
    Ambiguous(String),
    /// A limit asks for a cgroup controller this host does not have.
    #[error("the {0} cgroup controller is not available on this host")]
    NoController(String),
    /// The container store is on overlayfs (berth inside another container or on an
    /// overlay root), where an overlay's upper directory cannot live.
    #[error("{0} is on overlayfs, which cannot hold a container's writable layer; use --root (or BERTH_ROOT) on another filesystem, e.g. a tmpfs or an ext4 volume")]
    StoreOnOverlay(PathBuf),
    /// This process's root is not a mount point (berth inside a plain chroot): pivot_root,
    /// which switches a container to its own root, cannot work from there.
    #[error("the root directory is not a mount point (is berth running in a chroot?); containers need pivot_root, which needs one: bind-mount the chroot directory onto itself before entering it (mount --rbind DIR DIR), or run berth outside it")]
    RootNotMounted,
    /// An image's layer is gone from the store.
    #[error("image layer {0} is missing; load the image again")]
    MissingLayer(PathBuf),
    /// The network mode names no known network or container.
    #[error("network {0} not found")]
    NoNetwork(String),
    /// `rmi` of the last name of an image a container uses, without force.
    #[error(
        "conflict: unable to remove repository reference \"{image}\" (must force) - container {container} is using its referenced image"
    )]
    ImageInUse {
        /// The image's name.
        image: String,
        /// A container using it.
        container: String,
    },
    /// `rm` without force of a running container.
    #[error("cannot remove running container {0}: stop it first or use rm -f")]
    Running(String),
    /// The operation does not apply in the container's state.
    #[error("{0}")]
    State(String),
    /// The container's command could not be started.
    #[error("{msg}")]
    Start {
        /// 125, 126 or 127.
        code: i32,
        /// Why.
        msg: String,
    },
}

impl From<netd::Error> for Error {
    fn from(e: netd::Error) -> Self {
        match e {
            netd::Error::NoSuchNetwork(n) => Error::NoNetwork(n),
            e => Error::Net(e),
        }
    }
}

impl Error {
    /// Docker's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start { code, .. } => *code,
            _ => 125,
        }
    }

    /// Builds an `Io` error.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// Builds a `Sys` error.
    pub fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys { op: op.into(), source }
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
