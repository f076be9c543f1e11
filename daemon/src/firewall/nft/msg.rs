//! nf_tables netlink messages: attribute encoding, batches, and the socket that sends a
//! batch as one transaction and reads every acknowledgement. The constants are the
//! kernel's (`linux/netfilter/nf_tables.h`, `nfnetlink.h`).

use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

/// Netlink request flags.
pub const NLM_F_REQUEST: u16 = 0x1;
/// Asks for an acknowledgement.
pub const NLM_F_ACK: u16 = 0x4;
/// Fail if the object exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// Create if missing.
pub const NLM_F_CREATE: u16 = 0x400;
/// Append (rules).
pub const NLM_F_APPEND: u16 = 0x800;
/// Dump every matching object.
pub const NLM_F_DUMP: u16 = 0x300;

/// `NFT_MSG_*` message types.
#[allow(missing_docs)]
pub mod ty {
    pub const NEWTABLE: u16 = 0;
    pub const GETTABLE: u16 = 1;
    pub const DELTABLE: u16 = 2;
    pub const NEWCHAIN: u16 = 3;
    pub const GETCHAIN: u16 = 4;
    pub const DELCHAIN: u16 = 5;
    pub const NEWRULE: u16 = 6;
    pub const GETRULE: u16 = 7;
    pub const DELRULE: u16 = 8;
    pub const NEWSET: u16 = 9;
    pub const GETSET: u16 = 10;
    pub const DELSET: u16 = 11;
    pub const NEWSETELEM: u16 = 12;
    pub const GETSETELEM: u16 = 13;
    pub const DELSETELEM: u16 = 14;
}

/// `NFPROTO_INET`: the one table berth keeps serves both address families.
pub const FAMILY_INET: u8 = 1;

/// One nf_tables message under construction: header, `nfgenmsg`, attributes.
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Msg {
    /// A message of type `ty` (an `NFT_MSG_*`) for address family `family`.
    pub fn new(ty: u16, flags: u16, family: u8) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | ty).to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&[family, 0, 0, 0]);
        Self { buf, open: Vec::new() }
    }

    /// The message type without the subsystem.
    pub fn kind(&self) -> u16 {
        u16::from_ne_bytes([self.buf[4], self.buf[5]]) & 0xff
    }

    fn attr_header(&mut self, ty: u16, len: usize) {
        self.buf.extend_from_slice(&((len + 4) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A binary attribute.
    pub fn bytes(&mut self, ty: u16, v: &[u8]) -> &mut Self {
        self.attr_header(ty, v.len());
        self.buf.extend_from_slice(v);
        self.pad();
        self
    }

    /// A NUL-terminated string attribute.
    pub fn str(&mut self, ty: u16, v: &str) -> &mut Self {
        self.attr_header(ty, v.len() + 1);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0);
        self.pad();
        self
    }

    /// A big-endian u32 attribute, as nf_tables takes numbers.
    pub fn u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    /// Opens a nested attribute; `end` closes it.
    pub fn begin(&mut self, ty: u16) -> &mut Self {
        self.open.push(self.buf.len());
        self.attr_header(ty | NLA_F_NESTED, 0);
        self
    }

    /// Closes the innermost nested attribute.
    pub fn end(&mut self) -> &mut Self {
        if let Some(at) = self.open.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The wire bytes with sequence number `seq` and `flags` added to the message's own.
    fn finish(&self, seq: u32, flags: u16) -> Vec<u8> {
        let mut b = self.buf.clone();
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        let flags = u16_at(&b, 6).unwrap_or(0) | flags;
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }

    /// The attributes, for tests.
    pub fn payload(&self) -> &[u8] {
        &self.buf[20..]
    }
}

fn batch_marker(ty: u16, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&20u32.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: AF_UNSPEC, version 0, res_id = the subsystem (big-endian).
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
    b
}

/// A failed message of a batch: its index in the batch and the kernel's errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Index of the message in the batch.
    pub index: usize,
    /// Positive errno.
    pub errno: i32,
}

/// One netlink socket to nf_tables, used for one engine operation.
pub struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    deleted: bool,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4).map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

impl Conn {
    /// Opens a socket; fails where the kernel has no nf_tables.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Large batches (a reconcile of thousands of mappings) in one send.
        let _ = sock.set_rx_buf_sz(1 << 20);
        Ok(Self { sock, seq: 1, buf: vec![0u8; 1 << 16], deleted: false })
    }

    /// Sends `msgs` as one transaction: all applied, or none. On failure returns every
    /// message the kernel refused with its errno.
    pub fn commit(&mut self, msgs: &[&Msg]) -> io::Result<Result<(), Vec<Failed>>> {
        if msgs.is_empty() {
            return Ok(Ok(()));
        }
        let base = self.seq;
        self.seq = self.seq.wrapping_add(msgs.len() as u32 + 2);
        let mut out = batch_marker(NFNL_MSG_BATCH_BEGIN, base);
        for (i, m) in msgs.iter().enumerate() {
            out.extend_from_slice(&m.finish(base + 1 + i as u32, NLM_F_ACK));
        }
        out.extend_from_slice(&batch_marker(NFNL_MSG_BATCH_END, base + 1 + msgs.len() as u32));
        let deletes = msgs.iter().any(|m| matches!(m.kind(), ty::DELTABLE | ty::DELCHAIN | ty::DELRULE | ty::DELSETELEM));
        self.deleted |= deletes;
        if deletes {
            mark_deleting();
        }
        self.send(&out)?;
        let mut acked = 0;
        let mut failed = Vec::new();
        while acked < msgs.len() {
            let n = self.recv()?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32_at(&self.buf, off).unwrap_or(0) as usize;
                let kind = u16_at(&self.buf, off + 4).unwrap_or(0);
                let seq = u32_at(&self.buf, off + 8).unwrap_or(0);
                if len < 16 {
                    break;
                }
                if kind == NLMSG_ERROR {
                    let errno = u32_at(&self.buf, off + 16).map(|e| -(e as i32)).unwrap_or(libc::EIO);
                    acked += 1;
                    if errno != 0 {
                        failed.push(Failed { index: seq.wrapping_sub(base + 1) as usize, errno });
                    }
                }
                off += (len + 3) & !3;
            }
        }
        Ok(if failed.is_empty() { Ok(()) } else { Err(failed) })
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let sent = self.sock.send(data, 0)?;
        if sent != data.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    fn recv(&mut self) -> io::Result<usize> {
        let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
        if n == 0 {
            return Err(io::Error::other("netlink socket closed"));
        }
        Ok(n)
    }

    /// The ruleset generation; fails where the kernel has no nf_tables.
    pub fn generation(&mut self) -> io::Result<u32> {
        const NFT_MSG_GETGEN: u16 = 16;
        let answers = self.query(&Msg::new(NFT_MSG_GETGEN, 0, 0))?;
        let a = answers.first().ok_or_else(|| io::Error::other("no generation in the answer"))?;
        attrs(a)
            .into_iter()
            .find(|(t, _)| *t == 1)
            .and_then(|(_, v)| v.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            .ok_or_else(|| io::Error::other("no generation in the answer"))
    }

    /// Sends one request and returns the attribute payloads of the answers (several for a
    /// dump); a missing object is an empty list.
    pub fn query(&mut self, msg: &Msg) -> io::Result<Vec<Vec<u8>>> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.send(&msg.finish(seq, 0))?;
        let dump = u16_at(&msg.buf, 6).unwrap_or(0) & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32_at(&self.buf, off).unwrap_or(0) as usize;
                let kind = u16_at(&self.buf, off + 4).unwrap_or(0);
                if len < 16 || off + len > n {
                    return Err(io::Error::other("malformed netlink answer"));
                }
                match kind {
                    NLMSG_DONE => return Ok(answers),
                    NLMSG_ERROR => {
                        let errno = u32_at(&self.buf, off + 16).map(|e| -(e as i32)).unwrap_or(libc::EIO);
                        return match errno {
                            0 => Ok(answers),
                            libc::ENOENT => Ok(Vec::new()),
                            e => Err(io::Error::from_raw_os_error(e)),
                        };
                    }
                    _ => answers.push(self.buf[off + 20..off + len].to_vec()),
                }
                off += (len + 3) & !3;
            }
            if !dump {
                return Ok(answers);
            }
        }
    }
}

impl Drop for Conn {
    /// After a transaction that deleted something, the last close of an nf_tables socket
    /// waits for the kernel to free the deleted objects, one RCU grace period (~15 ms
    /// here; `nft_rcv_nl_event` flushes the destroy work). Nothing needs that wait: the
    /// last reference goes to a grandchild that sleeps past this process's close and then
    /// exits, so the wait happens there, off the caller's path (see `release_elsewhere`).
    fn drop(&mut self) {
        if self.deleted {
            release_elsewhere(self.sock.as_raw_fd());
        }
    }
}

/// The process's nf_tables socket, opened on first use and kept: closing one while the
/// kernel still frees objects some transaction deleted waits for that (see `Drop`), so a
/// process closes one only after its own deletions, through [`release_elsewhere`].
static SHARED: std::sync::Mutex<Option<Conn>> = std::sync::Mutex::new(None);

/// Runs `f` with the process's nf_tables socket. After a transaction that deleted
/// something the socket is let go (its last reference to a grandchild) and the next call
/// opens a new one.
pub fn with_conn<T, E: From<io::Error>>(f: impl FnOnce(&mut Conn) -> Result<T, E>) -> Result<T, E> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let conn = match shared.take() {
        Some(c) => c,
        None => Conn::open()?,
    };
    let conn = shared.insert(conn);
    let r = f(conn);
    if conn.deleted {
        shared.take();
    }
    r
}

/// The file whose modification time says when a transaction last deleted something.
fn deleting_mark() -> std::path::PathBuf {
    crate::sysctl::state_root().join("nft-deleting")
}

/// Notes that a transaction deletes something now (see [`release_elsewhere`]).
fn mark_deleting() {
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(deleting_mark());
    let _ = f.and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// Set in a process that outlives its requests (netd): a socket to let go is then held
/// by a thread of this process ([`hold_in_thread`]) instead of a forked grandchild, whose
/// fork copies the caller's page tables (twice per detach from netd, ~0.3 ms each).
static LONG_LIVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares the calling process long-lived (netd's server): see `LONG_LIVED`.
pub fn long_lived() {
    LONG_LIVED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// How long a let-go socket is held at least (see [`release_elsewhere`]).
const HOLD_MS: i64 = 100;
/// How long without a deletion counts as paused.
const QUIET_MS: i64 = 50;
/// How long a socket is held at most.
const MOST_MS: i64 = 10_000;

/// How long ago a transaction last deleted something; `None` if no mark is readable.
fn since_deleting() -> Option<std::time::Duration> {
    let m = std::fs::metadata(deleting_mark()).and_then(|m| m.modified()).ok()?;
    Some(std::time::SystemTime::now().duration_since(m).unwrap_or_default())
}

/// Hands `fd` to the process's releaser thread, which lets each socket go as the
/// grandchild of [`release_elsewhere`] would. False if the thread is gone.
fn hold_in_thread(fd: std::os::fd::OwnedFd) -> bool {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    static RELEASER: std::sync::OnceLock<mpsc::Sender<std::os::fd::OwnedFd>> = std::sync::OnceLock::new();
    let tx = RELEASER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<std::os::fd::OwnedFd>();
        let _ = std::thread::Builder::new().name("nft-release".into()).spawn(move || {
            let mut held: Vec<(Instant, std::os::fd::OwnedFd)> = Vec::new();
            loop {
                let ms = |n: i64| Duration::from_millis(n as u64);
                let wait = if held.is_empty() { Duration::from_secs(3600) } else { ms(QUIET_MS) };
                match rx.recv_timeout(wait) {
                    Ok(fd) => held.push((Instant::now(), fd)),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let quiet = !matches!(since_deleting(), Some(d) if d <= ms(QUIET_MS));
                // Dropping one closes it: the kernel's wait happens on this thread.
                held.retain(|(t, _)| {
                    let age = t.elapsed();
                    age < ms(HOLD_MS) || (!quiet && age < ms(MOST_MS))
                });
            }
        });
        tx
    });
    tx.send(fd).is_ok()
}

/// Hands the last reference to `fd` to a detached grandchild (see `Drop`), or to a
/// thread of this process in a long-lived one, which lets it go once deletions have
/// paused. The kernel flushes its destroy work on that close under the netns's
/// nf_tables commit mutex, so a close while others are deleting holds up their
/// transactions for a grace period: back-to-back DELs took 8–29 ms in bursts where they
/// took 3. The holder waits [`HOLD_MS`], then until no transaction has deleted anything
/// for [`QUIET_MS`] (the mark's time), at most [`MOST_MS`].
fn release_elsewhere(fd: std::os::fd::RawFd) {
    if LONG_LIVED.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: `fd` is the open socket of the `Conn` being dropped; the duplicate is
        // a new descriptor this call owns.
        let dup = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
        if dup.is_ok_and(hold_in_thread) {
            return;
        }
    }
    let Ok(mark) = std::ffi::CString::new(deleting_mark().into_os_string().into_encoded_bytes()) else { return };
    // SAFETY: the grandchild makes only system calls (nanosleep, stat, clock_gettime)
    // on `mark`, made before the fork, holding `fd`, then exits. If it cannot be made,
    // this process pays the wait itself when it closes the socket.
    let _ = unsafe {
        crate::child::detached(&[fd], || {
            let sleep = |ms: i64| {
                let t = libc::timespec { tv_sec: 0, tv_nsec: ms * 1_000_000 };
                libc::nanosleep(&t, std::ptr::null_mut());
            };
            let now_ms = || {
                let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                libc::clock_gettime(libc::CLOCK_REALTIME, &mut t);
                t.tv_sec * 1000 + t.tv_nsec / 1_000_000
            };
            sleep(HOLD_MS);
            for _ in 0..MOST_MS / QUIET_MS {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(mark.as_ptr(), &mut st) != 0 || now_ms() - (st.st_mtime * 1000 + st.st_mtime_nsec / 1_000_000) > QUIET_MS {
                    break;
                }
                sleep(QUIET_MS);
            }
        })
    };
}

/// The attributes of a payload as (type without flags, value) pairs.
pub fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while let (Some(len), Some(kind)) = (u16_at(b, i), u16_at(b, i + 2)) {
        let len = len as usize;
        if len < 4 || i + len > b.len() {
            break;
        }
        out.push((kind & 0x3fff, &b[i + 4..i + len]));
        i += (len + 3) & !3;
    }
    out
}

/// The data value of the (first) element in a `NEWSETELEM` answer.
pub fn elem_value(answer: &[u8]) -> Option<Vec<u8>> {
    let (_, list) = attrs(answer).into_iter().find(|(t, _)| *t == 3)?;
    let (_, elem) = attrs(list).into_iter().find(|(t, _)| *t == 1)?;
    let (_, data) = attrs(elem).into_iter().find(|(t, _)| *t == 2)?;
    attrs(data).into_iter().find(|(t, _)| *t == 1).map(|(_, v)| v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_closed() {
        let mut m = Msg::new(ty::NEWTABLE, NLM_F_CREATE, FAMILY_INET);
        m.str(1, "berth").begin(2).u32(1, 7).end();
        assert_eq!(m.kind(), ty::NEWTABLE);
        let p = m.payload();
        // "berth\0" is 6 bytes, padded to 8: header 4 + 8.
        assert_eq!(&p[..4], &[10, 0, 1, 0]);
        assert_eq!(&p[4..10], b"berth\0");
        // Nested: 4 header + 8 inner, flagged nested.
        assert_eq!(u16_at(p, 12), Some(12));
        assert_eq!(u16_at(p, 14), Some(2 | NLA_F_NESTED));
        assert_eq!(&p[20..24], &7u32.to_be_bytes());
        let a = attrs(p);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (1, &b"berth\0"[..]));
        assert_eq!(attrs(a[1].1), vec![(1, &7u32.to_be_bytes()[..])]);
    }
}
