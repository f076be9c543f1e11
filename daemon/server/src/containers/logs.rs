//! `GET /containers/{id}/logs`: the container's log as Docker's stream — 8-byte frame
//! headers (stream, 0, 0, 0, big-endian length) unless it has a TTY — with `stdout` and
//! `stderr`, `timestamps`, `since`/`until`, `tail` and `follow`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::container::log::{Entry, Stream};
use berth::container::{self, output::Until};

use super::{error, flag};
use crate::api::{bad, blocking, App, Result};

/// One frame of the multiplexed stream (`stream`: 1 stdout, 2 stderr), or the bytes as
/// they are with a TTY.
pub(super) fn frame(stream: u8, data: &[u8], tty: bool) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Which entries a client asked for, and how it wants them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Select {
    /// Entries of stdout.
    pub stdout: bool,
    /// Entries of stderr.
    pub stderr: bool,
    /// Each entry prefixed with its time, as `docker logs -t` prints it.
    pub timestamps: bool,
    /// Entries from (inclusive) and until (exclusive), nanoseconds since the epoch.
    pub since: u128,
    /// `None`: no end.
    pub until: Option<u128>,
    /// The terminal's raw stream instead of frames.
    pub tty: bool,
}

impl Select {
    /// The frames of the entries wanted, in order.
    pub fn frames(&self, entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let wanted = match e.stream {
                Stream::Stdout => self.stdout,
                Stream::Stderr => self.stderr,
            };
            let t = e.nanos();
            if !wanted || t < self.since || self.until.is_some_and(|u| t >= u) {
                continue;
            }
            let data = if self.timestamps { format!("{} {}", e.time, e.log) } else { e.log.clone() };
            out.extend(frame(e.stream.frame_byte(), data.as_bytes(), self.tty));
        }
        out
    }
}

/// A time of Docker's `since`/`until` query: Unix seconds with an optional fraction
/// (what the docker CLI sends), in nanoseconds; 0 and empty mean none.
fn unix_time(q: &HashMap<String, String>, key: &str) -> Result<Option<u128>> {
    let Some(v) = q.get(key).filter(|v| !v.is_empty() && *v != "0") else { return Ok(None) };
    let bad_time = || bad(format!("invalid {key} {v:?}: expected Unix seconds"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: u128 = secs.parse().map_err(|_| bad_time())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_time());
    }
    let nanos: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad_time())? };
    Ok(Some(secs * 1_000_000_000 + nanos))
}

pub async fn logs(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    if !flag(&q, "stdout") && !flag(&q, "stderr") {
        return Err(bad("you must choose at least one stream"));
    }
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") | Some("") => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| bad(format!("invalid tail {t:?}")))?),
    };
    let mut sel = Select {
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        timestamps: flag(&q, "timestamps"),
        since: unix_time(&q, "since")?.unwrap_or(0),
        until: unix_time(&q, "until")?,
        tty: false,
    };
    // Following stops at `until`, as dockerd's does: what comes later is not wanted.
    let follow = flag(&q, "follow") && sel.until.is_none();
    let (first, follower, sel) = blocking(move || {
        let c = container::lookup(&app.paths, &id).map_err(error)?;
        sel.tty = c.spec.tty;
        let (entries, end) = c.log_entries(&app.paths).map_err(error)?;
        let from = tail.map_or(0, |n| entries.len().saturating_sub(n));
        let first = sel.frames(&entries[from..]);
        let follower = if follow { Some(c.follow(&app.paths, Some(end), Until::NotRunning).map_err(error)?) } else { None };
        Ok((first, follower, sel))
    })
    .await?;
    let rest = futures::stream::unfold(follower, move |f| async move {
        let mut f = f?;
        let (entries, f) = tokio::task::spawn_blocking(move || (f.next_entries(), f)).await.ok()?;
        entries.map(|e| (Ok::<_, std::io::Error>(sel.frames(&e)), Some(f)))
    });
    let head = futures::stream::iter((!first.is_empty()).then_some(Ok::<_, std::io::Error>(first)));
    let body = Body::from_stream(futures::StreamExt::chain(head, rest));
    let ct = if sel.tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &str, stream: Stream, time: &str) -> Entry {
        Entry { log: log.into(), stream, time: time.into() }
    }

    #[test]
    fn frames_carry_stream_and_length() {
        assert_eq!(frame(1, b"hi\n", false), vec![1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
        assert_eq!(frame(2, b"hi\n", false)[0], 2);
        assert_eq!(frame(1, b"hi\n", true), b"hi\n".to_vec());
    }

    #[test]
    fn selection_filters_streams_times_and_adds_timestamps() {
        let es = [
            entry("a\n", Stream::Stdout, "1970-01-01T00:00:01.000000000Z"),
            entry("b\n", Stream::Stderr, "1970-01-01T00:00:02.000000000Z"),
            entry("c\n", Stream::Stdout, "1970-01-01T00:00:03.000000000Z"),
        ];
        let all = Select { stdout: true, stderr: true, timestamps: false, since: 0, until: None, tty: true };
        assert_eq!(all.frames(&es), b"a\nb\nc\n");
        assert_eq!(Select { stderr: false, ..all }.frames(&es), b"a\nc\n");
        assert_eq!(Select { since: 2_000_000_000, until: Some(3_000_000_000), ..all }.frames(&es), b"b\n");
        assert_eq!(Select { timestamps: true, stdout: false, ..all }.frames(&es), b"1970-01-01T00:00:02.000000000Z b\n");
        assert_eq!(Select { tty: false, stdout: false, ..all }.frames(&es)[..8], [2, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn since_and_until_are_unix_seconds() {
        let q = |v: &str| HashMap::from([("since".to_string(), v.to_string())]);
        assert_eq!(unix_time(&q("1700000000.5"), "since").unwrap(), Some(1_700_000_000_500_000_000));
        assert_eq!(unix_time(&q("0"), "since").unwrap(), None);
        assert!(unix_time(&q("yesterday"), "since").is_err());
        assert!(unix_time(&q("1.x"), "since").is_err());
    }
}
