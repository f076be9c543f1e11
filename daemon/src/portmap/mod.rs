//! Port mappings: the model and Docker's `-p` grammar, and host-port claims.

mod claim;
mod spec;

pub use claim::Claims;
pub use spec::{expand_publish, parse_publish, PortMapping, Proto, Publish};
