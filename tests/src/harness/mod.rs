//! Isolation, namespaces, peers and plugin invocation for integration tests.

pub mod berth;
pub mod cri;
pub mod dns;
pub mod docker;
pub mod fw;
pub mod image;
mod isolate;
pub mod net;
pub mod netd;
pub mod netns;
pub mod peer;
pub mod plugin;
pub mod podman;
pub mod registry;
pub mod timing;

pub use isolate::{isolated, isolated_main};
pub use netns::{curl, kernel_has, sh, try_sh, wait_for, wait_for_secs, web_server, Netns, Proc};
pub use peer::OtherHost;
pub use plugin::{bin_dir, plugin_dir, Cni, Outcome};
