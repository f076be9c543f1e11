//! Interface addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Socket;
use crate::error::NetlinkError;

fn addr_msg(index: u32, net: &IpNetwork) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = net.prefix();
    msg.header.family = match net {
        IpNetwork::V4(_) => AddressFamily::Inet,
        IpNetwork::V6(_) => AddressFamily::Inet6,
    };
    msg.attributes.push(AddressAttribute::Local(net.ip()));
    msg.attributes.push(AddressAttribute::Address(net.ip()));
    msg
}

impl Socket {
    /// Adds `net` (address/prefix) to a link; IPv6 skips DAD so it is usable at once.
    /// An address already present is success.
    pub fn add_address(&mut self, index: u32, net: IpNetwork) -> Result<(), NetlinkError> {
        self.add_address_dad(index, net, false)
    }

    /// [`Socket::add_address`], with IPv6 duplicate address detection when `dad` (the
    /// address stays tentative until it passes).
    pub fn add_address_dad(&mut self, index: u32, net: IpNetwork, dad: bool) -> Result<(), NetlinkError> {
        let mut msg = addr_msg(index, &net);
        if let IpNetwork::V4(v4) = net {
            if v4.prefix() < 31 {
                msg.attributes.push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        } else if !dad {
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match self.change("add address", &net.to_string(), RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes an address; one already gone is success.
    pub fn del_address(&mut self, index: u32, net: IpNetwork) -> Result<(), NetlinkError> {
        match self.change("delete address", &net.to_string(), RouteNetlinkMessage::DelAddress(addr_msg(index, &net)), 0) {
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            r => r,
        }
    }

    /// Lists the global addresses of a link (link-local IPv6 left out).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IpNetwork>, NetlinkError> {
        let mut req = AddressMessage::default();
        req.header.index = index;
        let msgs = self.dump("list addresses", RouteNetlinkMessage::GetAddress(req))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            let Some(ip) = ip else { continue };
            if let IpAddr::V6(v6) = ip {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
            }
            if let Ok(net) = IpNetwork::new(ip, a.header.prefix_len) {
                out.push(net);
            }
        }
        Ok(out)
    }
}
