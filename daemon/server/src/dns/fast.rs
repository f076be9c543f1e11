//! The everyday query — one question of a plain name (letters, digits, `-`, `_`), class
//! IN, at most an EDNS OPT record — read and answered straight from and into bytes: no
//! message is built, nothing is allocated. Anything else (and every refusal) takes the
//! general path in [`super::query`]; a property test holds the two to the same answers.

use std::net::IpAddr;

use super::query::{MAX_UDP, PLAIN_UDP};

/// A query the fast path takes: where its question ends and what it asks.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    /// Bytes of the name key written into the caller's buffer (lowercase, no final dot).
    key_len: usize,
    /// Offset just past the question (type and class included).
    end: usize,
    qtype: u16,
    edns: bool,
    max_udp: usize,
}

const A: u16 = 1;
const AAAA: u16 = 28;
const ANY: u16 = 255;
const OPT: u16 = 41;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

impl Question {
    /// Reads `b` if it is a query the fast path takes, writing its key into `key`.
    pub fn parse(b: &[u8], key: &mut [u8; 256]) -> Option<Self> {
        // QR=0, opcode QUERY, TC=0; one question, no answer or authority, ≤1 additional.
        if b.len() < 17 || b[2] & 0xfa != 0 || u16_at(b, 4)? != 1 || u16_at(b, 6)? != 0 || u16_at(b, 8)? != 0 {
            return None;
        }
        let additional = u16_at(b, 10)?;
        let (mut i, mut k) = (12, 0);
        loop {
            let len = usize::from(*b.get(i)?);
            if len == 0 {
                break;
            }
            if len > 63 || k + len + 1 > 254 {
                return None;
            }
            if k > 0 {
                key[k] = b'.';
                k += 1;
            }
            let label = b.get(i + 1..i + 1 + len)?;
            // hickory escapes a leading '-' when it prints a name: the general path then
            // looks up another key (found by the property test), so such labels go there.
            if label[0] == b'-' {
                return None;
            }
            for &c in label {
                if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                    return None;
                }
                key[k] = c.to_ascii_lowercase();
                k += 1;
            }
            i += 1 + len;
        }
        if k == 0 {
            return None;
        }
        let qtype = u16_at(b, i + 1)?;
        if u16_at(b, i + 3)? != 1 {
            return None;
        }
        let end = i + 5;
        let (edns, max_udp) = match additional {
            0 if b.len() == end => (false, PLAIN_UDP),
            // An OPT record with the root name, version 0, and nothing after it.
            1 if b.get(end) == Some(&0) && u16_at(b, end + 1)? == OPT && *b.get(end + 6)? == 0 => {
                let rdlen = usize::from(u16_at(b, end + 9)?);
                if b.len() != end + 11 + rdlen {
                    return None;
                }
                // Options as well-formed code-length-value triples (a cookie, say).
                let mut o = end + 11;
                while o < b.len() {
                    o += 4 + usize::from(u16_at(b, o + 2)?);
                }
                if o != b.len() {
                    return None;
                }
                (true, usize::from(u16_at(b, end + 3)?).clamp(PLAIN_UDP, MAX_UDP))
            }
            _ => return None,
        };
        Some(Self { key_len: k, end, qtype, edns, max_udp })
    }

    /// The key as text (ASCII by construction).
    pub fn key<'a>(&self, key: &'a [u8; 256]) -> &'a str {
        std::str::from_utf8(&key[..self.key_len]).unwrap_or("")
    }

    /// Writes into `out` the authoritative answer to query `q` (these bytes) with the
    /// records of `ips` matching the question, TTL 5 s; truncated (TC, no records) past
    /// what the client takes over UDP.
    pub fn answer(&self, q: &[u8], ips: &[IpAddr], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&q[..2]);
        // QR, AA, RD as asked; RA.
        out.extend_from_slice(&[0x84 | (q[2] & 0x01), 0x80, 0, 1, 0, 0, 0, 0, 0, u8::from(self.edns)]);
        out.extend_from_slice(&q[12..self.end]);
        let mut count = 0u16;
        for ip in ips {
            match (ip, self.qtype) {
                (IpAddr::V4(v4), A | ANY) => {
                    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
                    out.extend_from_slice(&v4.octets());
                }
                (IpAddr::V6(v6), AAAA | ANY) => {
                    out.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 5, 0, 16]);
                    out.extend_from_slice(&v6.octets());
                }
                _ => continue,
            }
            count += 1;
        }
        let opt_len = if self.edns { 11 } else { 0 };
        if out.len() + opt_len > self.max_udp {
            out.truncate(self.end);
            out[2] |= 0x02;
            count = 0;
        }
        out[6..8].copy_from_slice(&count.to_be_bytes());
        if self.edns {
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&(MAX_UDP as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::query::Query;
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType};
    use hickory_proto::rr::{Name, RecordType};
    use proptest::prelude::*;

    fn query(name: &str, qtype: RecordType, edns: Option<u16>, rd: bool) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0xbeef).set_message_type(MessageType::Query).set_recursion_desired(rd);
        m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// The fast answer, decoded, equals the general path's answer, decoded.
    fn same_as_general(raw: &[u8], ips: &[IpAddr]) -> Result<bool, TestCaseError> {
        let mut key = [0u8; 256];
        let Some(fast) = Question::parse(raw, &mut key) else { return Ok(false) };
        let general = Query::parse(raw).map_err(|e| TestCaseError::fail(format!("the general path refused it: {e}")))?;
        prop_assert_eq!(fast.key(&key), general.key.as_str());
        let mut out = Vec::new();
        fast.answer(raw, ips, &mut out);
        let a = Message::from_vec(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b = Message::from_vec(&general.encode(&general.answer(ips), true)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(a.header(), b.header());
        prop_assert_eq!(a.queries(), b.queries());
        prop_assert_eq!(a.answers(), b.answers());
        prop_assert_eq!(a.extensions().as_ref().map(|e| e.max_payload()), b.extensions().as_ref().map(|e| e.max_payload()));
        prop_assert!(out.len() <= general.max_udp);
        Ok(true)
    }

    #[test]
    fn plain_queries_take_the_fast_path_and_odd_ones_do_not() {
        let mut key = [0u8; 256];
        let q = query("Web.App.", RecordType::A, None, true);
        let f = Question::parse(&q, &mut key).unwrap();
        assert_eq!(f.key(&key), "web.app");
        let mut odd = query("web.", RecordType::A, None, true);
        odd[15] = b' ';
        assert!(Question::parse(&odd, &mut key).is_none(), "a character hickory would escape");
        // Where hickory prints a label as it is, both paths must agree on the key.
        for name in ["a-b.x.", "a-.x.", "_a.x.", "a_.x.", "A-1_z.Q."] {
            let q = query(name, RecordType::A, None, true);
            let f = Question::parse(&q, &mut key).expect(name);
            assert_eq!(f.key(&key), Query::parse(&q).unwrap().key, "{name}");
        }
        let mut lead = query("ab.x.", RecordType::A, None, true);
        lead[13] = b'-';
        assert!(Question::parse(&lead, &mut key).is_none(), "a leading '-' is escaped by hickory");
        assert!(Question::parse(&query(".", RecordType::A, None, true), &mut key).is_none(), "the root");
        let mut resp = q.clone();
        resp[2] |= 0x80;
        assert!(Question::parse(&resp, &mut key).is_none(), "a response");
        let mut trailing = q.clone();
        trailing.push(0);
        assert!(Question::parse(&trailing, &mut key).is_none(), "trailing bytes");
    }

    #[test]
    fn fast_answers_equal_the_general_ones() {
        let many: Vec<IpAddr> = (0..100u8).map(|i| IpAddr::from([10, 89, 0, i])).collect();
        let both = [IpAddr::from([10, 89, 0, 2]), "fd00::2".parse().unwrap()];
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY, RecordType::MX] {
            for edns in [None, Some(512), Some(4096)] {
                for ips in [&both[..], &many[..], &[]] {
                    for rd in [true, false] {
                        assert!(same_as_general(&query("svc.", qtype, edns, rd), ips).unwrap());
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Mutated queries: the fast path takes a message only where the general path
        /// gives the same answer, and never panics.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(pos in 0usize..40, byte in any::<u8>(), cut in 12usize..45, n in 0u8..80) {
            let mut q = query("c1.bench.", RecordType::A, Some(1232), true);
            if pos < q.len() { q[pos] = byte; }
            q.truncate(cut.max(12));
            let ips: Vec<IpAddr> = (0..n).map(|i| IpAddr::from([10, 89, 0, i])).collect();
            same_as_general(&q, &ips)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut key = [0u8; 256];
            if let Some(f) = Question::parse(&bytes, &mut key) {
                let mut out = Vec::new();
                f.answer(&bytes, &[IpAddr::from([10, 0, 0, 1])], &mut out);
                prop_assert!(out.len() <= f.max_udp);
            }
        }
    }
}
