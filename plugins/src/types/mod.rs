//! CNI wire types: config, result, versions, errors. Kept apart from plugin logic.

pub mod config;
pub mod error;
pub mod gojson;
pub mod result;
pub mod version;

pub use config::{Attachment, NetConf};
pub use error::{code, CniError};
pub use result::{CniResult, Dns, Interface, IpConfig, RouteConfig};
