//! A detached container's log, in the format of Docker's `json-file` driver — one JSON
//! object per line, `{"log":TEXT,"stream":"stdout"|"stderr","time":RFC3339}` — so that
//! `logs` can tell the two streams apart and say when each line came, and tools that
//! read Docker's `LogPath` read berth's. A line the container writes without a newline
//! (a prompt) is logged at once as its own entry; joined, entries give the output back.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Which of the container's descriptors an entry came from (Docker's frame byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Descriptor 1, and everything a terminal carries.
    Stdout,
    /// Descriptor 2.
    Stderr,
}

impl Stream {
    /// The stream byte of Docker's multiplexed frames.
    pub fn frame_byte(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// One entry: what one write of the container held, up to and with one newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text (not valid UTF-8 is replaced, as Docker's driver does).
    pub log: String,
    /// Where it came from.
    pub stream: Stream,
    /// When it was read, RFC 3339 in UTC with nanoseconds.
    pub time: String,
}

impl Entry {
    /// Parses one line of the log. A line that is not an entry (a log written before
    /// berth kept entries) is output as it stands.
    pub fn parse(line: &[u8]) -> Entry {
        serde_json::from_slice(line).unwrap_or_else(|_| Entry {
            log: format!("{}\n", String::from_utf8_lossy(line)),
            stream: Stream::Stdout,
            time: String::new(),
        })
    }

    /// Nanoseconds since the epoch, from its time (0 if it has none).
    pub fn nanos(&self) -> u128 {
        parse_time(&self.time).unwrap_or(0)
    }
}

/// The entries of `data` (whole lines only) and how many bytes they took: a line still
/// being written stays for the next read.
pub fn entries(data: &[u8]) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    while let Some(n) = data[used..].iter().position(|b| *b == b'\n') {
        let line = &data[used..used + n];
        if !line.is_empty() {
            out.push(Entry::parse(line));
        }
        used += n + 1;
    }
    (out, used)
}

/// Appends entries to a log.
pub struct Writer {
    file: Option<File>,
    echo: bool,
}

impl Writer {
    /// Writes into `file` (opened for appending).
    pub fn new(file: File) -> Writer {
        Writer { file: Some(file), echo: false }
    }

    /// Passes what it is given on to this process's stdout and stderr as it came (a
    /// foreground run), and logs it into `file` if there is one.
    pub fn echoing(file: Option<File>) -> Writer {
        Writer { file, echo: true }
    }

    /// Logs what `stream` carried: an entry per line, the rest as one entry.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        if self.echo {
            let _ = match stream {
                Stream::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(data).and_then(|()| o.flush())
                }
                Stream::Stderr => std::io::stderr().lock().write_all(data),
            };
        }
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let time = netd::clock::rfc3339_nanos(SystemTime::now());
        let mut out = Vec::with_capacity(data.len() + 64);
        for piece in data.split_inclusive(|b| *b == b'\n') {
            let e = Entry { log: String::from_utf8_lossy(piece).into_owned(), stream, time: time.clone() };
            serde_json::to_writer(&mut out, &e).map_err(std::io::Error::other)?;
            out.push(b'\n');
        }
        // One write per read, so a reader never sees half an entry that is followed by
        // another's.
        file.write_all(&out)
    }
}

/// Copies the container's stdout and stderr pipes into the log until both are closed
/// (PID 1 and everything that inherited them gone). `quiet` is called once the output
/// has paused for a second after some was copied, and after the first second if nothing
/// came (the waiter gives back the pages the copy and its setting up touched).
pub fn copy(out: OwnedFd, err: OwnedFd, log: &mut Writer, quiet: &mut dyn FnMut()) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut open = [Some(File::from(out)), Some(File::from(err))];
    let streams = [Stream::Stdout, Stream::Stderr];
    let mut buf = vec![0u8; 16 * 1024];
    // Pages touched since `quiet` last ran: setting up touched some.
    let mut copied = true;
    while open.iter().any(Option::is_some) {
        let ready: Vec<usize> = {
            let live: Vec<(usize, PollFd)> =
                open.iter().enumerate().filter_map(|(i, f)| f.as_ref().map(|f| (i, PollFd::new(f.as_fd(), PollFlags::POLLIN)))).collect();
            let mut fds: Vec<PollFd> = live.iter().map(|(_, p)| *p).collect();
            let timeout = if copied { PollTimeout::from(1000u16) } else { PollTimeout::NONE };
            match poll(&mut fds, timeout) {
                Ok(0) => {
                    copied = false;
                    quiet();
                    continue;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            live.iter().zip(&fds).filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty())).map(|((i, _), _)| *i).collect()
        };
        for i in ready {
            let Some(f) = open[i].as_mut() else { continue };
            match f.read(&mut buf) {
                Ok(0) => open[i] = None,
                Ok(n) => {
                    let _ = log.write(streams[i], &buf[..n]);
                    copied = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => open[i] = None,
            }
        }
    }
}

/// Nanoseconds since the epoch of an RFC 3339 time in UTC (`Z`, any fraction).
pub fn parse_time(s: &str) -> Option<u128> {
    let (date, clock) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (c.next()??, c.next()??, c.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 || frac.len() > 9 {
        return None;
    }
    let nanos: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    let days = netd::clock::days_from_civil(y, m, day);
    let secs = u128::try_from(days).ok()? * 86_400 + u128::from(hh * 3600 + mm * 60 + ss);
    Some(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_round_trip_and_match_known_dates() {
        assert_eq!(netd::clock::rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_796_000_000, 123_456_789);
        assert_eq!(netd::clock::rfc3339_nanos(t), "2026-11-30T00:53:20.123456789Z");
        assert_eq!(parse_time("2026-11-30T00:53:20.123456789Z"), Some(1_796_000_000_123_456_789));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400_000_000_000));
        assert_eq!(parse_time("2026-11-30T00:53:20.5Z"), Some(1_796_000_000_500_000_000));
        for bad in ["", "2026-13-01T00:00:00Z", "2026-11-30 02:13:20Z", "2026-11-30T02:13:20+01:00", "x-1-1T0:0:0Z"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_keep_lines_streams_and_a_partial_line() {
        let dir = std::env::temp_dir().join(format!("berth-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&dir).unwrap();
        let mut w = Writer::new(f);
        w.write(Stream::Stdout, b"one\ntwo\n/ # ").unwrap();
        w.write(Stream::Stderr, b"oops \"quoted\"\n").unwrap();
        let data = std::fs::read(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        let (es, used) = entries(&data);
        assert_eq!(used, data.len());
        let logs: Vec<(&str, Stream)> = es.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            logs,
            [("one\n", Stream::Stdout), ("two\n", Stream::Stdout), ("/ # ", Stream::Stdout), ("oops \"quoted\"\n", Stream::Stderr)]
        );
        assert!(es.iter().all(|e| e.nanos() > 0));
        // Half a line is left for the next read; a line from before entries is stdout.
        let (es, used) = entries(b"plain text\n{\"log\":\"x");
        assert_eq!((es.len(), used, es[0].log.as_str(), es[0].stream), (1, 11, "plain text\n", Stream::Stdout));
    }
}
