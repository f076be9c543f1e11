//! The nf_tables expressions berth's rules are made of, encoded as the kernel takes them
//! (`NFTA_*_*` attributes), and the verdicts its maps and rules give.

use super::msg::Msg;

/// Where a packet goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accept.
    Accept,
    /// Drop.
    Drop,
    /// Return to the calling chain.
    Return,
    /// Jump to a chain of the table.
    Jump(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Jump(_) => -3,
            Verdict::Return => -5,
        }
    }

    /// Encodes it as an `NFTA_DATA_VERDICT` attribute.
    pub fn encode(&self, m: &mut Msg) {
        const NFTA_DATA_VERDICT: u16 = 2;
        m.begin(NFTA_DATA_VERDICT).u32(1, self.code() as u32);
        if let Verdict::Jump(c) = self {
            m.str(2, c);
        }
        m.end();
    }
}

/// `meta` keys berth reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// Input interface name.
    IifName = 6,
    /// Output interface name.
    OifName = 7,
    /// Layer 3 protocol (ipv4, ipv6) in an inet chain.
    NfProto = 15,
    /// Layer 4 protocol.
    L4Proto = 16,
    /// The packet mark.
    Mark = 3,
}

/// Header a payload offset is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The link-layer (Ethernet) header.
    Link = 0,
    /// The IP header.
    Network = 1,
    /// The TCP/UDP/SCTP header.
    Transport = 2,
}

/// `ct` keys berth reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// Connection state bits (established, related, ...).
    State = 0,
    /// Status bits (`IPS_DST_NAT`, ...).
    Status = 2,
}

/// One expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Loads packet metadata.
    Meta { key: MetaKey, dreg: u32 },
    /// Loads header bytes.
    Payload { base: Base, offset: u32, len: u32, dreg: u32 },
    /// Compares a register (`neq` when `eq` is false).
    Cmp { sreg: u32, eq: bool, data: Vec<u8> },
    /// `reg = (reg & mask) ^ xor` (`| bits` is `& !bits ^ bits`).
    Mask { reg: u32, mask: Vec<u8>, xor: Vec<u8> },
    /// Sets packet metadata from a register.
    MetaSet { key: MetaKey, sreg: u32 },
    /// Looks a key up in a set; `dreg` receives map data (0: a verdict map's verdict).
    Lookup { set: String, sreg: u32, dreg: Option<u32> },
    /// Matches when the key is NOT in a set (`!= @set`).
    NotIn { set: String, sreg: u32 },
    /// Loads connection-tracking state.
    Ct { key: CtKey, dreg: u32 },
    /// `fib daddr type`: the route type of the destination.
    FibDaddrType { dreg: u32 },
    /// A verdict.
    Verdict(Verdict),
    /// Destination NAT to the address and port in registers.
    Dnat { v6: bool, addr: u32, port: u32 },
    /// Masquerade.
    Masq,
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Mask { .. } => "bitwise",
            Expr::Lookup { .. } | Expr::NotIn { .. } => "lookup",
            Expr::Ct { .. } => "ct",
            Expr::FibDaddrType { .. } => "fib",
            Expr::Verdict(_) => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::Masq => "masq",
        }
    }

    /// Appends it as an `NFTA_LIST_ELEM` of a rule's expression list.
    pub fn encode(&self, m: &mut Msg) {
        const DATA_VALUE: u16 = 1;
        m.begin(1).str(1, self.name()).begin(2);
        match self {
            Expr::Meta { key, dreg } => {
                m.u32(2, *key as u32).u32(1, *dreg);
            }
            Expr::Payload { base, offset, len, dreg } => {
                m.u32(1, *dreg).u32(2, *base as u32).u32(3, *offset).u32(4, *len);
            }
            Expr::Cmp { sreg, eq, data } => {
                m.u32(1, *sreg).u32(2, u32::from(!eq)).begin(3).bytes(DATA_VALUE, data).end();
            }
            Expr::Mask { reg, mask, xor } => {
                m.u32(1, *reg).u32(2, *reg).u32(3, mask.len() as u32);
                m.begin(4).bytes(DATA_VALUE, mask).end().begin(5).bytes(DATA_VALUE, xor).end();
            }
            Expr::MetaSet { key, sreg } => {
                m.u32(2, *key as u32).u32(3, *sreg);
            }
            Expr::Lookup { set, sreg, dreg } => {
                m.u32(2, *sreg).str(1, set);
                if let Some(d) = dreg {
                    m.u32(3, *d);
                }
            }
            Expr::NotIn { set, sreg } => {
                // NFTA_LOOKUP_FLAGS: NFT_LOOKUP_F_INV.
                m.u32(2, *sreg).str(1, set).u32(5, 1);
            }
            Expr::Ct { key, dreg } => {
                m.u32(2, *key as u32).u32(1, *dreg);
            }
            Expr::FibDaddrType { dreg } => {
                // result ADDRTYPE (3), flags DADDR (2).
                m.u32(1, *dreg).u32(2, 3).u32(3, 2);
            }
            Expr::Verdict(v) => {
                m.u32(1, 0).begin(2);
                v.encode(m);
                m.end();
            }
            Expr::Dnat { v6, addr, port } => {
                // type DNAT, family, address and port registers, flags MAP_IPS|PROTO_SPECIFIED.
                m.u32(1, 1).u32(2, if *v6 { 10 } else { 2 });
                m.u32(3, *addr).u32(4, *addr).u32(5, *port).u32(6, *port).u32(7, 3);
            }
            Expr::Masq => {}
        }
        m.end().end();
    }
}

/// The register holding 32-bit word `word` of the key area: nft names a 16-byte-aligned
/// word by its 128-bit register (1..4) and any other by its 32-bit one (8..).
pub fn reg(word: usize) -> u32 {
    if word.is_multiple_of(4) {
        1 + word as u32 / 4
    } else {
        8 + word as u32
    }
}

/// `meta nfproto ipv4|ipv6`.
pub fn nfproto(v6: bool) -> [Expr; 2] {
    [Expr::Meta { key: MetaKey::NfProto, dreg: 1 }, Expr::Cmp { sreg: 1, eq: true, data: vec![if v6 { 10 } else { 2 }] }]
}

/// An interface name as nf_tables compares it: NUL-padded to IFNAMSIZ.
pub fn ifname(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

/// `iifname|oifname != name`.
pub fn ifname_neq(input: bool, name: &str) -> [Expr; 2] {
    let key = if input { MetaKey::IifName } else { MetaKey::OifName };
    [Expr::Meta { key, dreg: 1 }, Expr::Cmp { sreg: 1, eq: false, data: ifname(name) }]
}

/// `reg = reg & mask`.
pub fn and(reg: u32, mask: Vec<u8>) -> Expr {
    let xor = vec![0; mask.len()];
    Expr::Mask { reg, mask, xor }
}

/// `ct state|status` has any of `bits`.
pub fn ct_any(key: CtKey, bits: u32) -> [Expr; 3] {
    [Expr::Ct { key, dreg: 1 }, and(1, bits.to_ne_bytes().to_vec()), Expr::Cmp { sreg: 1, eq: false, data: vec![0; 4] }]
}

/// `IPS_DST_NAT`: the connection was destination-NATed.
pub const CT_STATUS_DNAT: u32 = 1 << 5;
/// `established,related` as `ct state` bits.
pub const CT_STATE_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);

/// `fib daddr type local`.
pub fn to_local() -> [Expr; 2] {
    [Expr::FibDaddrType { dreg: 1 }, Expr::Cmp { sreg: 1, eq: true, data: 2u32.to_ne_bytes().to_vec() }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_named_as_nft_names_them() {
        // ip daddr . meta l4proto . th dport: words 0, 1, 2.
        assert_eq!((reg(0), reg(1), reg(2)), (1, 9, 10));
        // ip6 daddr . meta l4proto . th dport: words 0, 4, 5.
        assert_eq!((reg(4), reg(5)), (2, 13));
        // ip6 saddr . ip6 daddr . l4proto . dport: 0, 4, 8, 9.
        assert_eq!((reg(8), reg(9)), (3, 17));
    }

    #[test]
    fn an_expression_is_a_named_list_element() {
        let mut m = Msg::new(super::super::msg::ty::NEWRULE, 0, 1);
        Expr::Meta { key: MetaKey::L4Proto, dreg: 9 }.encode(&mut m);
        let elem = super::super::msg::attrs(m.payload());
        assert_eq!(elem.len(), 1);
        let inner = super::super::msg::attrs(elem[0].1);
        assert_eq!(inner[0], (1, &b"meta\0"[..]));
        let data = super::super::msg::attrs(inner[1].1);
        assert_eq!(data, vec![(2, &16u32.to_be_bytes()[..]), (1, &9u32.to_be_bytes()[..])]);
    }
}
