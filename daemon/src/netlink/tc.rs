//! Traffic control for the `bandwidth` plugin: a token bucket (`tbf`) as root qdisc, the
//! `ingress` qdisc, and a match-all u32 filter redirecting (mirred) to another link.
//! netlink-packet-route has no typed tbf: its TCA_OPTIONS are encoded here — the
//! `tc_tbf_qopt` struct as TCA_TBF_PARMS, and TCA_TBF_RATE64 for rates of 4 GiB/s and up —
//! with the parameters the reference plugin computes (rate, buffer in psched ticks, limit
//! for 25 ms of latency). Golden tests hold them to what `tc qdisc add ... tbf` sends.

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionGeneric, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute, TcFilterU32Option,
    TcHandle, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::Socket;
use crate::error::NetlinkError;

const TCA_OPTIONS: u16 = 2;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TIME_UNITS_PER_SEC: f64 = 1_000_000.0;
/// The latency a tbf queue may add before it drops, as the reference plugin's.
const LATENCY_MS: f64 = 25.0;
const ETH_P_ALL: u16 = 0x0003;

/// The kernel's packet-scheduler clock (`/proc/net/psched`), to turn times into ticks
/// as `tc` and the reference plugin do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psched {
    /// Ticks per microsecond.
    pub tick_in_usec: f64,
}

impl Psched {
    /// Reads `/proc/net/psched`; the kernels of the last decade all say 15.625.
    pub fn read() -> Self {
        std::fs::read_to_string("/proc/net/psched").ok().and_then(|s| Self::parse(&s)).unwrap_or(Self { tick_in_usec: 15.625 })
    }

    /// Parses the file's four hex words (t2us, us2t, clock resolution, hz).
    pub fn parse(s: &str) -> Option<Self> {
        let v: Vec<u64> = s.split_whitespace().take(4).map(|w| u64::from_str_radix(w, 16)).collect::<Result<_, _>>().ok()?;
        let [mut t2us, us2t, clock, _hz] = <[u64; 4]>::try_from(v).ok()?;
        if clock == 1_000_000_000 {
            t2us = us2t;
        }
        if us2t == 0 {
            return None;
        }
        Some(Self { tick_in_usec: t2us as f64 / us2t as f64 * (clock as f64 / TIME_UNITS_PER_SEC) })
    }
}

/// A token bucket's parameters, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// The bucket, in psched ticks (the time `burst` bytes take at `rate`).
    pub buffer: u32,
    /// Bytes queued at most.
    pub limit: u32,
}

impl Tbf {
    /// The reference plugin's tbf for `rate_bits` per second and a burst of `burst_bits`.
    pub fn new(rate_bits: u64, burst_bits: u64, clock: Psched) -> Self {
        let rate = (rate_bits / 8).max(1);
        let burst = (burst_bits / 8) as u32;
        let buffer = ((f64::from(burst) * TIME_UNITS_PER_SEC / rate as f64) as u32 as f64 * clock.tick_in_usec) as u32;
        let latency = TIME_UNITS_PER_SEC * (LATENCY_MS / 1000.0);
        let limit = ((rate as f64 * latency / TIME_UNITS_PER_SEC) as u32).saturating_add(burst);
        Self { rate, buffer, limit }
    }

    /// TCA_OPTIONS: `struct tc_tbf_qopt` (rate and peak rate `tc_ratespec`s, limit,
    /// buffer, mtu) and, from 2³² bytes/s, the 64-bit rate.
    pub fn options(&self) -> Vec<TcOption> {
        let mut parms = Vec::with_capacity(36);
        // struct tc_ratespec: cell_log u8, linklayer u8, overhead u16, cell_align i16, mpu u16, rate u32
        // (linklayer 1: Ethernet, as tc says; the cell fields belong to a rate table, which
        // the kernel has not needed since 3.13.)
        let ratespec = |rate: u32| -> [u8; 12] {
            let mut r = [0u8; 12];
            r[1] = 1;
            r[8..12].copy_from_slice(&rate.to_ne_bytes());
            r
        };
        parms.extend_from_slice(&ratespec(u32::try_from(self.rate).unwrap_or(u32::MAX)));
        parms.extend_from_slice(&ratespec(0));
        parms.extend_from_slice(&self.limit.to_ne_bytes());
        parms.extend_from_slice(&self.buffer.to_ne_bytes());
        parms.extend_from_slice(&0u32.to_ne_bytes());
        let mut out = vec![TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, parms))];
        if self.rate >= 1 << 32 {
            out.push(TcOption::Other(DefaultNla::new(TCA_TBF_RATE64, self.rate.to_ne_bytes().to_vec())));
        }
        out
    }

    /// Reads a tbf's parameters back from its TCA_OPTIONS: as built here, or as
    /// netlink-packet-route parses a kind it does not know (one NLA holding the nest).
    pub fn from_options(opts: &[TcOption]) -> Option<Self> {
        let mut nlas: Vec<(u16, Vec<u8>)> = Vec::new();
        for o in opts {
            let TcOption::Other(nla) = o else { continue };
            let mut v = vec![0u8; netlink_packet_core::Nla::value_len(nla)];
            netlink_packet_core::Nla::emit_value(nla, &mut v);
            if netlink_packet_core::Nla::kind(nla) == TCA_OPTIONS && opts.len() == 1 {
                for inner in netlink_packet_core::NlasIterator::new(&v[..]).flatten() {
                    nlas.push((inner.kind(), inner.value().to_vec()));
                }
            } else {
                nlas.push((netlink_packet_core::Nla::kind(nla), v));
            }
        }
        let mut found = None;
        let mut rate64 = None;
        for (kind, v) in nlas {
            match kind {
                TCA_TBF_PARMS if v.len() >= 36 => {
                    let u = |i: usize| u32::from_ne_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
                    found = Some(Self { rate: u64::from(u(8)), limit: u(24), buffer: u(28) });
                }
                TCA_TBF_RATE64 if v.len() == 8 => rate64 = Some(u64::from_ne_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])),
                _ => {}
            }
        }
        found.map(|t| Self { rate: rate64.unwrap_or(t.rate), ..t })
    }
}

/// A qdisc as a dump shows it.
#[derive(Debug, Clone)]
pub struct Qdisc {
    /// Its kind ("tbf", "ingress", ...).
    pub kind: String,
    /// Its handle.
    pub handle: TcHandle,
    /// Its parent.
    pub parent: TcHandle,
    /// Its options, as sent.
    pub options: Vec<TcOption>,
}

fn qdisc_msg(index: u32, handle: TcHandle, parent: TcHandle, kind: &str, options: Vec<TcOption>) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.index = index as i32;
    m.header.handle = handle;
    m.header.parent = parent;
    m.attributes.push(TcAttribute::Kind(kind.to_string()));
    if !options.is_empty() {
        m.attributes.push(TcAttribute::Options(options));
    }
    m
}

/// The RTM_NEWQDISC body of `tc qdisc add dev IF root handle 1: tbf ...`.
pub fn tbf_request(index: u32, tbf: &Tbf) -> TcMessage {
    qdisc_msg(index, TcHandle { major: 1, minor: 0 }, TcHandle::ROOT, "tbf", tbf.options())
}

/// The RTM_NEWTFILTER body of `tc filter add dev IF parent ffff: protocol all prio 1 u32
/// match u32 0 0 classid 1:1 action mirred egress redirect dev TO`.
pub fn redirect_request(index: u32, to: u32) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.index = index as i32;
    m.header.parent = TcHandle { major: 0xffff, minor: 0 };
    // info: priority (high 16 bits) and protocol in network order (low 16 bits).
    m.header.info = (1u32 << 16) | u32::from(ETH_P_ALL.to_be());
    m.attributes.push(TcAttribute::Kind("u32".to_string()));
    let mut generic = TcActionGeneric::default();
    generic.action = TcActionType::Stolen;
    let mut parms = TcMirror::default();
    parms.generic = generic;
    parms.eaction = TcMirrorActionType::EgressRedir;
    parms.ifindex = to;
    let mut mirred = TcAction::default();
    mirred.tab = 1;
    mirred.attributes = vec![
        TcActionAttribute::Kind("mirred".to_string()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(parms))]),
    ];
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys = vec![TcU32Key::default()];
    m.attributes.push(TcAttribute::Options(vec![
        TcOption::U32(TcFilterU32Option::ClassId(TcHandle { major: 1, minor: 1 })),
        TcOption::U32(TcFilterU32Option::Selector(sel)),
        TcOption::U32(TcFilterU32Option::Action(vec![mirred])),
    ]));
    m
}

impl Socket {
    /// Adds a tbf as the root qdisc (handle 1:) of link `index`.
    pub fn add_tbf(&mut self, index: u32, tbf: &Tbf) -> Result<(), NetlinkError> {
        self.change(
            "add tbf qdisc",
            &index.to_string(),
            RouteNetlinkMessage::NewQueueDiscipline(tbf_request(index, tbf)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Adds the `ingress` qdisc (ffff:) to link `index`.
    pub fn add_ingress_qdisc(&mut self, index: u32) -> Result<(), NetlinkError> {
        let m = qdisc_msg(index, TcHandle { major: 0xffff, minor: 0 }, TcHandle::INGRESS, "ingress", Vec::new());
        self.change("add ingress qdisc", &index.to_string(), RouteNetlinkMessage::NewQueueDiscipline(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Redirects everything link `index` receives to link `to`'s egress.
    pub fn add_redirect(&mut self, index: u32, to: u32) -> Result<(), NetlinkError> {
        self.change(
            "add u32 redirect filter",
            &index.to_string(),
            RouteNetlinkMessage::NewTrafficFilter(redirect_request(index, to)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// The qdiscs of link `index`.
    pub fn qdiscs(&mut self, index: u32) -> Result<Vec<Qdisc>, NetlinkError> {
        let mut req = TcMessage::default();
        req.header.index = index as i32;
        let mut out = Vec::new();
        for m in self.dump("list qdiscs", RouteNetlinkMessage::GetQueueDiscipline(req))? {
            let RouteNetlinkMessage::NewQueueDiscipline(q) = m else { continue };
            if q.header.index != index as i32 {
                continue;
            }
            let mut kind = String::new();
            let mut options = Vec::new();
            for a in q.attributes {
                match a {
                    TcAttribute::Kind(k) => kind = k,
                    TcAttribute::Options(o) => options = o,
                    _ => {}
                }
            }
            out.push(Qdisc { kind, handle: q.header.handle, parent: q.header.parent, options });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

    const CLOCK: Psched = Psched { tick_in_usec: 15.625 };

    #[test]
    fn psched_as_the_kernel_reports_it() {
        assert_eq!(Psched::parse("000003e8 00000040 000f4240 3b9aca00\n"), Some(CLOCK));
        assert_eq!(Psched::parse("junk"), None);
    }

    #[test]
    fn tbf_parameters_are_the_references() {
        // 1 Mbit/s with a 10 kbit burst: 125,000 B/s, 1,250 B = 10 ms = 156,250 ticks,
        // limit 25 ms of rate + burst = 3,125 + 1,250.
        assert_eq!(Tbf::new(1_000_000, 10_000, CLOCK), Tbf { rate: 125_000, buffer: 156_250, limit: 4_375 });
        let t = Tbf::new(80_000_000_000, 8_000_000, CLOCK);
        assert_eq!(t.rate, 10_000_000_000);
        assert_eq!(Tbf::from_options(&t.options()), Some(t), "RATE64 read back");
    }

    /// TCA_TBF_PARMS of `tc qdisc add dev v0 root handle 1: tbf rate 1mbit burst 1250b limit
    /// 4375b` as iproute2 6.1 sent it (strace -e write=3). tc also sends a rate table and
    /// TCA_TBF_BURST, which the kernel has not needed since 3.13; the parameters must be
    /// the same (and `tc -j qdisc show` then reads rate 125000, burst 1250, lat 25000).
    const TC_TBF_PARMS: &str =
        "03 01 00 00 ff ff 00 00 48 e8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 17 11 00 00 5a 62 02 00 00 00 00 00";

    fn ours_parms(t: &Tbf) -> Vec<u8> {
        match &t.options()[0] {
            TcOption::Other(nla) => {
                let mut v = vec![0u8; netlink_packet_core::Nla::value_len(nla)];
                netlink_packet_core::Nla::emit_value(nla, &mut v);
                v
            }
            _ => panic!("no parms"),
        }
    }

    #[test]
    fn the_tbf_request_carries_tcs_parameters() {
        let tc: Vec<u8> = TC_TBF_PARMS.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        let encoded = ours_parms(&Tbf::new(1_000_000, 10_000, CLOCK));
        let same: Vec<usize> = [1, 8, 9, 10, 11, 24, 25, 26, 27, 28, 29, 30, 31].into_iter().filter(|&i| tc[i] == encoded[i]).collect();
        assert_eq!(same.len(), 13, "linklayer, rate, limit and buffer bytes as tc's");
        let theirs = Tbf {
            rate: u64::from(u32::from_le_bytes([tc[8], tc[9], tc[10], tc[11]])),
            limit: u32::from_le_bytes([tc[24], tc[25], tc[26], tc[27]]),
            buffer: u32::from_le_bytes([tc[28], tc[29], tc[30], tc[31]]),
        };
        let ours = Tbf::new(1_000_000, 10_000, CLOCK);
        assert_eq!(ours, theirs);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut nl =
            NetlinkMessage::new(header, NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(tbf_request(3, &ours))));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(m)) = back.payload else { panic!("not a qdisc") };
        assert_eq!((m.header.index, m.header.handle, m.header.parent), (3, TcHandle { major: 1, minor: 0 }, TcHandle::ROOT));
        let opts = m.attributes.iter().find_map(|a| if let TcAttribute::Options(o) = a { Some(o.clone()) } else { None }).unwrap();
        assert_eq!(Tbf::from_options(&opts), Some(ours));
    }
}
