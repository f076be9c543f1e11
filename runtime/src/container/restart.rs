//! Restart policies, as Docker's `--restart`: `no`, `always`, `unless-stopped`,
//! `on-failure[:N]`. When PID 1 of a detached container exits, its reaper starts it again
//! if the policy says so — after a delay of 100 ms that doubles for each quick exit in a
//! row (up to a minute; a run of 10 s or more starts over), as dockerd's restart manager
//! does — unless someone stopped or killed it (`stop`, `kill`), which Docker calls
//! stopped by hand. netd, at its start, starts `always` containers and the
//! `unless-stopped` ones not stopped by hand: what a reboot stopped comes back.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// When a container is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Never.
    #[default]
    No,
    /// Whatever its exit, unless stopped by hand; and with the daemon.
    Always,
    /// As `always`, but a container stopped by hand stays stopped across daemon starts.
    UnlessStopped,
    /// After a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure,
}

/// A container's restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// Which.
    pub policy: Policy,
    /// `on-failure:N`'s N.
    #[serde(default)]
    pub max_retries: u32,
}

/// dockerd's longest delay between restarts.
const MAX_DELAY_MS: u64 = 60_000;

impl Restart {
    /// Parses `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(s: &str) -> Result<Restart> {
        let bad = |why: &str| Error::Flag { flag: "--restart", value: s.to_string(), why: why.to_string() };
        let (name, n) = s.split_once(':').map_or((s, None), |(a, b)| (a, Some(b)));
        let policy = match name {
            "" | "no" => Policy::No,
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => Policy::OnFailure,
            _ => return Err(bad("use no, always, unless-stopped or on-failure[:max-retries]")),
        };
        let max_retries = match n {
            None => 0,
            Some(_) if policy != Policy::OnFailure => return Err(bad("only on-failure takes a maximum retry count")),
            Some(n) => n.parse().map_err(|_| bad("the maximum retry count is a whole number"))?,
        };
        Ok(Restart { policy, max_retries })
    }

    /// The API's `RestartPolicy` name and count, checked as `parse` checks a flag.
    pub fn from_api(name: &str, max_retries: i64) -> Result<Restart> {
        let mut r = Restart::parse(name)?;
        if max_retries < 0 || (max_retries > 0 && r.policy != Policy::OnFailure) {
            return Err(Error::Flag {
                flag: "RestartPolicy",
                value: format!("{name}:{max_retries}"),
                why: "only on-failure takes a maximum retry count".into(),
            });
        }
        r.max_retries = u32::try_from(max_retries).unwrap_or(u32::MAX);
        Ok(r)
    }

    /// Docker's name of the policy.
    pub fn name(&self) -> &'static str {
        match self.policy {
            Policy::No => "no",
            Policy::Always => "always",
            Policy::UnlessStopped => "unless-stopped",
            Policy::OnFailure => "on-failure",
        }
    }

    /// Whether a run that ended with `code` is started again, after `restarts` restarts.
    pub fn wants(&self, code: i32, stopped_by_hand: bool, restarts: u32) -> bool {
        !stopped_by_hand
            && match self.policy {
                Policy::No => false,
                Policy::Always | Policy::UnlessStopped => true,
                Policy::OnFailure => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
            }
    }

    /// Whether the daemon starts it when it starts.
    pub fn at_boot(&self, stopped_by_hand: bool) -> bool {
        self.policy == Policy::Always || (self.policy == Policy::UnlessStopped && !stopped_by_hand)
    }
}

/// The delay before the next restart: 100 ms after a run of 10 s or more (or the first),
/// else twice the last, at most a minute.
pub fn next_delay(ran_secs: u64, last_ms: u64) -> u64 {
    if ran_secs >= 10 || last_ms == 0 {
        100
    } else {
        (last_ms * 2).min(MAX_DELAY_MS)
    }
}

impl Container {
    /// Whether its restart policy brings it back after an exit with `code` (never one
    /// removed when it exits).
    pub(crate) fn restarts_after(&self, code: i32) -> bool {
        !self.spec.auto_remove && self.spec.restart.wants(code, self.state.stopped_by_hand, self.state.restart_count)
    }

    /// After PID 1 exited with `code` and the exit was recorded (the reaper): starts it
    /// again under a new monitor run from `berth` if its policy says so, after the
    /// delay. A container stopped, killed or removed meanwhile is left as it is.
    pub fn restart_by_policy(&self, paths: &Paths, berth: &Path, code: i32) -> Result<bool> {
        let c = super::lookup(paths, &self.id)?;
        if !c.restarts_after(code) {
            return Ok(false);
        }
        let ran = c.state.finished_at.unwrap_or(0).saturating_sub(c.state.started_at.unwrap_or(0));
        let delay = next_delay(ran, c.state.restart_delay_ms);
        super::update(paths, &c.id, |r| {
            r.state.restart_delay_ms = delay;
            r.state.restarting = true;
        })?;
        std::thread::sleep(Duration::from_millis(delay));
        // Looked at again: a stop, kill, start or rm during the delay wins. The count and
        // the decision are one update; a stop after it is seen when the run is recorded.
        let c = super::lookup(paths, &self.id)?;
        if c.busy() {
            super::update(paths, &c.id, |r| r.state.restarting = false)?;
            return Ok(false);
        }
        let mut go = false;
        let c = super::update(paths, &c.id, |r| {
            go = !r.state.stopped_by_hand && r.state.status == Status::Exited;
            // Still restarting until the run is recorded: a stop meanwhile must count.
            r.state.restarting = go;
            if go {
                r.state.restart_count += 1;
            }
        })?;
        if go {
            c.launch(paths, berth)?;
        }
        Ok(go)
    }
}

/// When the daemon starts: starts, with `berth` as their monitor, the containers whose
/// policy brings them back with it (`always`, and `unless-stopped` ones not stopped by
/// hand) and that are not running; `report` hears how each start went as it ends.
pub fn start_at_boot(paths: &Paths, berth: &Path, report: &mut dyn FnMut(&Container, Result<()>)) {
    for c in super::all(paths).unwrap_or_default() {
        if c.spec.restart.at_boot(c.state.stopped_by_hand) && !c.busy() {
            report(&c, c.start(paths, berth));
        }
    }
}

/// The reaper's last step, after PID 1 of a detached container exited with `code` and
/// the exit was recorded: [`Container::restart_by_policy`] with this executable; why it
/// could not is logged (the record already says how the run ended).
pub fn after_exit(paths: &Paths, c: &Container, code: i32) {
    let res =
        std::env::current_exe().map_err(|e| Error::io("find", "/proc/self/exe", e)).and_then(|exe| c.restart_by_policy(paths, &exe, code));
    if let Err(e) = res {
        tracing::warn!(error = %e, id = %c.id, "restart by policy failed");
        // The exit may have been recorded as restarting (see `monitor::reap`).
        let _ = super::update(paths, &c.id, |r| r.state.restarting = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_dockers() {
        assert_eq!(Restart::parse("no").unwrap(), Restart::default());
        assert_eq!(Restart::parse("always").unwrap().policy, Policy::Always);
        assert_eq!(Restart::parse("unless-stopped").unwrap().name(), "unless-stopped");
        assert_eq!(Restart::parse("on-failure:3").unwrap(), Restart { policy: Policy::OnFailure, max_retries: 3 });
        for bad in ["sometimes", "always:2", "on-failure:x", "on-failure:-1"] {
            assert!(Restart::parse(bad).is_err(), "{bad}");
        }
        assert!(Restart::from_api("always", 1).is_err());
        assert_eq!(Restart::from_api("on-failure", 2).unwrap().max_retries, 2);
    }

    #[test]
    fn who_is_restarted_and_when() {
        let of = |s: &str| Restart::parse(s).unwrap();
        assert!(!of("no").wants(1, false, 0));
        assert!(of("always").wants(0, false, 9) && !of("always").wants(0, true, 0));
        assert!(!of("on-failure").wants(0, false, 0) && of("on-failure").wants(2, false, 50));
        assert!(of("on-failure:2").wants(2, false, 1) && !of("on-failure:2").wants(2, false, 2));
        assert!(of("always").at_boot(true) && of("unless-stopped").at_boot(false) && !of("unless-stopped").at_boot(true));
        assert!(!of("on-failure").at_boot(false));
        assert_eq!((next_delay(0, 0), next_delay(1, 100), next_delay(1, 400), next_delay(12, 800)), (100, 200, 800, 100));
        assert_eq!(next_delay(0, 50_000), MAX_DELAY_MS);
    }
}
