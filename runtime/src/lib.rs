//! berth: a small container runtime whose strength is networking. The CLI (`cli`) is a
//! thin layer over images, container records, process supervision and the netd engine.

pub mod beneath;
pub mod cgroups;
pub mod cli;
pub mod clock;
pub mod container;
pub mod daemon;
pub mod error;
pub mod image;
pub mod info;
pub mod network;
pub mod paths;
pub mod process;
pub mod scratch;
pub mod security;
pub mod usage;
pub mod volume;
