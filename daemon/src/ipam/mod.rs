//! IP address management compatible with CNI host-local: ranges, allocation, disk store.

mod allocator;
mod range;
mod store;

pub use allocator::{allocate, find, gc, release, Allocation};
pub use range::{offset, Range, RangeSet};
pub use store::{Entry, Locked, Store};

#[cfg(test)]
mod tests;
