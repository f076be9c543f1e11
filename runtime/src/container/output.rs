//! A detached container's output and input for whoever attaches: its log's entries, and
//! followed as it grows (`logs -f`, attach), and a FIFO as its stdin (`run -i` through
//! the API).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::log::Entry;
use super::{lookup, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// When following stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When PID 1 is not running (now or later): `logs -f`.
    NotRunning,
    /// When the run after `started_at` (the start under way or the next) has ended:
    /// attach before start.
    NextExit(Option<u64>),
}

/// The container's log read as it grows, entry by entry.
pub struct Follower {
    file: File,
    /// Bytes of an entry not yet wholly written.
    pending: Vec<u8>,
    paths: Paths,
    id: String,
    until: Until,
    done: bool,
}

impl Container {
    /// The log, created if it is not yet (a container not yet started), so that a
    /// follower holds it even if `--rm` removes the container as soon as it exits.
    pub fn log(&self, paths: &Paths) -> Result<File> {
        let p = paths.container(&self.id).join("container.log");
        std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&p).map_err(|e| Error::io("open", &p, e))
    }

    /// Follows the log from byte `from` (`None`: its current end).
    pub fn follow(&self, paths: &Paths, from: Option<u64>, until: Until) -> Result<Follower> {
        use std::io::Seek;
        let mut file = self.log(paths)?;
        let pos = match from {
            Some(p) => std::io::SeekFrom::Start(p),
            None => std::io::SeekFrom::End(0),
        };
        file.seek(pos).map_err(|e| Error::io("seek", paths.container(&self.id).join("container.log"), e))?;
        Ok(Follower { file, pending: Vec::new(), paths: paths.clone(), id: self.id.clone(), until, done: false })
    }

    /// The entries logged so far, and the offset after the last, where following them
    /// starts.
    pub fn log_entries(&self, paths: &Paths) -> Result<(Vec<Entry>, u64)> {
        let mut data = Vec::new();
        self.log(paths)?.read_to_end(&mut data).map_err(|e| Error::io("read", paths.container(&self.id).join("container.log"), e))?;
        let (entries, used) = super::log::entries(&data);
        Ok((entries, used as u64))
    }

    /// A writer into the stdin of an interactive container (`-i`) started detached: a
    /// FIFO in its directory that PID 1 opens when it starts. The writer keeps what is
    /// written before then; PID 1 sees end of file when every writer is closed.
    pub fn stdin(&self, paths: &Paths) -> Result<File> {
        if !self.spec.interactive {
            return Err(Error::State(format!("container {} was not created with an open stdin", self.name)));
        }
        let p = paths.container(&self.id).join("stdin");
        match nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkfifo {}", p.display()), e)),
        }
        // Read-write: opening never waits for a reader, and the pipe stays alive (and
        // keeps its data) until PID 1 has it open.
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(&p).map_err(|e| Error::io("open", &p, e))
    }
}

impl Container {
    /// Running, or its start under way (its monitor lives, the record says created):
    /// until the monitor has recorded an exit, with its code.
    pub fn busy(&self) -> bool {
        self.effective_status() == Status::Running || (self.state.status == Status::Created && self.monitor_alive())
    }

    /// Whether a run that started after `before` (a start time, or none) has ended: a
    /// container started and gone between two looks still has a new start time.
    pub fn exited_since(&self, before: Option<u64>) -> bool {
        !self.busy() && self.state.status == Status::Exited && self.state.started_at != before
    }
}

impl Follower {
    fn ended(&self) -> bool {
        let Ok(c) = lookup(&self.paths, &self.id) else { return true };
        match self.until {
            Until::NotRunning => !c.busy(),
            Until::NextExit(before) => c.exited_since(before),
        }
    }

    /// The entries written since the last call, waiting for more; `None` once the
    /// container has stopped and everything was read.
    pub fn next_entries(&mut self) -> Option<Vec<Entry>> {
        while !self.done {
            let _ = self.file.read_to_end(&mut self.pending);
            if self.pending.contains(&b'\n') {
                return Some(self.take());
            }
            if self.ended() {
                // One last read: what PID 1 wrote just before it exited.
                self.done = true;
                let _ = self.file.read_to_end(&mut self.pending);
                let last = self.take();
                return (!last.is_empty()).then_some(last);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn take(&mut self) -> Vec<Entry> {
        let (entries, used) = super::log::entries(&self.pending);
        self.pending.drain(..used);
        entries
    }
}
