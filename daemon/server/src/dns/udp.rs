//! The UDP fast path: two threads per network listener, blocking on its socket, answer
//! container names in place (parse, look up in a snapshot held without a lock,
//! serialise with hickory-proto; no task, no wake-up of the async runtime); names they do
//! not know go to the bounded forwarder, which answers from its own threads.

use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;

use super::forward::{Client, Forwarder, NotForwarded};
use super::query::{self, Query};
use super::{Lookup, Names};

/// Serves `sock` (bound to `gateway:53` on its bridge) until it fails; run on a thread
/// of its own.
pub fn serve(sock: UdpSocket, gateway: IpAddr, names: Arc<Names>, forwarder: Arc<Forwarder>) {
    let sock = Arc::new(sock);
    let mut view = names.view();
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(address = %gateway, error = %e, "dns socket failed");
                return;
            }
        };
        let raw = &buf[..n];
        let q = match Query::parse(raw) {
            Ok(q) => q,
            Err(why) => {
                if let Some(r) = query::rejection(raw, &why) {
                    let _ = sock.send_to(&r, from);
                }
                continue;
            }
        };
        let reply = match names.resolve(&mut view, gateway, from.ip(), &q.key) {
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
