//! A DHCPv4 client for one container interface (RFC 2131): DORA with the broadcast flag
//! set (the interface has no address yet, so the server's answers must be broadcast to
//! reach a plain UDP socket bound to the interface), renewal by unicast to the server,
//! rebinding by broadcast, RELEASE. Sockets are made inside the container's netns and
//! bound to the interface; messages are dhcproto's.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use ipnetwork::Ipv4Network;

use super::{Lease, Request};
use crate::error::{Error, Result};
use crate::netns::NetNs;

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

fn io(op: &'static str, e: std::io::Error) -> Error {
    Error::io(op, "DHCP socket", e)
}

/// A UDP socket on port 68 of `ifname` inside `ns`, broadcast allowed.
fn socket(ns: &NetNs, ifname: &str) -> Result<UdpSocket> {
    ns.run(|| {
        let s = socket2_udp()?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::BindToDevice, &std::ffi::OsString::from(ifname))
            .map_err(|e| io("bind to device", e.into()))?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Broadcast, &true).map_err(|e| io("allow broadcast", e.into()))?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReuseAddr, &true).map_err(|e| io("reuse address", e.into()))?;
        let addr = nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT));
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&s), &addr).map_err(|e| io("bind port 68", e.into()))?;
        Ok(UdpSocket::from(s))
    })
}

fn socket2_udp() -> Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(|e| io("open", e.into()))
}

fn encode(m: &Message) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(548);
    m.encode(&mut Encoder::new(&mut buf)).map_err(|e| Error::Dhcp(format!("encode: {e}")))?;
    Ok(buf)
}

/// The client of one attachment.
pub struct Client<'a> {
    ns: &'a NetNs,
    req: &'a Request,
    mac: [u8; 6],
}

impl<'a> Client<'a> {
    /// A client for `req` whose interface has hardware address `mac`.
    pub fn new(ns: &'a NetNs, req: &'a Request, mac: [u8; 6]) -> Self {
        Self { ns, req, mac }
    }

    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let mut m = Message::new(ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &self.mac);
        if ciaddr.is_unspecified() || self.req.broadcast {
            m.set_flags(Flags::default().set_broadcast());
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ClientIdentifier(self.req.client_id()));
        if kind != MessageType::Release {
            let mut wanted = vec![OptionCode::SubnetMask, OptionCode::Router, OptionCode::DomainNameServer, OptionCode::DomainName];
            wanted.push(OptionCode::ClasslessStaticRoute);
            wanted.extend(self.req.request.iter().map(|c| OptionCode::from(*c)));
            wanted.dedup();
            o.insert(DhcpOption::ParameterRequestList(wanted));
            for (code, value) in &self.req.provide {
                o.insert(DhcpOption::Unknown(dhcproto::v4::UnknownOption::new(OptionCode::from(*code), value.clone())));
            }
        }
        m
    }

    /// Sends `m` to `to` and waits for a reply of one of `want` to it, resending with
    /// doubling waits (from 1 s) until `timeout`.
    fn exchange(&self, sock: &UdpSocket, m: &Message, to: Ipv4Addr, want: &[MessageType]) -> Result<Message> {
        let out = encode(m)?;
        let deadline = Instant::now() + self.req.timeout;
        let mut wait = Duration::from_secs(1);
        let mut buf = [0u8; 1500];
        loop {
            sock.send_to(&out, SocketAddrV4::new(to, SERVER_PORT)).map_err(|e| io("send", e))?;
            let until = (Instant::now() + wait).min(deadline);
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).map_err(|e| io("set timeout", e))?;
                let n = match sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
                    Err(e) => return Err(io("receive", e)),
                };
                let Ok(reply) = Message::decode(&mut Decoder::new(&buf[..n])) else { continue };
                if reply.opcode() != Opcode::BootReply || reply.xid() != m.xid() || reply.chaddr().get(..6) != Some(&self.mac[..]) {
                    continue;
                }
                match reply.opts().msg_type() {
                    Some(t) if want.contains(&t) => return Ok(reply),
                    Some(MessageType::Nak) => {
                        return Err(Error::Dhcp(format!("the server refused the lease (NAK) on {}", self.req.ifname)))
                    }
                    _ => continue,
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Dhcp(format!("no DHCP answer on {} within {:?}", self.req.ifname, self.req.timeout)));
            }
            wait = (wait * 2).min(Duration::from_secs(16));
        }
    }

    /// DORA: a new lease.
    pub fn acquire(&self) -> Result<Lease> {
        let sock = socket(self.ns, &self.req.ifname)?;
        let discover = self.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        let offer = self.exchange(&sock, &discover, Ipv4Addr::BROADCAST, &[MessageType::Offer])?;
        let server = match offer.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => *s,
            _ => return Err(Error::Dhcp("the offer names no server".into())),
        };
        let mut request = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
        request.set_xid(discover.xid());
        request.opts_mut().insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        request.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        let ack = self.exchange(&sock, &request, Ipv4Addr::BROADCAST, &[MessageType::Ack])?;
        lease_of(&ack, server)
    }

    /// Renews `lease` from its server (unicast), or — `rebind` — from any (broadcast).
    pub fn renew(&self, lease: &Lease, rebind: bool) -> Result<Lease> {
        let sock = socket(self.ns, &self.req.ifname)?;
        let request = self.message(MessageType::Request, lease.ip);
        let to = if rebind { Ipv4Addr::BROADCAST } else { lease.server };
        let ack = self.exchange(&sock, &request, to, &[MessageType::Ack])?;
        lease_of(&ack, lease.server)
    }

    /// Gives the address back (one unicast message; nothing answers a RELEASE).
    pub fn release(&self, lease: &Lease) -> Result<()> {
        let sock = socket(self.ns, &self.req.ifname)?;
        let mut m = self.message(MessageType::Release, lease.ip);
        m.set_flags(Flags::default());
        m.opts_mut().insert(DhcpOption::ServerIdentifier(lease.server));
        sock.send_to(&encode(&m)?, SocketAddrV4::new(lease.server, SERVER_PORT)).map_err(|e| io("send", e))?;
        Ok(())
    }
}

/// The lease an ACK grants.
fn lease_of(ack: &Message, server: Ipv4Addr) -> Result<Lease> {
    let o = ack.opts();
    let ip = ack.yiaddr();
    if ip.is_unspecified() {
        return Err(Error::Dhcp("the ACK carries no address".into()));
    }
    let prefix = match o.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => u32::from(*m).leading_ones() as u8,
        _ => 24,
    };
    let routers = match o.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.clone(),
        _ => Vec::new(),
    };
    let routes = match o.get(OptionCode::ClasslessStaticRoute) {
        Some(DhcpOption::ClasslessStaticRoute(r)) => {
            r.iter().filter_map(|(net, gw)| Ipv4Network::new(net.network(), net.prefix_len()).ok().map(|n| (n, *gw))).collect()
        }
        _ => Vec::new(),
    };
    let dns = match o.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let domain = match o.get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) => Some(d.clone()),
        _ => None,
    };
    let secs = match o.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) => *s,
        _ => 3600,
    };
    let t1 = match o.get(OptionCode::Renewal) {
        Some(DhcpOption::Renewal(s)) => *s,
        _ => secs / 2,
    };
    let t2 = match o.get(OptionCode::Rebinding) {
        Some(DhcpOption::Rebinding(s)) => *s,
        _ => (u64::from(secs) * 7 / 8) as u32,
    };
    let server = match o.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => server,
    };
    Ok(Lease { ip, prefix, server, routers, routes, dns, domain, secs, t1, t2, obtained: crate::clock::now() })
}
