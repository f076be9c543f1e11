//! Routes in the main table.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Socket;
use crate::error::NetlinkError;

/// A route as the engine installs it: destination, optional gateway, output link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (0.0.0.0/0 for the default route).
    pub dst: IpNetwork,
    /// Next hop; `None` for an on-link route.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: u32,
    /// Preferred source address (`src` in `ip route`), if set.
    pub src: Option<IpAddr>,
}

impl Route {
    /// The default destination of `gw`'s family (0.0.0.0/0 or ::/0).
    pub fn default_dst(gw: IpAddr) -> IpNetwork {
        let any: IpAddr = if gw.is_ipv4() { std::net::Ipv4Addr::UNSPECIFIED.into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
        IpNetwork::new(any, 0).unwrap_or(IpNetwork::V4(ipnetwork::Ipv4Network::from(std::net::Ipv4Addr::UNSPECIFIED)))
    }
}

fn route_msg(r: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match r.dst {
        IpNetwork::V4(_) => AddressFamily::Inet,
        IpNetwork::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = r.dst.prefix();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if r.gw.is_some() { RouteScope::Universe } else { RouteScope::Link };
    if r.dst.prefix() > 0 {
        msg.attributes.push(RouteAttribute::Destination(RouteAddress::from(r.dst.network())));
    }
    if let Some(gw) = r.gw {
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(src) = r.src {
        msg.attributes.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    msg.attributes.push(RouteAttribute::Oif(r.oif));
    msg
}

impl Socket {
    /// Adds a route; an identical route already present is success.
    pub fn add_route(&mut self, r: &Route) -> Result<(), NetlinkError> {
        self.add_route_in(r, u32::from(RouteHeader::RT_TABLE_MAIN))
    }

    /// Adds a route to `table`; an identical route already present is success.
    pub fn add_route_in(&mut self, r: &Route, table: u32) -> Result<(), NetlinkError> {
        let mut msg = route_msg(r);
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
            msg.attributes.push(RouteAttribute::Table(table));
        }
        match self.change("add route", &r.dst.to_string(), RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            res => res,
        }
    }

    /// Adds `dst` through `oif` with scope host, as the reference plugins' `AddHostRoute`
    /// (ptp's route from the host to a container); one already present is success.
    pub fn add_host_route(&mut self, dst: IpNetwork, oif: u32) -> Result<(), NetlinkError> {
        let mut msg = route_msg(&Route { dst, gw: None, oif, src: None });
        msg.header.scope = RouteScope::Host;
        match self.change("add route", &dst.to_string(), RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            res => res,
        }
    }

    /// Deletes the route to `dst` through `oif` (the kernel-made route of an address
    /// among them, whatever its protocol and scope); one already gone is success.
    pub fn del_route(&mut self, dst: IpNetwork, oif: u32) -> Result<(), NetlinkError> {
        let mut msg = route_msg(&Route { dst: IpNetwork::new(dst.network(), dst.prefix()).unwrap_or(dst), gw: None, oif, src: None });
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.scope = RouteScope::NoWhere;
        msg.header.kind = RouteType::Unspec;
        match self.change("delete route", &dst.to_string(), RouteNetlinkMessage::DelRoute(msg), 0) {
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(()),
            res => res,
        }
    }

    /// The interface the kernel would send a packet for `dst` out of (`ip route get`);
    /// none without a route.
    pub fn route_oif(&mut self, dst: IpAddr) -> Result<Option<u32>, NetlinkError> {
        let mut req = RouteMessage::default();
        req.header.address_family = if dst.is_ipv6() { AddressFamily::Inet6 } else { AddressFamily::Inet };
        req.header.destination_prefix_length = if dst.is_ipv6() { 128 } else { 32 };
        req.attributes.push(RouteAttribute::Destination(RouteAddress::from(dst)));
        match self.get("look up the route", &dst.to_string(), RouteNetlinkMessage::GetRoute(req)) {
            Ok(Some(RouteNetlinkMessage::NewRoute(rm))) => {
                Ok(rm.attributes.iter().find_map(|a| if let RouteAttribute::Oif(o) = a { Some(*o) } else { None }))
            }
            Ok(_) => Ok(None),
            Err(e) if matches!(e.errno(), Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the routes of the main table for one family.
    pub fn routes(&mut self, v6: bool) -> Result<Vec<Route>, NetlinkError> {
        let mut req = RouteMessage::default();
        req.header.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
        let msgs = self.dump("list routes", RouteNetlinkMessage::GetRoute(req))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewRoute(rm) = m else {
                continue;
            };
            if rm.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let mut dst = None;
            let mut gw = None;
            let mut oif = 0;
            let mut src = None;
            for a in &rm.attributes {
                match a {
                    RouteAttribute::PrefSource(s) => src = addr(s),
                    RouteAttribute::Destination(d) => dst = addr(d),
                    RouteAttribute::Gateway(g) => gw = addr(g),
                    RouteAttribute::Oif(o) => oif = *o,
                    _ => {}
                }
            }
            let unspecified: IpAddr = if v6 { std::net::Ipv6Addr::UNSPECIFIED.into() } else { std::net::Ipv4Addr::UNSPECIFIED.into() };
            if let Ok(dst) = IpNetwork::new(dst.unwrap_or(unspecified), rm.header.destination_prefix_length) {
                out.push(Route { dst, gw, oif, src });
            }
        }
        Ok(out)
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some((*v4).into()),
        RouteAddress::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}

/// A route as the kernel lists it, in any table, kept whole so it can be copied into
/// another table or deleted exactly (source-based routing moves an interface's routes,
/// kernel-made ones included, into a table of their own).
#[derive(Debug, Clone)]
pub struct KernelRoute {
    msg: RouteMessage,
}

impl KernelRoute {
    /// The table it is in.
    pub fn table(&self) -> u32 {
        self.msg
            .attributes
            .iter()
            .find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None })
            .unwrap_or(u32::from(self.msg.header.table))
    }

    /// Its output interface, if it names one.
    pub fn oif(&self) -> Option<u32> {
        self.msg.attributes.iter().find_map(|a| if let RouteAttribute::Oif(o) = a { Some(*o) } else { None })
    }

    /// Its gateway, if any.
    pub fn gw(&self) -> Option<IpAddr> {
        self.msg.attributes.iter().find_map(|a| if let RouteAttribute::Gateway(g) = a { addr(g) } else { None })
    }

    /// Its preferred source (`src` in `ip route`), if any.
    pub fn src(&self) -> Option<IpAddr> {
        self.msg.attributes.iter().find_map(|a| if let RouteAttribute::PrefSource(s) = a { addr(s) } else { None })
    }

    /// Whether it is an IPv6 route.
    pub fn is_v6(&self) -> bool {
        self.msg.header.address_family == AddressFamily::Inet6
    }

    /// The same route in `table`: what identifies and shapes it, without the kernel's
    /// bookkeeping (cache info, next-hop flags such as linkdown, which a new route may
    /// not carry).
    fn in_table(&self, table: u32) -> RouteMessage {
        let mut msg = RouteMessage::default();
        msg.header = self.msg.header.clone();
        msg.header.flags = Default::default();
        msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        msg.attributes = self
            .msg
            .attributes
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    RouteAttribute::Destination(_)
                        | RouteAttribute::Source(_)
                        | RouteAttribute::Gateway(_)
                        | RouteAttribute::PrefSource(_)
                        | RouteAttribute::Oif(_)
                        | RouteAttribute::Priority(_)
                        | RouteAttribute::Metrics(_)
                        | RouteAttribute::Preference(_)
                        | RouteAttribute::MultiPath(_)
                )
            })
            .cloned()
            .collect();
        msg.attributes.push(RouteAttribute::Table(table));
        msg
    }

    fn describe(&self) -> String {
        let dst = self.msg.attributes.iter().find_map(|a| if let RouteAttribute::Destination(d) = a { addr(d) } else { None });
        match dst {
            Some(d) => format!("{d}/{} table {}", self.msg.header.destination_prefix_length, self.table()),
            None => format!("default table {}", self.table()),
        }
    }
}

impl Socket {
    /// Every route of every table, both families (local and broadcast routes included).
    pub fn all_routes(&mut self) -> Result<Vec<KernelRoute>, NetlinkError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            for m in self.dump("list routes", RouteNetlinkMessage::GetRoute(req))? {
                if let RouteNetlinkMessage::NewRoute(msg) = m {
                    out.push(KernelRoute { msg });
                }
            }
        }
        Ok(out)
    }

    /// Adds `route` to `table`, replacing one with the same key there.
    pub fn replace_route_in(&mut self, route: &KernelRoute, table: u32) -> Result<(), NetlinkError> {
        let msg = RouteNetlinkMessage::NewRoute(route.in_table(table));
        self.change("copy route", &route.describe(), msg, NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE)
    }

    /// Deletes a listed route; one already gone is success.
    pub fn del_kernel_route(&mut self, route: &KernelRoute) -> Result<(), NetlinkError> {
        let msg = RouteNetlinkMessage::DelRoute(route.in_table(route.table()));
        match self.change("delete route", &route.describe(), msg, 0) {
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(()),
            res => res,
        }
    }
}
