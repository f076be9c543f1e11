//! Wall-clock time as the Docker API writes it (RFC 3339, UTC), without a date crate.

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `secs` since the epoch as "2026-11-23T19:45:24Z".
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `t` as "2026-11-23T19:45:24.123456Z" (microseconds), as log lines carry it.
pub fn rfc3339_micros(t: std::time::SystemTime) -> String {
    with_fraction(t, 6)
}

/// `t` as "2026-11-23T19:45:24.123456789Z" (nanoseconds), as Docker's json-file log
/// entries carry it.
pub fn rfc3339_nanos(t: std::time::SystemTime) -> String {
    with_fraction(t, 9)
}

/// `t` with `digits` (at most 9) fractional digits of its second.
fn with_fraction(t: std::time::SystemTime, digits: u32) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = rfc3339(d.as_secs());
    let frac = d.subsec_nanos() / 10u32.pow(9 - digits);
    format!("{}.{frac:0w$}Z", s.trim_end_matches('Z'), w = digits as usize)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day count since 1970-01-01 of a (year, month, day) (days-from-civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses "2026-11-23T19:45:24[.fraction]Z" (what image configs carry) back to seconds
/// since the epoch (days-from-civil); `None` for anything else or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d, hh, mm, ss) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    u64::try_from(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_parses_back() {
        for t in [0, 951_782_400, 1_795_376_724] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(t)), Some(t));
        }
        assert_eq!(super::parse_rfc3339("2026-11-22T19:45:24.123456789Z"), Some(1_795_376_724));
        assert_eq!(super::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rfc3339_micros() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(super::rfc3339_micros(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(super::rfc3339_micros(UNIX_EPOCH + Duration::from_millis(1_796_502_100_500)), "2026-12-05T20:21:40.500000Z");
        assert_eq!(super::rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(1_796_000_000_123_456_789)), "2026-11-30T00:53:20.123456789Z");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_376_724), "2026-11-22T19:45:24Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
