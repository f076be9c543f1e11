//! A synchronous rtnetlink socket bound to the netns of the thread that opened it.
//!
//! Synchronous on purpose: a CNI plugin lives for a few milliseconds and a tokio runtime
//! would cost more than the work; and a socket keeps the netns it was opened in, so the
//! container side is driven by a socket opened once on a thread that entered that netns.

use std::io;

use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket as NlSocket, SocketAddr};

use crate::error::NetlinkError;

/// One rtnetlink socket; every call is a request followed by its acknowledgement.
pub struct Socket {
    sock: NlSocket,
    seq: u32,
}

impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let mut sock = NlSocket::new(NETLINK_ROUTE).map_err(|e| NetlinkError::io("open socket", "", e))?;
        sock.bind_auto().map_err(|e| NetlinkError::io("bind socket", "", e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| NetlinkError::io("connect socket", "", e))?;
        // Extended acks would only add text we do not parse; strict checking makes dumps filter.
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(Self { sock, seq: 0 })
    }

    /// Sends one request that changes state and waits for its ACK.
    pub fn change(&mut self, op: &'static str, object: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NetlinkError> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags).map(|_| ()).map_err(|e| NetlinkError::io(op, object, e))
    }

    /// Sends a get request for one object and returns the kernel's answer.
    pub fn get(&mut self, op: &'static str, object: &str, msg: RouteNetlinkMessage) -> Result<Option<RouteNetlinkMessage>, NetlinkError> {
        match self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK) {
            Ok(mut v) => Ok(v.pop()),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(NetlinkError::io(op, object, e)),
        }
    }

    /// Sends a dump request and returns every message of the answer.
    pub fn dump(&mut self, op: &'static str, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_DUMP).map_err(|e| NetlinkError::io(op, "", e))
    }

    /// Sends a request that changes state and returns as soon as the kernel has made the
    /// change, not when it has finished behind it: deleting a link is gone, with its
    /// addresses and routes, within half a millisecond, but the kernel answers only after an
    /// RCU barrier, most of a CNI DEL's time. The request goes out from a detached process
    /// with NLM_F_ECHO; the kernel echoes the change to this socket before that wait (links:
    /// Linux 6.3 and later) or answers an error; on older kernels the sender's end answers.
    pub fn change_early(&mut self, op: &'static str, object: &str, msg: RouteNetlinkMessage) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let request = serialize(msg, self.seq, NLM_F_REQUEST | NLM_F_ECHO);
        let sender = super::detached::Sender::spawn(self.sock.as_raw_fd(), &request).map_err(|e| NetlinkError::io(op, object, e))?;
        self.early_answer(&sender).map_err(|e| NetlinkError::io(op, object, e))
    }

    /// Waits for the echo or error of the request `sender` carries, or for the sender's end.
    fn early_answer(&mut self, sender: &super::detached::Sender) -> io::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // `sent`: the sender's byte came; `ended`: its pipe closed, so an error the kernel
        // had for the request is queued by now and the socket is only drained.
        let (mut sent, mut ended) = (false, false);
        loop {
            let (sock_ready, done_ready) = {
                let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN), PollFd::new(sender.done.as_fd(), PollFlags::POLLIN)];
                let n = if ended { 1 } else { 2 };
                match poll(&mut fds[..n], if ended { PollTimeout::ZERO } else { PollTimeout::NONE }) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r => r.map_err(io::Error::from)?,
                };
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), !ended && ready(&fds[1]))
            };
            if sock_ready {
                let seq = self.seq;
                let got = with_recv_buf(|data| {
                    recv_datagram(&self.sock, data)?;
                    Ok(answer::<RouteNetlinkMessage>(data, seq, &mut Vec::new(), true))
                })?;
                if let Some(answer) = got {
                    return answer;
                }
            } else if ended {
                // Nothing from the kernel: the request succeeded without an echo.
                return if sent { Ok(()) } else { Err(io::Error::other("the netlink sender died before sending")) };
            }
            if done_ready {
                let mut byte = [0u8; 1];
                match nix::unistd::read(sender.done.as_raw_fd(), &mut byte) {
                    Ok(1) => sent = true,
                    Ok(_) => ended = true,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    fn exchange(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        exchange(&self.sock, self.seq, msg, flags)
    }
}

/// The receive buffer: the kernel sends dumps in datagrams of at most 32 KiB, and a
/// single object's answer (a link without its VF list) is a few KiB.
const DATAGRAM_MAX: usize = 64 * 1024;

thread_local! {
    /// This thread's receive buffer, made once: one per exchange was an mmap and a
    /// munmap each under musl's malloc.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(DATAGRAM_MAX));
}

/// Runs `f` on this thread's receive buffer (a fresh one if it is in use).
fn with_recv_buf<T>(f: impl FnOnce(&mut Vec<u8>) -> io::Result<T>) -> io::Result<T> {
    RECV_BUF.with(|b| match b.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::with_capacity(DATAGRAM_MAX)),
    })
}

/// Receives one datagram into `buf` (its capacity is the limit) with one system call,
/// where a peek for the size first would take two; only the pages written are touched.
fn recv_datagram(sock: &NlSocket, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let n = loop {
        // SAFETY: the kernel writes at most `capacity` bytes into the buffer's spare capacity.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.capacity(), libc::MSG_TRUNC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if n > buf.capacity() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("netlink answer of {n} bytes is larger than {DATAGRAM_MAX}")));
    }
    // SAFETY: the kernel initialised the first `n` bytes (n <= capacity).
    unsafe { buf.set_len(n) };
    Ok(())
}

/// One request in wire form.
fn serialize<T: NetlinkSerializable + std::fmt::Debug>(msg: T, seq: u32, flags: u16) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// Reads one datagram's messages for request `seq` into `out`; `Some` once the answer is
/// complete: DONE, the ACK, an error, or (`echo`) the kernel's echo of the change.
fn answer<T>(data: &[u8], seq: u32, out: &mut Vec<T>, echo: bool) -> Option<io::Result<()>>
where
    T: NetlinkDeserializable + std::fmt::Debug,
{
    let mut offset = 0;
    while offset < data.len() {
        let reply = match NetlinkMessage::<T>::deserialize(&data[offset..]) {
            Ok(r) => r,
            Err(e) => return Some(Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))),
        };
        let len = reply.header.length as usize;
        if len == 0 {
            break;
        }
        offset += (len + 3) & !3;
        if reply.header.sequence_number != seq {
            continue;
        }
        match reply.payload {
            NetlinkPayload::InnerMessage(_) if echo => return Some(Ok(())),
            NetlinkPayload::InnerMessage(m) => out.push(m),
            NetlinkPayload::Error(e) => {
                return Some(match e.code {
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    None => Ok(()),
                })
            }
            NetlinkPayload::Done(_) => return Some(Ok(())),
            _ => {}
        }
    }
    None
}

/// Sends one netlink request of any family and collects the messages of its answer until
/// DONE or the ACK; a kernel error becomes an `io::Error` with its errno. Shared by the
/// rtnetlink socket and ctnetlink.
pub(crate) fn exchange<T>(sock: &NlSocket, seq: u32, msg: T, flags: u16) -> io::Result<Vec<T>>
where
    T: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    sock.send(&serialize(msg, seq, flags), 0)?;
    let mut out = Vec::new();
    with_recv_buf(|data| loop {
        recv_datagram(sock, data)?;
        if let Some(answer) = answer(data, seq, &mut out, false) {
            return answer.map(|()| std::mem::take(&mut out));
        }
    })
}
