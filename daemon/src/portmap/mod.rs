//! Port mappings: the model and Docker's `-p` grammar, host-port claims, and publishing.

mod claim;
pub mod conntrack;
pub mod publish;
mod spec;

pub use claim::Claims;
pub use publish::Publisher;
pub use spec::{expand_publish, parse_publish, PortMapping, Proto, Publish};
