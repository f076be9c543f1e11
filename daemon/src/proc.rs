//! Process identity: a PID with its start time, so that a PID reused after a crash is
//! never taken for the process a record names (as runc and conmon check it).

/// When process `pid` started (clock ticks after boot), if it exists and is not a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces): the state is
    // the first, starttime the twentieth.
    let rest = stat.rsplit_once(") ")?.1;
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// Whether `pid` runs and, when `started` is recorded, is the process that started then
/// (records of older versions have no start time: the PID alone counts).
pub fn same_process(pid: i32, started: Option<u64>) -> bool {
    match (start_time(pid), started) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_itself_and_not_another() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("own start time");
        assert!(same_process(me, Some(t)));
        assert!(!same_process(me, Some(t + 1)));
        assert!(same_process(me, None));
        assert!(!same_process(i32::MAX, None));
    }
}
