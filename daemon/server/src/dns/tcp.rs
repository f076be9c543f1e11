//! DNS over TCP (RFC 7766), for answers too large for UDP: length-prefixed messages on a
//! connection, bounded — a cap on connections (in all and per source), an idle timeout,
//! a size cap per message — and forwarded names asked of the upstream over TCP within
//! the same caps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::query::{self, Query};
use super::{Lookup, Names};

/// Connections served at once, in all.
const CONNECTIONS: usize = 64;
/// Connections served at once from one source.
const PER_SOURCE: usize = 8;
/// How long a connection may sit without a complete query.
const IDLE: Duration = Duration::from_secs(5);
/// How long an upstream TCP exchange may take.
const UPSTREAM: Duration = Duration::from_secs(3);

/// The caps shared by every network's TCP listener.
pub struct Limits {
    slots: Semaphore,
    sources: Mutex<HashMap<IpAddr, usize>>,
    upstream: Vec<SocketAddr>,
}

impl Limits {
    /// Caps for listeners forwarding to `upstream`.
    pub fn new(upstream: Vec<SocketAddr>) -> Self {
        Self { slots: Semaphore::new(CONNECTIONS), sources: Mutex::default(), upstream }
    }

    /// Counts a connection from `src`; false when it has its share.
    fn enter(&self, src: IpAddr) -> bool {
        let Ok(mut m) = self.sources.lock() else { return false };
        let n = m.entry(src).or_default();
        if *n >= PER_SOURCE {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, src: IpAddr) {
        if let Ok(mut m) = self.sources.lock() {
            if let Some(n) = m.get_mut(&src) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&src);
                }
            }
        }
    }
}

/// Accepts connections on `listener` for the network served at `gateway`; `member`: the
/// listener lives in that member's own netns (127.0.0.11), which every query is from.
pub async fn serve(listener: TcpListener, gateway: IpAddr, member: Option<IpAddr>, names: Arc<Names>, limits: Arc<Limits>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "dns tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the caps, the connection is closed at once.
        if limits.slots.available_permits() == 0 || !limits.enter(from.ip()) {
            continue;
        }
        let (names, limits) = (names.clone(), limits.clone());
        tokio::spawn(async move {
            if let Ok(_permit) = limits.slots.try_acquire() {
                connection(stream, gateway, from, member, &names, &limits).await;
            }
            limits.leave(from.ip());
        });
    }
}

async fn read_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let len = s.read_u16().await.ok()?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn write_msg(s: &mut TcpStream, m: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(m.len()).map_err(|_| std::io::Error::other("answer over 64 KiB"))?;
    let mut out = Vec::with_capacity(m.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(m);
    s.write_all(&out).await
}

/// Asks the upstream resolvers over TCP, the first that answers.
async fn upstream(servers: &[SocketAddr], raw: &[u8]) -> Option<Vec<u8>> {
    for s in servers {
        let exchange = async {
            let mut c = TcpStream::connect(s).await.ok()?;
            write_msg(&mut c, raw).await.ok()?;
            read_msg(&mut c).await
        };
        if let Ok(Some(a)) = tokio::time::timeout(UPSTREAM, exchange).await {
            return Some(a);
        }
    }
    None
}

async fn connection(mut s: TcpStream, gateway: IpAddr, from: SocketAddr, member: Option<IpAddr>, names: &Arc<Names>, limits: &Limits) {
    let mut view = names.view();
    let src = member.unwrap_or(from.ip());
    loop {
        let Ok(Some(raw)) = tokio::time::timeout(IDLE, read_msg(&mut s)).await else { return };
        let q = match Query::parse(&raw) {
            Ok(q) => q,
            Err(why) => {
                if let Some(r) = query::rejection(&raw, &why) {
                    let _ = write_msg(&mut s, &r).await;
                }
                return;
            }
        };
        // A look-up may re-read the names from disk: off the async thread.
        let (n, key) = (names.clone(), q.key.clone());
        let (found, v) = match tokio::task::spawn_blocking(move || {
            let mut view = view;
            let found = n.resolve(&mut view, gateway, src, &key, |_| false);
            (found, view)
        })
        .await
        {
            Ok(r) => r,
            Err(_) => return,
        };
        view = v;
        let answer = match found {
            Lookup::Found(ips) => q.encode(&q.answer(&ips), false),
            Lookup::NotMember | Lookup::Shed => {
                let _ = write_msg(&mut s, &q.encode(&q.response(ResponseCode::Refused, false, Vec::new()), false)).await;
                return;
            }
            Lookup::Missing { internal: true } => q.encode(&q.response(ResponseCode::Refused, false, Vec::new()), false),
            Lookup::Missing { internal: false } => match upstream(&limits.upstream, &raw).await.and_then(|a| query::relay(&q, &a, false)) {
                Some(a) => a,
                None => q.encode(&q.response(ResponseCode::ServFail, false, Vec::new()), false),
            },
        };
        if write_msg(&mut s, &answer).await.is_err() {
            return;
        }
    }
}
