//! Wall-clock time as records store it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 if the clock is before it).
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
