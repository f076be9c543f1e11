//! The UDP fast path: one thread per network listener, blocking on its socket, answers
//! container names in place (parse, look up, serialise with hickory-proto; no task, no
//! wake-up of the async runtime); only names it does not know go to the async forwarder.
//! TCP stays on hickory-server.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc::UnboundedSender;

use super::Names;

/// A query handed to the forwarder, with where to answer it.
pub struct Forward {
    query: Message,
    from: SocketAddr,
    sock: Arc<UdpSocket>,
}

/// A response to `q` with `code` and `answers`.
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
    r
}

fn send(sock: &UdpSocket, to: SocketAddr, m: &Message) {
    match m.to_vec() {
        Ok(bytes) => {
            if let Err(e) = sock.send_to(&bytes, to) {
                tracing::debug!(error = %e, "dns answer not sent");
            }
        }
        Err(e) => tracing::debug!(error = %e, "dns answer not encoded"),
    }
}

/// Serves `sock` (bound to `gateway:53`) until it fails; run on a thread of its own.
pub fn serve(sock: UdpSocket, gateway: IpAddr, names: Arc<Names>, forwarder: UnboundedSender<Forward>) {
    let sock = Arc::new(sock);
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
        let Ok(q) = Message::from_vec(&buf[..n]) else {
            // Unparseable: FORMERR with the id, if there is a header at all.
            if n >= 12 {
                let mut r = Message::new();
                r.set_id(u16::from_be_bytes([buf[0], buf[1]]))
                    .set_message_type(MessageType::Response)
                    .set_response_code(ResponseCode::FormErr);
                send(&sock, from, &r);
            }
            continue;
        };
        if q.message_type() != MessageType::Query {
            continue;
        }
        if q.op_code() != OpCode::Query || q.queries().len() != 1 {
            let code = if q.op_code() != OpCode::Query { ResponseCode::NotImp } else { ResponseCode::FormErr };
            send(&sock, from, &response(&q, code, false, Vec::new()));
            continue;
        }
        let question = &q.queries()[0];
        let key = question.name().to_string().trim_end_matches('.').to_lowercase();
        match names.resolve(gateway, &key) {
            Some(ips) => {
                let answers = super::records(question.name(), question.query_type(), &ips);
                send(&sock, from, &response(&q, ResponseCode::NoError, true, answers));
            }
            None => {
                if forwarder.send(Forward { query: q, from, sock: sock.clone() }).is_err() {
                    return;
                }
            }
        }
    }
}

/// Answers forwarded queries from the host's resolvers, each in a task of its own.
pub async fn forwarder(mut rx: tokio::sync::mpsc::UnboundedReceiver<Forward>, upstream: Option<TokioResolver>) {
    while let Some(f) = rx.recv().await {
        let up = upstream.clone();
        tokio::spawn(async move {
            let question = &f.query.queries()[0];
            let r = match super::forward(up.as_ref(), question.name().clone(), question.query_type()).await {
                Ok(records) => response(&f.query, ResponseCode::NoError, false, records),
                Err(code) => response(&f.query, code, false, Vec::new()),
            };
            send(&f.sock, f.from, &r);
        });
    }
}
