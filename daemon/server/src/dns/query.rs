//! One DNS message decided, the same way for UDP and TCP: parsed into a checked query
//! (every refusal a typed [`Rejected`]), then answered from a network's names, refused,
//! dropped, or handed to the forwarder. Answers over UDP never exceed 512 bytes or the
//! client's EDNS size: a larger one goes back truncated (TC set) for the client to ask
//! again over TCP.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The largest UDP answer a client may ask for with EDNS (and what berth advertises).
pub const MAX_UDP: usize = 1232;
/// The UDP size without EDNS (RFC 1035).
pub const PLAIN_UDP: usize = 512;

/// Why a message is not answered as a query.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    /// Shorter than a DNS header: nothing to answer to.
    #[error("{0} bytes: shorter than a DNS header")]
    TooShort(usize),
    /// Not parseable as DNS.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A response (or anything that is not a query): never answered, so a resolver cannot
    /// be made to talk to itself or to a spoofed peer.
    #[error("not a query")]
    NotQuery,
    /// An opcode other than QUERY.
    #[error("opcode {0} is not implemented")]
    OpCode(u8),
    /// Not exactly one question.
    #[error("{0} questions (one is answered)")]
    Questions(usize),
}

impl Rejected {
    /// The response code a client is told, or None for silence.
    fn code(&self) -> Option<ResponseCode> {
        match self {
            Rejected::TooShort(_) | Rejected::NotQuery => None,
            Rejected::Malformed(_) | Rejected::Questions(_) => Some(ResponseCode::FormErr),
            Rejected::OpCode(_) => Some(ResponseCode::NotImp),
        }
    }
}

/// A checked query: one question, opcode QUERY.
#[derive(Debug, Clone)]
pub struct Query {
    /// The message as parsed.
    pub msg: Message,
    /// The name looked up: lowercase, without the trailing dot.
    pub key: String,
    /// The largest UDP answer this client takes.
    pub max_udp: usize,
}

impl Query {
    /// Parses and checks `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejected> {
        if bytes.len() < 12 {
            return Err(Rejected::TooShort(bytes.len()));
        }
        // The QR bit first: a response is never answered, parseable or not.
        if bytes[2] & 0x80 != 0 {
            return Err(Rejected::NotQuery);
        }
        let msg = Message::from_vec(bytes).map_err(|e| Rejected::Malformed(e.to_string()))?;
        if msg.message_type() != MessageType::Query {
            return Err(Rejected::NotQuery);
        }
        if msg.op_code() != OpCode::Query {
            return Err(Rejected::OpCode(u8::from(msg.op_code())));
        }
        if msg.queries().len() != 1 {
            return Err(Rejected::Questions(msg.queries().len()));
        }
        let key = msg.queries()[0].name().to_string().trim_end_matches('.').to_ascii_lowercase();
        let max_udp = msg.extensions().as_ref().map_or(PLAIN_UDP, |e| usize::from(e.max_payload()).clamp(PLAIN_UDP, MAX_UDP));
        Ok(Self { msg, key, max_udp })
    }

    /// The one question's type.
    pub fn qtype(&self) -> RecordType {
        self.msg.queries()[0].query_type()
    }

    fn name(&self) -> &Name {
        self.msg.queries()[0].name()
    }

    /// A response to this query with `code` and `answers`, EDNS echoed when asked.
    pub fn response(&self, code: ResponseCode, authoritative: bool, answers: Vec<Record>) -> Message {
        response(&self.msg, code, authoritative, answers)
    }

    /// The answer with the records of `ips` matching the question (A, AAAA or ANY), TTL
    /// 5 s as aardvark-dns's: names follow containers.
    pub fn answer(&self, ips: &[IpAddr]) -> Message {
        let (name, qtype) = (self.name(), self.qtype());
        let records = ips
            .iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(Record::from_rdata(name.clone(), 5, RData::A(A(*v4)))),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(Record::from_rdata(name.clone(), 5, RData::AAAA(AAAA(*v6)))),
                _ => None,
            })
            .collect();
        self.response(ResponseCode::NoError, true, records)
    }

    /// `m` as bytes for this client over UDP (`udp`) or TCP: over UDP, an answer larger
    /// than the client takes is sent truncated (header and question, TC set).
    pub fn encode(&self, m: &Message, udp: bool) -> Vec<u8> {
        let bytes = m.to_vec().unwrap_or_default();
        if !udp || bytes.len() <= self.max_udp {
            return bytes;
        }
        let mut t = response(&self.msg, m.response_code(), m.authoritative(), Vec::new());
        t.set_truncated(true);
        t.to_vec().unwrap_or_default()
    }
}

fn response(q: &Message, code: ResponseCode, authoritative: bool, answers: Vec<Record>) -> Message {
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(authoritative)
        .set_response_code(code)
        .add_queries(q.queries().to_vec())
        .add_answers(answers);
    if q.extensions().is_some() {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP as u16);
        r.set_edns(e);
    }
    r
}

/// What a rejected message gets back: an error response carrying its ID, or nothing.
pub fn rejection(bytes: &[u8], why: &Rejected) -> Option<Vec<u8>> {
    let code = why.code()?;
    let mut r = Message::new();
    r.set_id(u16::from_be_bytes([bytes[0], bytes[1]])).set_message_type(MessageType::Response).set_response_code(code);
    r.to_vec().ok()
}

/// Rewrites a relayed upstream answer for its client: the client's ID, and over UDP
/// truncated to what the client takes. None if it is not a sane answer to `q`.
pub fn relay(q: &Query, upstream: &[u8], udp: bool) -> Option<Vec<u8>> {
    let m = Message::from_vec(upstream).ok()?;
    if m.message_type() != MessageType::Response || m.queries() != q.msg.queries() {
        return None;
    }
    if udp && upstream.len() > q.max_udp {
        let mut t = response(&q.msg, m.response_code(), false, Vec::new());
        t.set_truncated(true);
        return t.to_vec().ok();
    }
    let mut out = upstream.to_vec();
    out[..2].copy_from_slice(&q.msg.id().to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(name: &str, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0x1234).set_message_type(MessageType::Query).set_recursion_desired(true);
        m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn checked_queries_and_typed_refusals() {
        let q = Query::parse(&query("Web.", None)).unwrap();
        assert_eq!((q.key.as_str(), q.max_udp), ("web", 512));
        assert_eq!(Query::parse(&query("web.", Some(4096))).unwrap().max_udp, MAX_UDP);
        assert_eq!(Query::parse(&[0; 5]).unwrap_err(), Rejected::TooShort(5));
        let mut resp = query("web.", None);
        resp[2] |= 0x80;
        assert_eq!(Query::parse(&resp).unwrap_err(), Rejected::NotQuery);
        assert!(rejection(&resp, &Rejected::NotQuery).is_none(), "a response is never answered");
        let mut bad = query("web.", None);
        bad.truncate(14);
        let why = Query::parse(&bad).unwrap_err();
        assert!(matches!(why, Rejected::Malformed(_)));
        let r = Message::from_vec(&rejection(&bad, &why).unwrap()).unwrap();
        assert_eq!((r.id(), r.response_code()), (0x1234, ResponseCode::FormErr));
    }

    #[test]
    fn a_large_udp_answer_is_truncated_and_whole_over_tcp() {
        let ips: Vec<IpAddr> = (0..100u8).map(|i| IpAddr::from([10, 89, 0, i])).collect();
        for (edns, limit) in [(None, 512), (Some(1232), 1232), (Some(65000), 1232)] {
            let q = Query::parse(&query("svc.", edns)).unwrap();
            let answer = q.answer(&ips);
            let udp = Message::from_vec(&q.encode(&answer, true)).unwrap();
            assert!(udp.truncated() && udp.answers().is_empty(), "edns {edns:?}");
            assert!(q.encode(&answer, true).len() <= limit);
            let tcp = Message::from_vec(&q.encode(&answer, false)).unwrap();
            assert!(!tcp.truncated());
            assert_eq!(tcp.answers().len(), 100);
        }
        let q = Query::parse(&query("svc.", None)).unwrap();
        let small = Message::from_vec(&q.encode(&q.answer(&ips[..3]), true)).unwrap();
        assert!(!small.truncated() && small.answers().len() == 3);
    }

    #[test]
    fn relayed_answers_get_the_clients_id_and_must_match_the_question() {
        let q = Query::parse(&query("example.test.", None)).unwrap();
        let mut up = q.answer(&[IpAddr::from([198, 51, 100, 7])]);
        up.set_id(999);
        let out = relay(&q, &up.to_vec().unwrap(), true).unwrap();
        assert_eq!(Message::from_vec(&out).unwrap().id(), 0x1234);
        let other = Query::parse(&query("other.test.", None)).unwrap();
        assert!(relay(&other, &up.to_vec().unwrap(), true).is_none(), "an answer to another question");
        assert!(relay(&q, &query("example.test.", None), true).is_none(), "a query is no answer");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Arbitrary bytes: a checked query or a typed refusal, never a panic; whatever
        /// is sent back is itself a parseable DNS message.
        #[test]
        fn any_bytes_are_a_query_or_a_typed_refusal(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            match Query::parse(&bytes) {
                Ok(q) => {
                    let a = q.answer(&[IpAddr::from([10, 0, 0, 1])]);
                    prop_assert!(Message::from_vec(&q.encode(&a, true)).is_ok());
                    prop_assert!(q.encode(&a, true).len() <= q.max_udp);
                    let _ = relay(&q, &bytes, true);
                }
                Err(why) => {
                    if let Some(r) = rejection(&bytes, &why) {
                        prop_assert!(Message::from_vec(&r).is_ok());
                    }
                }
            }
        }

        /// Mutated real queries exercise the parser past the header.
        #[test]
        fn mutated_queries_never_panic(pos in 0usize..40, byte in any::<u8>(), cut in 12usize..40) {
            let mut q = query("svc.example.", Some(1232));
            if pos < q.len() { q[pos] = byte; }
            q.truncate(cut.max(12));
            let _ = Query::parse(&q).map(|q| q.encode(&q.answer(&[]), true));
        }
    }
}
