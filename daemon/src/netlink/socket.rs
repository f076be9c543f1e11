//! A synchronous rtnetlink socket bound to the netns of the thread that opened it.
//!
//! Synchronous on purpose: a CNI plugin lives for a few milliseconds and a tokio runtime
//! would cost more than the work; and a socket keeps the netns it was opened in, so the
//! container side is driven by a socket opened once on a thread that entered that netns.

use std::io;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
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

    fn exchange(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        exchange(&self.sock, self.seq, msg, flags)
    }
}

/// Sends one netlink request of any family and collects the messages of its answer until
/// DONE or the ACK; a kernel error becomes an `io::Error` with its errno. Shared by the
/// rtnetlink socket and ctnetlink.
pub(crate) fn exchange<T>(sock: &NlSocket, seq: u32, msg: T, flags: u16) -> io::Result<Vec<T>>
where
    T: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    sock.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = sock.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply =
                NetlinkMessage::<T>::deserialize(&data[offset..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = reply.header.length as usize;
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
            if reply.header.sequence_number != seq {
                continue;
            }
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m),
                NetlinkPayload::Error(e) => match e.code {
                    Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                    None => return Ok(out),
                },
                NetlinkPayload::Done(_) => return Ok(out),
                _ => {}
            }
        }
    }
}
