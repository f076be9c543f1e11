//! The bridge's MAC spoof check (`macspoofchk`) in nftables table `bridge berth`: a frame
//! entering a bridge from a checked container's port passes only with the container's
//! own source MAC, as the reference's `bridge nat` rules do, but as two set elements per
//! attachment instead of two chains and a jump:
//!
//! ```text
//! prerouting (filter, -300): iifname . ether saddr @spoof_ok accept
//!                            iifname @spoof_port drop
//! ```
//!
//! Independent of the backend chosen for the IP rules: bridge frames have no iptables
//! equivalent but ebtables, so this always needs nf_tables (as the reference does).

use std::io;

use super::expr::{self, Base, Expr, MetaKey, Verdict};
use super::layout::Elem;
use super::msg::{self, ty, Msg, NLM_F_CREATE};
use crate::error::{Error, Result};

/// `NFPROTO_BRIDGE`.
const FAMILY_BRIDGE: u8 = 7;
/// The table's name (family bridge).
pub const TABLE: &str = "berth";
const PORTS: &str = "spoof_port";
const ALLOWED: &str = "spoof_ok";
const CHAIN: &str = "prerouting";
// nft's datatypes: interface name, Ethernet address.
const T_IFNAME: u32 = 41;
const T_ETHER: u32 = 9;

fn msg(kind: u16, flags: u16) -> Msg {
    let mut m = Msg::new(kind, flags, FAMILY_BRIDGE);
    m.str(1, TABLE);
    m
}

fn new_set(name: &str, key: &[u32], key_len: u32, id: u32) -> Msg {
    let mut m = Msg::new(ty::NEWSET, NLM_F_CREATE, FAMILY_BRIDGE);
    let key_type = key.iter().fold(0, |acc, t| (acc << 6) | t);
    m.str(1, TABLE).str(2, name).u32(3, 0).u32(4, key_type).u32(5, key_len).u32(10, id);
    m
}

/// The table, its sets and its chain with the two rules (flushed and re-added: the
/// batch is idempotent and repairs a chain someone altered).
fn base() -> Vec<Msg> {
    let mut chain = Msg::new(ty::NEWCHAIN, NLM_F_CREATE, FAMILY_BRIDGE);
    // NF_BR_PRE_ROUTING, priority -300 (the reference's), type filter, policy accept.
    chain.str(1, TABLE).str(3, CHAIN).begin(4).u32(1, 0).u32(2, -300i32 as u32).end().u32(5, 1).str(7, "filter");
    let mut flush = Msg::new(ty::DELRULE, 0, FAMILY_BRIDGE);
    flush.str(1, TABLE).str(2, CHAIN);
    let mut out = vec![
        msg(ty::NEWTABLE, NLM_F_CREATE),
        new_set(PORTS, &[T_IFNAME], 16, 1),
        new_set(ALLOWED, &[T_IFNAME, T_ETHER], 24, 2),
        chain,
        flush,
    ];
    for r in rules() {
        let mut m = Msg::new(ty::NEWRULE, NLM_F_CREATE | msg::NLM_F_APPEND, FAMILY_BRIDGE);
        m.str(1, TABLE).str(2, CHAIN).begin(4);
        for e in &r {
            e.encode(&mut m);
        }
        m.end();
        out.push(m);
    }
    out
}

/// The chain's rules.
pub fn rules() -> Vec<Vec<Expr>> {
    let iif = Expr::Meta { key: MetaKey::IifName, dreg: 1 };
    vec![
        vec![
            iif.clone(),
            Expr::Payload { base: Base::Link, offset: 6, len: 6, dreg: expr::reg(4) },
            Expr::Lookup { set: ALLOWED.into(), sreg: 1, dreg: None },
            Expr::Verdict(Verdict::Accept),
        ],
        vec![iif, Expr::Lookup { set: PORTS.into(), sreg: 1, dreg: None }, Expr::Verdict(Verdict::Drop)],
    ]
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(mac: &str) -> Result<[u8; 6]> {
    let bad = || Error::BadOption { key: "mac".into(), value: mac.into(), why: "a MAC address aa:bb:cc:dd:ee:ff" };
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The two elements of a checked port: the port, and the port with its one MAC.
pub fn elems(port: &str, mac: [u8; 6]) -> [Elem; 2] {
    let ifname = expr::ifname(port);
    let mut key = ifname.clone();
    key.extend_from_slice(&mac);
    key.extend_from_slice(&[0, 0]);
    [Elem::new(ALLOWED, key), Elem::new(PORTS, ifname)]
}

fn elem_msg(kind: u16, flags: u16, e: &Elem) -> Msg {
    let mut m = Msg::new(kind, flags, FAMILY_BRIDGE);
    m.str(1, TABLE).str(2, e.set).begin(3);
    e.encode(&mut m);
    m.end();
    m
}

fn nft_err(what: &str, e: io::Error) -> Error {
    Error::Nftables { what: format!("{what} (table bridge {TABLE})"), source: e }
}

/// Commits `msgs` as one transaction; with `gone_ok`, a batch refused only because its
/// target is missing counts as done.
fn commit(what: &str, msgs: &[&Msg], gone_ok: bool) -> Result<()> {
    match msg::with_conn(|c| c.commit(msgs)).map_err(|e| nft_err(what, e))? {
        Ok(()) => Ok(()),
        Err(f) if gone_ok && f.iter().all(|f| f.errno == libc::ENOENT) => Ok(()),
        Err(f) => Err(nft_err(what, io::Error::from_raw_os_error(f.first().map(|f| f.errno).unwrap_or(libc::EIO)))),
    }
}

/// Lets only `mac` out of bridge port `port` (the container's host veth).
pub fn add(port: &str, mac: [u8; 6]) -> Result<()> {
    let mut batch = base();
    batch.extend(elems(port, mac).iter().map(|e| elem_msg(ty::NEWSETELEM, NLM_F_CREATE, e)));
    commit("install the MAC spoof check", &batch.iter().collect::<Vec<_>>(), false)
}

/// Removes a port's check; what is already gone is success.
pub fn remove(port: &str, mac: [u8; 6]) -> Result<()> {
    for e in elems(port, mac) {
        commit("remove the MAC spoof check", &[&elem_msg(ty::DELSETELEM, 0, &e)], true)?;
    }
    Ok(())
}

/// Whether the port's check is in place (both elements, the chain's two rules).
pub fn present(port: &str, mac: [u8; 6]) -> Result<bool> {
    msg::with_conn(|c| {
        let mut rules = Msg::new(ty::GETRULE, msg::NLM_F_DUMP, FAMILY_BRIDGE);
        rules.str(1, TABLE).str(2, CHAIN);
        if c.query(&rules)?.len() != 2 {
            return Ok(false);
        }
        for e in elems(port, mac) {
            if c.query(&elem_msg(ty::GETSETELEM, 0, &e))?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .map_err(|e| nft_err("look up the MAC spoof check", e))
}

/// Deletes the table (`netd cleanup`); none is success.
pub fn remove_table() -> Result<()> {
    commit("delete", &[&msg(ty::DELTABLE, 0)], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_port_then_the_padded_mac() {
        let mac = parse_mac("0a:58:0a:f4:01:02").unwrap();
        let [ok, port] = elems("veth1", mac);
        assert_eq!(ok.key.len(), 24);
        assert_eq!(&ok.key[..5], b"veth1");
        assert_eq!(&ok.key[16..22], &mac);
        assert_eq!(port.key.len(), 16);
        assert!(parse_mac("0a:58:0a").is_err() && parse_mac("zz:58:0a:f4:01:02").is_err());
    }

    #[test]
    fn the_mac_is_read_where_ethernet_keeps_the_source() {
        let r = rules();
        assert_eq!(r[0][1], Expr::Payload { base: Base::Link, offset: 6, len: 6, dreg: 2 });
    }
}
