//! Flushing stale conntrack entries of a UDP host port over ctnetlink, in-process.
//!
//! A flow that reached the host port before a mapping changed keeps the NAT decision it
//! got then: while its entry lives (30 s and more, refreshed by every datagram) the kernel
//! keeps using it, so a moved or new mapping never applies to it. So both publish and
//! unpublish drop every UDP entry whose original destination port is the host port.

use std::io;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, ProtoTuple, Protocol, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::spec::{PortMapping, Proto};

/// The original tuple of an entry if it is UDP to one of `ports`.
fn stale_tuple(attrs: &[ConntrackAttribute], ports: &[u16]) -> Option<Vec<Tuple>> {
    let orig = attrs.iter().find_map(|a| match a {
        ConntrackAttribute::CtaTupleOrig(t) => Some(t),
        _ => None,
    })?;
    let proto = orig.iter().find_map(|t| match t {
        Tuple::Proto(p) => Some(p),
        _ => None,
    })?;
    let udp = proto.iter().any(|p| matches!(p, ProtoTuple::Protocol(Protocol::Udp)));
    let dport = proto.iter().find_map(|p| match p {
        ProtoTuple::DestinationPort(d) => Some(*d),
        _ => None,
    })?;
    (udp && ports.contains(&dport)).then(|| orig.clone())
}

struct Ctnetlink {
    sock: Socket,
    seq: u32,
}

impl Ctnetlink {
    fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { sock, seq: 0 })
    }

    /// Sends one request and collects the conntrack entries of the answer.
    fn request(&mut self, family: NetfilterProtoFamily, msg: ConntrackMessage, flags: u16) -> io::Result<Vec<Vec<ConntrackAttribute>>> {
        self.seq += 1;
        let msg = NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), msg);
        let replies = crate::netlink::exchange(&self.sock, self.seq, msg, NLM_F_REQUEST | flags)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m.inner {
                NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) => Some(attrs),
                _ => None,
            })
            .collect())
    }
}

/// Deletes the conntrack entries of every UDP mapping's host port; returns how many.
pub fn flush_udp(maps: &[PortMapping]) -> io::Result<usize> {
    let ports: Vec<u16> = maps.iter().filter(|m| m.proto == Proto::Udp).map(|m| m.host_port).collect();
    if ports.is_empty() {
        return Ok(0);
    }
    let mut ct = Ctnetlink::open()?;
    let mut n = 0;
    for family in [NetfilterProtoFamily::IPv4, NetfilterProtoFamily::IPv6] {
        let entries = ct.request(family, ConntrackMessage::Get(Vec::new()), NLM_F_DUMP)?;
        for tuple in entries.iter().filter_map(|attrs| stale_tuple(attrs, &ports)) {
            match ct.request(family, ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(tuple)]), NLM_F_ACK) {
                Ok(_) => n += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_netfilter::conntrack::IPTuple;

    #[test]
    fn finds_udp_entries_by_original_destination_port() {
        let tuple = |proto, dport| {
            vec![
                Tuple::Ip(vec![
                    IPTuple::SourceAddress("192.0.2.2".parse().unwrap()),
                    IPTuple::DestinationAddress("192.0.2.1".parse().unwrap()),
                ]),
                Tuple::Proto(vec![ProtoTuple::Protocol(proto), ProtoTuple::SourcePort(40000), ProtoTuple::DestinationPort(dport)]),
            ]
        };
        let entry = vec![ConntrackAttribute::CtaTupleOrig(tuple(Protocol::Udp, 5353)), ConntrackAttribute::CtaMark(0)];
        assert_eq!(stale_tuple(&entry, &[5353]), Some(tuple(Protocol::Udp, 5353)));
        assert_eq!(stale_tuple(&entry, &[5354]), None);
        let tcp = vec![ConntrackAttribute::CtaTupleOrig(tuple(Protocol::Tcp, 5353))];
        assert_eq!(stale_tuple(&tcp, &[5353]), None);
    }
}
