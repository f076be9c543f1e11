//! Policy routing rules (`ip rule`): source-based routing sends an address's traffic to
//! a table of its own.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Socket;
use crate::error::NetlinkError;

/// A rule as listed: what it matches and which table it looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The source it matches (`from`), if any.
    pub src: Option<IpNetwork>,
    /// The table it looks up.
    pub table: u32,
    /// Its preference (`ip rule`'s number).
    pub priority: u32,
    msg: RuleMessage,
}

/// The request `ip rule add from SRC table T` sends (no preference: the kernel picks one
/// below the last rule it has, as for the reference plugins' rules).
pub fn rule_request(src: IpNetwork, table: u32) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = if src.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    msg.header.src_len = src.prefix();
    msg.header.action = RuleAction::ToTable;
    // As iproute2: a table that fits the header goes there, a larger one as FRA_TABLE.
    match u8::try_from(table) {
        Ok(t) => msg.header.table = t,
        Err(_) => msg.attributes.push(RuleAttribute::Table(table)),
    }
    msg.attributes.push(RuleAttribute::Source(src.network()));
    msg
}

impl Socket {
    /// Every rule of both families.
    pub fn rules(&mut self) -> Result<Vec<Rule>, NetlinkError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RuleMessage::default();
            req.header.family = family;
            for m in self.dump("list rules", RouteNetlinkMessage::GetRule(req))? {
                let RouteNetlinkMessage::NewRule(msg) = m else { continue };
                let mut table = u32::from(msg.header.table);
                let mut priority = 0;
                let mut src: Option<IpAddr> = None;
                for a in &msg.attributes {
                    match a {
                        RuleAttribute::Table(t) => table = *t,
                        RuleAttribute::Priority(p) => priority = *p,
                        RuleAttribute::Source(s) => src = Some(*s),
                        _ => {}
                    }
                }
                let src = src.and_then(|ip| IpNetwork::new(ip, msg.header.src_len).ok());
                out.push(Rule { src, table, priority, msg });
            }
        }
        Ok(out)
    }

    /// Adds `from src lookup table`; the same rule already present is success.
    pub fn add_rule(&mut self, src: IpNetwork, table: u32) -> Result<(), NetlinkError> {
        let what = format!("from {src} lookup {table}");
        match self.change("add rule", &what, RouteNetlinkMessage::NewRule(rule_request(src, table)), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            res => res,
        }
    }

    /// Deletes a listed rule; one already gone is success.
    pub fn del_rule(&mut self, rule: &Rule) -> Result<(), NetlinkError> {
        let what = format!("{} lookup {}", rule.priority, rule.table);
        match self.change("delete rule", &what, RouteNetlinkMessage::DelRule(rule.msg.clone()), 0) {
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
            res => res,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    /// `ip rule add from 192.168.50.10 table 100` as iproute2 6.1 sends it (strace -e
    /// sendmsg of the netlink socket, flags REQUEST|ACK|CREATE|EXCL): the header, FRA_SRC.
    #[test]
    fn the_rule_request_is_iproute2s() {
        let msg = rule_request("192.168.50.10/32".parse().unwrap(), 100);
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let want: &[u8] = &[
            2, 0, 32, 0, 100, 0, 0, 1, 0, 0, 0, 0, // family, dst_len, src_len, tos, table, res1, res2, action, flags
            8, 0, 2, 0, 192, 168, 50, 10, // FRA_SRC
        ];
        assert_eq!(buf, want);
        let big = rule_request("fd00::1/128".parse().unwrap(), 1000);
        assert_eq!((big.header.table, big.attributes.first()), (0, Some(&RuleAttribute::Table(1000))));
    }
}
