//! Creating and supervising the container's processes.

pub mod console;
pub mod init;
pub mod monitor;
pub mod rootfs;
pub mod sigproxy;
pub mod waiter;
