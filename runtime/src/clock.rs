//! Wall-clock time as records store it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 if the clock is before it).
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// "5 seconds", "3 minutes"... since `t`, as Docker's status and CREATED columns say it.
pub fn since(t: u64) -> String {
    let d = now().saturating_sub(t);
    match d {
        0..=59 => format!("{d} seconds"),
        60..=3599 => format!("{} minutes", d / 60),
        3600..=86399 => format!("{} hours", d / 3600),
        _ => format!("{} days", d / 86400),
    }
}
