//! Flushing stale conntrack entries of a UDP host port over ctnetlink, in-process.
//!
//! A datagram that reached the host port before the mapping existed leaves an entry
//! without NAT; while it lives (30 s and more, refreshed by every datagram) the kernel
//! keeps using it and the new DNAT never applies. Removing a mapping has the mirror
//! problem. So both publish and unpublish drop every entry whose original destination
//! port is the host port.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::spec::{PortMapping, Proto};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IPPROTO_UDP: u8 = 17;

/// Iterates the attributes of a netlink attribute block: (type without flags, value).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let val = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((ty, val))
    })
}

/// Whether an entry's original tuple is UDP to `port`; returns the raw tuple to delete by.
fn matches(entry: &[u8], port: u16) -> Option<Vec<u8>> {
    let (_, orig) = attrs(entry).find(|(t, _)| *t == CTA_TUPLE_ORIG)?;
    let (_, proto) = attrs(orig).find(|(t, _)| *t == CTA_TUPLE_PROTO)?;
    let num = attrs(proto).find(|(t, _)| *t == CTA_PROTO_NUM).and_then(|(_, v)| v.first().copied())?;
    let dport = attrs(proto)
        .find(|(t, _)| *t == CTA_PROTO_DST_PORT)
        .filter(|(_, v)| v.len() >= 2)
        .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]))?;
    (num == IPPROTO_UDP && dport == port).then(|| orig.to_vec())
}

fn message(ty: u16, flags: u16, seq: u32, family: u8, payload: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + payload.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | ty).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, 0, 0]);
    m.extend_from_slice(payload);
    m
}

/// Reads replies until DONE or an ACK/error; calls `each` with every entry's attributes.
fn read_until_done(sock: &Socket, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    loop {
        let (data, _) = sock.recv_from_full()?;
        let mut off = 0;
        while off + 16 <= data.len() {
            let len = u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
            let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
            if len < 16 || off + len > data.len() {
                return Ok(());
            }
            let body = &data[off + 16..off + len];
            match ty {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = body.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                    return if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-code)) };
                }
                _ if body.len() >= 4 => each(&body[4..]),
                _ => {}
            }
            off += (len + 3) & !3;
        }
    }
}

/// Deletes the conntrack entries of every UDP mapping's host port. Best effort by design:
/// a kernel without conntrack has nothing to flush. Returns how many entries went.
pub fn flush_udp(maps: &[PortMapping]) -> io::Result<usize> {
    let ports: Vec<u16> = maps.iter().filter(|m| m.proto == Proto::Udp).map(|m| m.host_port).collect();
    if ports.is_empty() {
        return Ok(0);
    }
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut doomed: Vec<(u8, Vec<u8>)> = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        sock.send(&message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, family, &[]), 0)?;
        read_until_done(&sock, |entry| {
            if let Some(tuple) = ports.iter().find_map(|p| matches(entry, *p)) {
                doomed.push((family, tuple));
            }
        })?;
    }
    let mut n = 0;
    for (i, (family, tuple)) in doomed.iter().enumerate() {
        let mut attr = Vec::with_capacity(tuple.len() + 4);
        attr.extend_from_slice(&((tuple.len() + 4) as u16).to_ne_bytes());
        attr.extend_from_slice(&(CTA_TUPLE_ORIG | 0x8000).to_ne_bytes());
        attr.extend_from_slice(tuple);
        sock.send(&message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, 2 + i as u32, *family, &attr), 0)?;
        match read_until_done(&sock, |_| {}) {
            Ok(()) => n += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(ty: u16, val: &[u8]) -> Vec<u8> {
        let mut v = ((val.len() + 4) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(val);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    #[test]
    fn finds_udp_entries_by_original_destination_port() {
        let proto =
            [nla(CTA_PROTO_NUM, &[IPPROTO_UDP]), nla(2, &1234u16.to_be_bytes()), nla(CTA_PROTO_DST_PORT, &5353u16.to_be_bytes())].concat();
        let tuple = [nla(1 | 0x8000, &nla(2, &[192, 0, 2, 1])), nla(CTA_TUPLE_PROTO | 0x8000, &proto)].concat();
        let entry = [nla(CTA_TUPLE_ORIG | 0x8000, &tuple), nla(3, &[0, 0, 0, 0])].concat();
        assert_eq!(matches(&entry, 5353), Some(tuple));
        assert_eq!(matches(&entry, 5354), None);
    }
}
