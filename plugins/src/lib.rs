//! CNI for berth: the protocol types, the plugin skeleton, exec of other plugins, and the
//! `bridge`, `host-local`, `portmap` and `loopback` plugins over the netd engine.

/// musl's malloc maps and unmaps memory for a plugin's allocations over and over;
/// dlmalloc keeps what it maps.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

pub mod conflist;
pub mod exec;
pub mod plugin;
pub mod skel;
pub mod types;
