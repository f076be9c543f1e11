//! berth's one nf_tables table, `inet berth`: fixed chains whose rules never change, and
//! sets and maps that hold everything per container and per network. Publishing a port
//! adds map elements (O(1), and the kernel refuses a host port mapped twice); a network
//! adds a few chains and verdict-map elements. Pure: this module only builds messages.
//!
//! ```text
//! raw (prerouting, -300):  ip daddr 127.0.0.0/8 iifname != "lo" drop
//!                          ip[6] daddr vmap @protect4|6      (subnet : jump protect4-BR)
//! forward (filter):        ct status dnat iifname . daddr . l4proto . dport @hairpin_if4|6 mark set mark | 0x2000
//!                          jump user
//!                          jump firewall                  (the CNI firewall plugin)
//!                          meta nfproto . iifname vmap @fwd_in   (ipv4 . BR : jump in4-BR)
//!                          meta nfproto . oifname vmap @fwd_out
//! prerouting/output (nat, -100): fib daddr type local jump hostports
//! hostports:               dnat to [daddr .] l4proto . dport map @hostip4|any4|hostip6|any6
//! postrouting (nat, 100):  ct status dnat mark & 0x2000 == 0x2000 masquerade   (hairpin)
//!                          ct status dnat ip saddr 127.0.0.1 ip daddr . l4proto . dport @hairpin_lo4 masquerade
//!                          ip[6] saddr vmap @masq4|6          (subnet : jump masq4-BR)
//!                          ip[6] saddr . ip[6] daddr @ptpx4|6 accept  (own subnet, multicast)
//!                          ip[6] saddr @ptp4|6 masquerade     (ptp ipMasq addresses)
//! firewall:                iifname @iso oifname @iso iifname . oifname != @iso_same drop
//!                          jump admin
//!                          ip[6] daddr @fw4|6 ct state established,related accept
//!                          ip[6] saddr @fw4|6 accept
//! ```

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::expr::{self, Base, CtKey, Expr, MetaKey, Verdict};
use super::msg::{ty, Msg, FAMILY_INET, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use crate::firewall::rules::{multicast, FilterRules, MasqRules, NetworkRules, PortRules};
use crate::portmap::{PortMapping, Proto};

/// The table's name (family inet).
pub const TABLE: &str = "berth";
/// The chain left for the user's own forward rules, like Docker's DOCKER-USER.
pub const USER_CHAIN: &str = "user";
/// The `firewall` plugin's administrator chain, run before its accepts (CNI-ADMIN).
pub const ADMIN_CHAIN: &str = "admin";

// nft's datatype numbers, as `nft list` decodes keys with them.
const T_NFPROTO: u32 = 2;
const T_IPV4: u32 = 7;
const T_IPV6: u32 = 8;
const T_PROTO: u32 = 12;
const T_SERVICE: u32 = 13;
const T_IFNAME: u32 = 41;
const T_VERDICT: u32 = 0xffff_ff00;

const SET_INTERVAL: u32 = 0x4;
const SET_MAP: u32 = 0x8;
const SET_CONCAT: u32 = 0x80;

fn concat(types: &[u32]) -> u32 {
    types.iter().fold(0, |acc, t| (acc << 6) | t)
}

/// A set or map of the table.
#[derive(Debug, Clone, Copy)]
pub struct SetDef {
    /// Name.
    pub name: &'static str,
    flags: u32,
    key: &'static [u32],
    key_len: u32,
    data: &'static [u32],
    data_len: u32,
    /// Field lengths of a concatenated range key (pipapo); empty otherwise.
    fields: &'static [u32],
}

impl SetDef {
    /// Whether elements are ranges given by a start and an end key (concatenated ranges).
    pub fn ranged(&self) -> bool {
        !self.fields.is_empty()
    }
}

const fn map(name: &'static str, key: &'static [u32], key_len: u32, data: &'static [u32], data_len: u32) -> SetDef {
    SetDef { name, flags: SET_MAP, key, key_len, data, data_len, fields: &[] }
}

const fn vmap(name: &'static str, key: &'static [u32], key_len: u32, interval: bool) -> SetDef {
    let flags = if interval { SET_MAP | SET_INTERVAL } else { SET_MAP };
    SetDef { name, flags, key, key_len, data: &[T_VERDICT], data_len: 0, fields: &[] }
}

const fn set(name: &'static str, key: &'static [u32], key_len: u32) -> SetDef {
    SetDef { name, flags: 0, key, key_len, data: &[], data_len: 0, fields: &[] }
}

/// Every set and map, in creation order.
pub const SETS: [SetDef; 21] = [
    map("hostip4", &[T_IPV4, T_PROTO, T_SERVICE], 12, &[T_IPV4, T_SERVICE], 8),
    map("any4", &[T_PROTO, T_SERVICE], 8, &[T_IPV4, T_SERVICE], 8),
    map("hostip6", &[T_IPV6, T_PROTO, T_SERVICE], 24, &[T_IPV6, T_SERVICE], 20),
    map("any6", &[T_PROTO, T_SERVICE], 8, &[T_IPV6, T_SERVICE], 20),
    // Hairpin and host-made DNATed connections: exact keys, so an attachment's insert
    // costs the same with one container or a thousand (a concatenated-range set clones
    // itself on every insert).
    set("hairpin_if4", &[T_IFNAME, T_IPV4, T_PROTO, T_SERVICE], 28),
    set("hairpin_if6", &[T_IFNAME, T_IPV6, T_PROTO, T_SERVICE], 40),
    set("hairpin_lo4", &[T_IPV4, T_PROTO, T_SERVICE], 12),
    vmap("fwd_in", &[T_NFPROTO, T_IFNAME], 20, false),
    vmap("fwd_out", &[T_NFPROTO, T_IFNAME], 20, false),
    vmap("masq4", &[T_IPV4], 4, true),
    vmap("masq6", &[T_IPV6], 16, true),
    vmap("protect4", &[T_IPV4], 4, true),
    vmap("protect6", &[T_IPV6], 16, true),
    set("fw4", &[T_IPV4], 4),
    set("fw6", &[T_IPV6], 16),
    set("iso", &[T_IFNAME], 16),
    set("iso_same", &[T_IFNAME, T_IFNAME], 32),
    set("ptp4", &[T_IPV4], 4),
    set("ptp6", &[T_IPV6], 16),
    SetDef { name: "ptpx4", flags: SET_INTERVAL | SET_CONCAT, key: &[T_IPV4, T_IPV4], key_len: 8, data: &[], data_len: 0, fields: &[4, 4] },
    SetDef {
        name: "ptpx6",
        flags: SET_INTERVAL | SET_CONCAT,
        key: &[T_IPV6, T_IPV6],
        key_len: 32,
        data: &[],
        data_len: 0,
        fields: &[16, 16],
    },
];

/// Sets of older layouts that a repair deletes once no rule uses them: the hairpin
/// sets of concatenated ranges, before 2026-12.
pub const RETIRED_SETS: [&str; 2] = ["hairpin4", "hairpin6"];

/// The sets that hold per-container state (emptied and refilled by a rebuild).
pub const PORT_SETS: [&str; 7] = ["hostip4", "any4", "hostip6", "any6", "hairpin_if4", "hairpin_if6", "hairpin_lo4"];

fn set_def(name: &str) -> Option<&'static SetDef> {
    SETS.iter().find(|s| s.name == name)
}

/// A base chain: its hook (type, hook number, priority) or none for a regular chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainDef {
    /// Name.
    pub name: &'static str,
    /// Chain type, hook number and priority of a base chain.
    pub hook: Option<(&'static str, u32, i32)>,
}

const NF_PREROUTING: u32 = 0;
const NF_FORWARD: u32 = 2;
const NF_OUTPUT: u32 = 3;
const NF_POSTROUTING: u32 = 4;

/// The fixed chains, jump targets before the chains that jump to them.
pub const CHAINS: [ChainDef; 9] = [
    ChainDef { name: USER_CHAIN, hook: None },
    ChainDef { name: ADMIN_CHAIN, hook: None },
    ChainDef { name: "firewall", hook: None },
    ChainDef { name: "hostports", hook: None },
    ChainDef { name: "raw", hook: Some(("filter", NF_PREROUTING, -300)) },
    ChainDef { name: "forward", hook: Some(("filter", NF_FORWARD, 0)) },
    ChainDef { name: "prerouting", hook: Some(("nat", NF_PREROUTING, -100)) },
    ChainDef { name: "output", hook: Some(("nat", NF_OUTPUT, -100)) },
    ChainDef { name: "postrouting", hook: Some(("nat", NF_POSTROUTING, 100)) },
];

fn payload(base: Base, offset: u32, len: u32, word: usize) -> Expr {
    Expr::Payload { base, offset, len, dreg: expr::reg(word) }
}

fn meta(key: MetaKey, word: usize) -> Expr {
    Expr::Meta { key, dreg: expr::reg(word) }
}

fn lookup(set: &str, dreg: Option<u32>) -> Expr {
    Expr::Lookup { set: set.to_string(), sreg: 1, dreg }
}

fn verdict(v: Verdict) -> Expr {
    Expr::Verdict(v)
}

/// `ip daddr` / `ip6 daddr` (or saddr) into word `word`.
fn addr(v6: bool, src: bool, word: usize) -> Expr {
    match (v6, src) {
        (false, true) => payload(Base::Network, 12, 4, word),
        (false, false) => payload(Base::Network, 16, 4, word),
        (true, true) => payload(Base::Network, 8, 16, word),
        (true, false) => payload(Base::Network, 24, 16, word),
    }
}

fn dport(word: usize) -> Expr {
    payload(Base::Transport, 2, 2, word)
}

/// The packet-mark bit of a hairpin connection, the reference portmap's default
/// (`markMasqBit` 13).
const HAIRPIN_MARK: u32 = 1 << crate::firewall::DEFAULT_MARK_BIT;

/// `meta mark set meta mark | HAIRPIN_MARK`.
fn set_mark_bit() -> [Expr; 3] {
    [
        meta(MetaKey::Mark, 0),
        Expr::Mask { reg: 1, mask: (!HAIRPIN_MARK).to_ne_bytes().to_vec(), xor: HAIRPIN_MARK.to_ne_bytes().to_vec() },
        Expr::MetaSet { key: MetaKey::Mark, sreg: 1 },
    ]
}

/// `meta mark & HAIRPIN_MARK == HAIRPIN_MARK`.
fn mark_bit_set() -> [Expr; 3] {
    [
        meta(MetaKey::Mark, 0),
        expr::and(1, HAIRPIN_MARK.to_ne_bytes().to_vec()),
        Expr::Cmp { sreg: 1, eq: true, data: HAIRPIN_MARK.to_ne_bytes().to_vec() },
    ]
}

/// The rules of each fixed chain.
pub fn base_rules() -> Vec<(&'static str, Vec<Vec<Expr>>)> {
    let mut raw = vec![[
        expr::nfproto(false).to_vec(),
        vec![payload(Base::Network, 16, 1, 0), Expr::Cmp { sreg: 1, eq: true, data: vec![0x7f] }],
        expr::ifname_neq(true, "lo").to_vec(),
        vec![verdict(Verdict::Drop)],
    ]
    .concat()];
    for v6 in [false, true] {
        raw.push(
            [expr::nfproto(v6).to_vec(), vec![addr(v6, false, 0), lookup(if v6 { "protect6" } else { "protect4" }, Some(0))]].concat(),
        );
    }
    let mut firewall = vec![vec![
        meta(MetaKey::IifName, 0),
        lookup("iso", None),
        meta(MetaKey::OifName, 0),
        lookup("iso", None),
        meta(MetaKey::IifName, 0),
        meta(MetaKey::OifName, 4),
        Expr::NotIn { set: "iso_same".into(), sreg: 1 },
        verdict(Verdict::Drop),
    ]];
    firewall.push(vec![verdict(Verdict::Jump(ADMIN_CHAIN.into()))]);
    for v6 in [false, true] {
        let set = if v6 { "fw6" } else { "fw4" };
        firewall.push(
            [
                expr::nfproto(v6).to_vec(),
                vec![addr(v6, false, 0), lookup(set, None)],
                expr::ct_any(CtKey::State, expr::CT_STATE_ESTABLISHED_RELATED).to_vec(),
                vec![verdict(Verdict::Accept)],
            ]
            .concat(),
        );
        firewall.push([expr::nfproto(v6).to_vec(), vec![addr(v6, true, 0), lookup(set, None), verdict(Verdict::Accept)]].concat());
    }
    // Hairpin: a DNATed connection that goes out by the interface it came in by (a
    // container through a host port to a sibling or itself) is marked here, where both
    // interfaces are known, and masqueraded in postrouting.
    let mut forward: Vec<Vec<Expr>> = [false, true]
        .into_iter()
        .map(|v6| {
            let w = if v6 { 4 } else { 1 };
            [
                expr::ct_any(CtKey::Status, expr::CT_STATUS_DNAT).to_vec(),
                expr::nfproto(v6).to_vec(),
                vec![
                    meta(MetaKey::IifName, 0),
                    addr(v6, false, 4),
                    meta(MetaKey::L4Proto, 4 + w),
                    dport(5 + w),
                    lookup(if v6 { "hairpin_if6" } else { "hairpin_if4" }, None),
                ],
                set_mark_bit().to_vec(),
            ]
            .concat()
        })
        .collect();
    forward.extend([
        vec![verdict(Verdict::Jump(USER_CHAIN.into()))],
        vec![verdict(Verdict::Jump("firewall".into()))],
        vec![meta(MetaKey::NfProto, 0), meta(MetaKey::IifName, 1), lookup("fwd_in", Some(0))],
        vec![meta(MetaKey::NfProto, 0), meta(MetaKey::OifName, 1), lookup("fwd_out", Some(0))],
    ]);
    let to_hostports = || vec![[expr::to_local().to_vec(), vec![verdict(Verdict::Jump("hostports".into()))]].concat()];
    let mut hostports = Vec::new();
    for v6 in [false, true] {
        let (hostip, any, aw) = if v6 { ("hostip6", "any6", 4) } else { ("hostip4", "any4", 1) };
        // Map data: the address (words 0..aw), then the port.
        let dnat = Expr::Dnat { v6, addr: 1, port: expr::reg(aw) };
        hostports.push(
            [
                expr::nfproto(v6).to_vec(),
                vec![addr(v6, false, 0), meta(MetaKey::L4Proto, aw), dport(aw + 1), lookup(hostip, Some(1)), dnat.clone()],
            ]
            .concat(),
        );
        hostports.push([expr::nfproto(v6).to_vec(), vec![meta(MetaKey::L4Proto, 0), dport(1), lookup(any, Some(1)), dnat]].concat());
    }
    let mut postrouting =
        vec![[expr::ct_any(CtKey::Status, expr::CT_STATUS_DNAT).to_vec(), mark_bit_set().to_vec(), vec![Expr::Masq]].concat()];
    postrouting.push(
        [
            expr::ct_any(CtKey::Status, expr::CT_STATUS_DNAT).to_vec(),
            expr::nfproto(false).to_vec(),
            vec![
                addr(false, true, 0),
                Expr::Cmp { sreg: 1, eq: true, data: vec![127, 0, 0, 1] },
                addr(false, false, 0),
                meta(MetaKey::L4Proto, 1),
                dport(2),
                lookup("hairpin_lo4", None),
                Expr::Masq,
            ],
        ]
        .concat(),
    );
    for v6 in [false, true] {
        postrouting
            .push([expr::nfproto(v6).to_vec(), vec![addr(v6, true, 0), lookup(if v6 { "masq6" } else { "masq4" }, Some(0))]].concat());
    }
    for v6 in [false, true] {
        let (spared, masq) = if v6 { ("ptpx6", "ptp6") } else { ("ptpx4", "ptp4") };
        let w = if v6 { 4 } else { 1 };
        postrouting.push(
            [expr::nfproto(v6).to_vec(), vec![addr(v6, true, 0), addr(v6, false, w), lookup(spared, None), verdict(Verdict::Accept)]]
                .concat(),
        );
        postrouting.push([expr::nfproto(v6).to_vec(), vec![addr(v6, true, 0), lookup(masq, None), Expr::Masq]].concat());
    }
    vec![
        ("raw", raw),
        ("forward", forward),
        ("firewall", firewall),
        ("prerouting", to_hostports()),
        ("output", to_hostports()),
        ("hostports", hostports),
        ("postrouting", postrouting),
    ]
}

fn table_msg(kind: u16, flags: u16) -> Msg {
    let mut m = Msg::new(kind, flags, FAMILY_INET);
    m.str(1, TABLE);
    m
}

/// Creates the table (kept if it exists).
pub fn new_table() -> Msg {
    table_msg(ty::NEWTABLE, NLM_F_CREATE)
}

/// Deletes the table with everything in it.
pub fn del_table() -> Msg {
    table_msg(ty::DELTABLE, 0)
}

/// Asks whether the table exists.
pub fn get_table() -> Msg {
    table_msg(ty::GETTABLE, 0)
}

/// Creates a set (kept, with its elements, if it exists).
pub fn new_set(s: &SetDef, id: u32) -> Msg {
    let mut m = Msg::new(ty::NEWSET, NLM_F_CREATE, FAMILY_INET);
    m.str(1, TABLE).str(2, s.name).u32(3, s.flags).u32(4, concat(s.key)).u32(5, s.key_len);
    if s.flags & SET_MAP != 0 {
        m.u32(6, concat(s.data)).u32(7, s.data_len);
    }
    m.u32(10, id);
    if s.ranged() {
        m.begin(9).begin(2);
        for f in s.fields {
            m.begin(1).u32(1, *f).end();
        }
        m.end().end();
    }
    m
}

/// Creates a chain (kept if it exists).
pub fn new_chain(name: &str, hook: Option<(&str, u32, i32)>) -> Msg {
    let mut m = Msg::new(ty::NEWCHAIN, NLM_F_CREATE, FAMILY_INET);
    m.str(1, TABLE).str(3, name);
    if let Some((kind, hooknum, prio)) = hook {
        m.begin(4).u32(1, hooknum).u32(2, prio as u32).end();
        m.u32(5, 1).str(7, kind);
    }
    m
}

/// Deletes a chain (it must be empty and unreferenced).
pub fn del_chain(name: &str) -> Msg {
    let mut m = Msg::new(ty::DELCHAIN, 0, FAMILY_INET);
    m.str(1, TABLE).str(3, name);
    m
}

/// Removes every rule of a chain.
pub fn flush_chain(name: &str) -> Msg {
    let mut m = Msg::new(ty::DELRULE, 0, FAMILY_INET);
    m.str(1, TABLE).str(2, name);
    m
}

/// Appends a rule.
pub fn new_rule(chain: &str, exprs: &[Expr]) -> Msg {
    let mut m = Msg::new(ty::NEWRULE, NLM_F_CREATE | NLM_F_APPEND, FAMILY_INET);
    m.str(1, TABLE).str(2, chain).begin(4);
    for e in exprs {
        e.encode(&mut m);
    }
    m.end();
    m
}

/// Dumps every rule of the table.
pub fn dump_rules() -> Msg {
    let mut m = Msg::new(ty::GETRULE, super::msg::NLM_F_DUMP, FAMILY_INET);
    m.str(1, TABLE);
    m
}

/// Dumps every set of the table.
pub fn dump_sets() -> Msg {
    let mut m = Msg::new(ty::GETSET, super::msg::NLM_F_DUMP, FAMILY_INET);
    m.str(1, TABLE);
    m
}

/// Asks whether a chain exists.
pub fn get_chain(name: &str) -> Msg {
    let mut m = Msg::new(ty::GETCHAIN, 0, FAMILY_INET);
    m.str(1, TABLE).str(3, name);
    m
}

/// Deletes a set (refused while a rule uses it).
pub fn del_set(name: &str) -> Msg {
    let mut m = Msg::new(ty::DELSET, 0, FAMILY_INET);
    m.str(1, TABLE).str(2, name);
    m
}

/// Removes every element of a set.
pub fn flush_set(name: &str) -> Msg {
    let mut m = Msg::new(ty::DELSETELEM, 0, FAMILY_INET);
    m.str(1, TABLE).str(2, name);
    m
}

/// What a map element maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Bytes (a NAT destination).
    Value(Vec<u8>),
    /// A verdict.
    Verdict(Verdict),
}

/// One element of a set or map; an interval of an rbtree map is two of them (its start,
/// and the first key after it flagged as an end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elem {
    /// The set.
    pub set: &'static str,
    /// Key bytes, each concatenated field padded to 4 bytes.
    pub key: Vec<u8>,
    /// End of a concatenated range.
    pub key_end: Option<Vec<u8>>,
    /// Map data.
    pub data: Option<Data>,
    /// The end of an rbtree interval.
    pub interval_end: bool,
    /// The port mapping it publishes, if any: a kernel EEXIST names it.
    pub mapping: Option<PortMapping>,
}

impl Elem {
    pub(super) fn new(set: &'static str, key: Vec<u8>) -> Self {
        Self { set, key, key_end: None, data: None, interval_end: false, mapping: None }
    }

    pub(super) fn encode(&self, m: &mut Msg) {
        m.begin(1);
        if self.interval_end {
            m.u32(3, 1);
        }
        m.begin(1).bytes(1, &self.key).end();
        if let Some(end) = &self.key_end {
            m.begin(10).bytes(1, end).end();
        }
        match &self.data {
            Some(Data::Value(v)) => {
                m.begin(2).bytes(1, v).end();
            }
            Some(Data::Verdict(v)) => {
                m.begin(2);
                v.encode(m);
                m.end();
            }
            None => {}
        }
        m.end();
    }
}

fn elems_msg(kind: u16, flags: u16, set: &str, elems: &[&Elem]) -> Msg {
    let mut m = Msg::new(kind, flags, FAMILY_INET);
    m.str(1, TABLE).str(2, set).begin(3);
    for e in elems {
        e.encode(&mut m);
    }
    m.end();
    m
}

/// Adds elements of one set; `exclusive`: fail if one exists (a port mapped twice).
pub fn add_elems(set: &str, elems: &[&Elem], exclusive: bool) -> Msg {
    elems_msg(ty::NEWSETELEM, NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 }, set, elems)
}

/// Deletes elements of one set.
pub fn del_elems(set: &str, elems: &[&Elem]) -> Msg {
    elems_msg(ty::DELSETELEM, 0, set, elems)
}

/// Asks for one element.
pub fn get_elem(e: &Elem) -> Msg {
    elems_msg(ty::GETSETELEM, 0, e.set, &[e])
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

/// The last address of a network.
fn last(n: &IpNetwork) -> IpAddr {
    match n {
        IpNetwork::V4(n) => IpAddr::V4(n.broadcast()),
        IpNetwork::V6(n) => {
            let host = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            IpAddr::V6((u128::from(n.network()) | host).into())
        }
    }
}

/// The address after `ip`, none after the last one.
fn next(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

/// The elements an attachment's port mappings add, for one family. With `snat`, a
/// connection DNATed to the container is masqueraded when it came in by the interface it
/// leaves by (`host_if`: a sibling or the container itself through a host port) or comes
/// from 127.0.0.1 (which cannot leave the host otherwise).
pub fn port_elems(p: &PortRules, v6: bool) -> Vec<Elem> {
    let Some(addr) = p.addrs.iter().find(|a| a.is_ipv6() == v6) else { return Vec::new() };
    let (hostip, any, hairpin) = if v6 { ("hostip6", "any6", "hairpin_if6") } else { ("hostip4", "any4", "hairpin_if4") };
    let mut out: Vec<Elem> = Vec::new();
    for m in p.mappings.iter().filter(|m| m.applies_to(v6)) {
        let mut proto_port = Vec::new();
        field(&mut proto_port, &[proto_number(m.proto)]);
        field(&mut proto_port, &m.host_port.to_be_bytes());
        let (set, key) = match m.host_ip {
            Some(ip) => {
                let mut k = ip_bytes(ip);
                k.extend_from_slice(&proto_port);
                (hostip, k)
            }
            None => (any, proto_port),
        };
        let mut data = ip_bytes(addr.ip());
        field(&mut data, &m.container_port.to_be_bytes());
        out.push(Elem { data: Some(Data::Value(data)), mapping: Some(*m), ..Elem::new(set, key) });
        if p.snat {
            let mut tail = ip_bytes(addr.ip());
            field(&mut tail, &[proto_number(m.proto)]);
            field(&mut tail, &m.container_port.to_be_bytes());
            let local = (!v6).then(|| Elem::new("hairpin_lo4", tail.clone()));
            let via = p.host_if.as_deref().map(|i| Elem::new(hairpin, [expr::ifname(i), tail.clone()].concat()));
            for e in via.into_iter().chain(local) {
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    out
}

/// The family suffix of a network's chains and maps.
fn fam(m: &NetworkRules) -> &'static str {
    if m.subnet.is_ipv6() {
        "6"
    } else {
        "4"
    }
}

/// A network's chains and their rules.
pub fn network_chains(m: &NetworkRules) -> Vec<(String, Vec<Vec<Expr>>)> {
    let f = fam(m);
    let br = m.bridge.as_str();
    let mut chains = Vec::new();
    if m.internal {
        chains.push((format!("in{f}-{br}"), vec![[expr::ifname_neq(false, br).to_vec(), vec![verdict(Verdict::Drop)]].concat()]));
        chains.push((format!("out{f}-{br}"), vec![[expr::ifname_neq(true, br).to_vec(), vec![verdict(Verdict::Drop)]].concat()]));
    } else {
        chains.push((format!("in{f}-{br}"), vec![vec![verdict(Verdict::Accept)]]));
        chains.push((
            format!("out{f}-{br}"),
            vec![
                [expr::ct_any(CtKey::State, expr::CT_STATE_ESTABLISHED_RELATED).to_vec(), vec![verdict(Verdict::Accept)]].concat(),
                [expr::ct_any(CtKey::Status, expr::CT_STATUS_DNAT).to_vec(), vec![verdict(Verdict::Accept)]].concat(),
            ],
        ));
    }
    if m.masquerade && !m.internal {
        // Exclusions return first (`ip daddr X return`), then everything leaving the
        // bridge is masqueraded.
        let v6 = m.subnet.is_ipv6();
        let mut rules: Vec<Vec<Expr>> = m
            .masq_exclude
            .iter()
            .filter(|x| x.is_ipv6() == v6)
            .map(|x| {
                vec![
                    addr(v6, false, 0),
                    expr::and(1, ip_bytes(x.mask())),
                    Expr::Cmp { sreg: 1, eq: true, data: ip_bytes(x.network()) },
                    verdict(Verdict::Return),
                ]
            })
            .collect();
        rules.push([expr::ifname_neq(false, br).to_vec(), vec![Expr::Masq]].concat());
        chains.push((format!("masq{f}-{br}"), rules));
    }
    if m.protect {
        chains.push((
            format!("protect{f}-{br}"),
            vec![
                [expr::to_local().to_vec(), vec![verdict(Verdict::Return)]].concat(),
                [expr::ifname_neq(true, br).to_vec(), vec![verdict(Verdict::Drop)]].concat(),
            ],
        ));
    }
    chains
}

fn subnet_elems(set: &'static str, subnet: &IpNetwork, chain: String) -> Vec<Elem> {
    let start = subnet.network();
    let mut out = vec![Elem { data: Some(Data::Verdict(Verdict::Jump(chain))), ..Elem::new(set, ip_bytes(start)) }];
    if let Some(after) = next(last(subnet)) {
        out.push(Elem { interval_end: true, ..Elem::new(set, ip_bytes(after)) });
    }
    out
}

/// The verdict-map elements that send a network's traffic to its chains.
pub fn network_elems(m: &NetworkRules) -> Vec<Elem> {
    let f = fam(m);
    let br = m.bridge.as_str();
    let subnet = IpNetwork::new(m.subnet.network(), m.subnet.prefix()).unwrap_or(m.subnet);
    let mut key = Vec::new();
    field(&mut key, &[if m.subnet.is_ipv6() { 10 } else { 2 }]);
    key.extend_from_slice(&expr::ifname(br));
    let jump = |c: String| Some(Data::Verdict(Verdict::Jump(c)));
    let mut out = vec![
        Elem { data: jump(format!("in{f}-{br}")), ..Elem::new("fwd_in", key.clone()) },
        Elem { data: jump(format!("out{f}-{br}")), ..Elem::new("fwd_out", key) },
    ];
    let (masq, protect) = if m.subnet.is_ipv6() { ("masq6", "protect6") } else { ("masq4", "protect4") };
    if m.masquerade && !m.internal {
        out.extend(subnet_elems(masq, &subnet, format!("masq{f}-{br}")));
    }
    if m.protect {
        out.extend(subnet_elems(protect, &subnet, format!("protect{f}-{br}")));
    }
    out
}

/// The `firewall` plugin's elements of an attachment: its addresses, and with isolation
/// its bridge (`iso`, and `iso_same` so traffic within the bridge passes).
pub fn filter_elems(f: &FilterRules, with_isolation: bool) -> Vec<Elem> {
    let mut out: Vec<Elem> = f.addrs.iter().map(|a| Elem::new(if a.is_ipv6() { "fw6" } else { "fw4" }, ip_bytes(a.ip()))).collect();
    if let Some(br) = f.isolate.as_deref().filter(|_| with_isolation) {
        out.push(Elem::new("iso", expr::ifname(br)));
        out.push(Elem::new("iso_same", [expr::ifname(br), expr::ifname(br)].concat()));
    }
    out
}

/// An attachment's masquerade elements: each address in `ptp4|6`, and its own subnet and
/// multicast as destinations spared from it (`ptpx4|6`, address . range).
pub fn masq_elems(m: &MasqRules) -> Vec<Elem> {
    let mut out = Vec::new();
    for (a, subnet) in m.subnets() {
        let v6 = a.is_ipv6();
        let (masq, spared) = if v6 { ("ptp6", "ptpx6") } else { ("ptp4", "ptpx4") };
        out.push(Elem::new(masq, ip_bytes(a.ip())));
        for net in [subnet, multicast(v6)] {
            let key = [ip_bytes(a.ip()), ip_bytes(net.network())].concat();
            let end = [ip_bytes(a.ip()), ip_bytes(last(&net))].concat();
            out.push(Elem { key_end: Some(end), ..Elem::new(spared, key) });
        }
    }
    out
}

/// Whether `set` names a range set (its elements carry an end key).
pub fn is_ranged(set: &str) -> bool {
    set_def(set).is_some_and(SetDef::ranged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mappings: Vec<PortMapping>) -> PortRules {
        PortRules {
            network: "n".into(),
            container_id: "c".into(),
            ifname: "eth0".into(),
            addrs: vec!["172.17.0.2/16".parse().unwrap()],
            mappings,
            snat: true,
            host_if: Some("docker0".into()),
            conditions_v4: vec![],
            conditions_v6: vec![],
            backend: Default::default(),
            mark_bit: crate::firewall::DEFAULT_MARK_BIT,
        }
    }

    #[test]
    fn port_keys_are_padded_as_the_kernel_compares_them() {
        let p = rules(vec![PortMapping::new(None, 4000, 80, Proto::Tcp).unwrap()]);
        let e = port_elems(&p, false);
        // any4: tcp . 4000 : 172.17.0.2 . 80 (nft --debug=netlink: 00000006 0000a00f : 020011ac 00005000)
        assert_eq!(e[0].set, "any4");
        assert_eq!(e[0].key, [6, 0, 0, 0, 0x0f, 0xa0, 0, 0]);
        assert_eq!(e[0].data, Some(Data::Value(vec![172, 17, 0, 2, 0, 80, 0, 0])));
        // hairpin_if4: "docker0" . 172.17.0.2 . tcp . 80; hairpin_lo4: 172.17.0.2 . tcp . 80.
        assert_eq!(e[1].set, "hairpin_if4");
        assert_eq!(&e[1].key[..7], b"docker0");
        assert_eq!(e[1].key[7..16], [0; 9]);
        assert_eq!(e[1].key[16..], [172, 17, 0, 2, 6, 0, 0, 0, 0, 80, 0, 0]);
        assert!(e[1].key_end.is_none());
        assert_eq!(e[2].set, "hairpin_lo4");
        assert_eq!(e[2].key, e[1].key[16..]);
        assert_eq!(e.len(), 3);
        assert!(port_elems(&p, true).is_empty());
        // Without the interface (a record of an older version): 127.0.0.1 only.
        let e = port_elems(&PortRules { host_if: None, ..p }, false);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].set, "hairpin_lo4");
    }

    #[test]
    fn host_addresses_select_the_hostip_maps() {
        let p = rules(vec![PortMapping::new(Some("127.0.0.1".parse().unwrap()), 5353, 53, Proto::Udp).unwrap()]);
        let e = port_elems(&PortRules { snat: false, ..p }, false);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].set, "hostip4");
        assert_eq!(e[0].key, [127, 0, 0, 1, 17, 0, 0, 0, 0x14, 0xe9, 0, 0]);
    }

    #[test]
    fn network_intervals_end_after_the_subnet() {
        let m = NetworkRules {
            network: "n".into(),
            subnet: "10.88.0.5/16".parse().unwrap(),
            bridge: "br0".into(),
            masquerade: true,
            masq_exclude: Vec::new(),
            protect: true,
            internal: false,
            backend: Default::default(),
        };
        let e = network_elems(&m);
        let masq: Vec<_> = e.iter().filter(|e| e.set == "masq4").collect();
        assert_eq!(masq[0].key, [10, 88, 0, 0]);
        assert_eq!(masq[1].key, [10, 89, 0, 0]);
        assert!(masq[1].interval_end);
        assert_eq!(e[0].key[..4], [2, 0, 0, 0]);
        assert_eq!(&e[0].key[4..7], b"br0");
        let chains: Vec<String> = network_chains(&m).into_iter().map(|c| c.0).collect();
        assert_eq!(chains, ["in4-br0", "out4-br0", "masq4-br0", "protect4-br0"]);
        // An exclusion returns before the masquerade: daddr & mask == network.
        let x = NetworkRules { masq_exclude: vec!["10.244.0.0/16".parse().unwrap()], ..m.clone() };
        let masq = network_chains(&x).into_iter().find(|c| c.0 == "masq4-br0").unwrap().1;
        assert_eq!(masq.len(), 2);
        assert_eq!(masq[0][1], expr::and(1, vec![255, 255, 0, 0]));
        assert_eq!(masq[0][2], Expr::Cmp { sreg: 1, eq: true, data: vec![10, 244, 0, 0] });
        assert_eq!(masq[0][3], verdict(Verdict::Return));
        let v6 = NetworkRules { subnet: "fd00::/64".parse().unwrap(), ..m };
        let e = network_elems(&v6);
        let end = e.iter().find(|e| e.set == "protect6" && e.interval_end).unwrap();
        assert_eq!(end.key, "fd00:0:0:1::".parse::<std::net::Ipv6Addr>().unwrap().octets());
    }
}
