//! The UDP path: two threads per network listener, blocking on its socket, answer
//! container names in place (the everyday query read and answered from bytes, see
//! [`super::fast`]; others parsed and serialised with hickory-proto; names looked up in a
//! snapshot held without a lock; no task, no wake-up of the async runtime); names they do
//! not know go to the bounded forwarder, which answers from its own threads.

use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;

use super::fast::Question;
use super::forward::{Client, Forwarder, NotForwarded};
use super::query::{self, Query};
use super::{Lookup, Names};

/// Serves `sock` (bound to `gateway:53` on its bridge) until it fails or is shut down;
/// run on a thread of its own. `member`: the socket lives in that member's own netns
/// (127.0.0.11, for networks without a bridge), which every query is from.
pub fn serve(sock: UdpSocket, gateway: IpAddr, member: Option<IpAddr>, names: Arc<Names>, forwarder: Arc<Forwarder>) {
    let sock = Arc::new(sock);
    let mut view = names.view();
    let mut buf = [0u8; 4096];
    let (mut key, mut out) = ([0u8; 256], Vec::with_capacity(1500));
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            // A shut-down socket (its container left) reads as empty.
            Ok((0, _)) if member.is_some() => return,
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(address = %gateway, error = %e, "dns socket failed");
                return;
            }
        };
        let raw = &buf[..n];
        // The everyday query: looked up and answered from bytes (see fast.rs).
        let mut known = None;
        if let Some(fq) = Question::parse(raw, &mut key) {
            match names.resolve(&mut view, gateway, member.unwrap_or(from.ip()), fq.key(&key), |src| forwarder.shed(src)) {
                Lookup::Found(ips) => {
                    fq.answer(raw, &ips, &mut out);
                    if let Err(e) = sock.send_to(&out, from) {
                        tracing::debug!(error = %e, "dns answer not sent");
                    }
                    continue;
                }
                Lookup::Shed => continue,
                other => known = Some(other),
            }
        }
        let q = match Query::parse(raw) {
            Ok(q) => q,
            Err(why) => {
                if let Some(r) = query::rejection(raw, &why) {
                    let _ = sock.send_to(&r, from);
                }
                continue;
            }
        };
        let found = match known {
            Some(l) => l,
            None => names.resolve(&mut view, gateway, member.unwrap_or(from.ip()), &q.key, |src| forwarder.shed(src)),
        };
        let reply = match found {
            Lookup::Shed => continue,
            Lookup::Found(ips) => q.answer(&ips),
            Lookup::NotMember | Lookup::Missing { internal: true } => q.response(ResponseCode::Refused, false, Vec::new()),
            Lookup::Missing { internal: false } => match forwarder.forward(q.clone(), raw, Client { addr: from, sock: sock.clone() }) {
                // Past its share a source is not even answered: a flood then costs
                // a receive and a parse per packet, no send, and the socket keeps
                // draining fast enough for everyone else's questions.
                Ok(()) | Err(NotForwarded::Limited) => continue,
                Err(why) => q.response(why.code(), false, Vec::new()),
            },
        };
        if let Err(e) = sock.send_to(&q.encode(&reply, true), from) {
            tracing::debug!(error = %e, "dns answer not sent");
        }
    }
}
