//! CNI for berth: the protocol types, the plugin skeleton, exec of other plugins, and the
//! `bridge`, `host-local`, `portmap` and `loopback` plugins over the netd engine.

pub mod conflist;
pub mod exec;
pub mod plugin;
pub mod skel;
pub mod types;
