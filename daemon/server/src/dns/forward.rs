//! Bounded forwarding to the host's resolvers. One connected UDP socket per upstream
//! server, shared by every forwarded query (fresh random IDs; answers matched by ID and
//! question), a table of what is in flight with a cap, a cap per source and a per-source
//! rate, and a deadline after which the client gets SERVFAIL. A flood of unknown names
//! from one container costs that container its answers, not the others', and costs netd
//! no file descriptor or memory beyond the caps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use super::query::{self, Query};

/// The bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Queries in flight upstream, in all.
    pub in_flight: usize,
    /// Queries in flight from one source address.
    pub per_source: usize,
    /// Queries forwarded per second for one source (a token bucket of this depth).
    pub rate: u32,
    /// How long an upstream answer is waited for.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { in_flight: 512, per_source: 64, rate: 1000, timeout: Duration::from_secs(3) }
    }
}

/// Why a query was not forwarded (the client is told REFUSED or SERVFAIL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotForwarded {
    /// No upstream resolver is configured.
    #[error("no upstream resolver")]
    NoUpstream,
    /// The cap on queries in flight is reached.
    #[error("too many queries in flight")]
    Busy,
    /// This source has too many in flight, or asks too fast: not answered at all.
    #[error("source over its limit")]
    Limited,
    /// The upstream socket refused the send.
    #[error("upstream send failed")]
    Send,
}

impl NotForwarded {
    /// What the client is answered.
    pub fn code(self) -> ResponseCode {
        match self {
            NotForwarded::Limited => ResponseCode::Refused,
            _ => ResponseCode::ServFail,
        }
    }
}

/// Where an answer goes back.
pub struct Client {
    /// The client's address.
    pub addr: SocketAddr,
    /// The socket the query arrived on (answers leave from the gateway address).
    pub sock: Arc<UdpSocket>,
}

struct Pending {
    query: Query,
    client: Client,
    deadline: Instant,
}

#[derive(Default)]
struct Source {
    in_flight: usize,
    tokens: f64,
    stamp: Option<Instant>,
}

#[derive(Default)]
struct Table {
    pending: HashMap<u16, Pending>,
    sources: HashMap<IpAddr, Source>,
}

/// The forwarder; cheap to share.
pub struct Forwarder {
    upstreams: Vec<UdpSocket>,
    table: Mutex<Table>,
    limits: Limits,
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    netd::netlink::fill_random(&mut b);
    u16::from_be_bytes(b)
}

impl Forwarder {
    /// A forwarder to `servers` (none: every unknown name gets SERVFAIL), with a thread
    /// per upstream socket reading answers.
    pub fn start(servers: &[SocketAddr], limits: Limits) -> std::io::Result<Arc<Self>> {
        let mut upstreams = Vec::new();
        for s in servers {
            let bind: SocketAddr = if s.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
            let sock = UdpSocket::bind(bind).and_then(|sock| {
                sock.connect(s)?;
                sock.set_read_timeout(Some(Duration::from_millis(200)))?;
                Ok(sock)
            });
            // One unusable resolver (IPv6 on a host without it) does not take the others.
            match sock {
                Ok(sock) => upstreams.push(sock),
                Err(e) => tracing::warn!(upstream = %s, error = %e, "dns upstream not usable"),
            }
        }
        let f = Arc::new(Self { upstreams, table: Mutex::default(), limits });
        for i in 0..f.upstreams.len() {
            let me = f.clone();
            std::thread::Builder::new().name("dns-upstream".into()).stack_size(256 * 1024).spawn(move || me.receive(i))?;
        }
        Ok(f)
    }

    /// Whether a miss from `src` would be refused for its source's share right now: the
    /// resolver then drops it before any further work (a re-read of the names, a parse
    /// of an answer), so a flood of unknown names stays cheap to shed.
    pub fn shed(&self, src: IpAddr) -> bool {
        let Ok(t) = self.table.lock() else { return true };
        t.sources.get(&src).is_some_and(|s| {
            let refill = s.stamp.map_or(f64::from(self.limits.rate), |at| at.elapsed().as_secs_f64() * f64::from(self.limits.rate));
            s.in_flight >= self.limits.per_source || s.tokens + refill < 1.0
        })
    }

    /// Forwards `q` (its bytes `raw`) for `client`, or says why not.
    pub fn forward(&self, q: Query, raw: &[u8], client: Client) -> Result<(), NotForwarded> {
        let src = client.addr.ip();
        if self.upstreams.is_empty() {
            return Err(NotForwarded::NoUpstream);
        }
        let now = Instant::now();
        let (id, sock) = {
            let mut t = self.table.lock().map_err(|_| NotForwarded::Busy)?;
            if t.pending.len() >= self.limits.in_flight {
                return Err(NotForwarded::Busy);
            }
            let s = t.sources.entry(src).or_default();
            let rate = f64::from(self.limits.rate);
            s.tokens = match s.stamp {
                Some(at) => (s.tokens + now.duration_since(at).as_secs_f64() * rate).min(rate),
                None => rate,
            };
            s.stamp = Some(now);
            if s.in_flight >= self.limits.per_source || s.tokens < 1.0 {
                return Err(NotForwarded::Limited);
            }
            s.tokens -= 1.0;
            s.in_flight += 1;
            let mut id = random_id();
            while t.pending.contains_key(&id) {
                id = random_id();
            }
            // The first upstream while it answers; the others take turns by ID.
            let sock = usize::from(id) % self.upstreams.len();
            t.pending.insert(id, Pending { query: q, client, deadline: now + self.limits.timeout });
            (id, sock)
        };
        let mut out = raw.to_vec();
        out[..2].copy_from_slice(&id.to_be_bytes());
        if self.upstreams[sock].send(&out).is_err() {
            self.take(id);
            return Err(NotForwarded::Send);
        }
        Ok(())
    }

    /// Removes `id` from the table, releasing its source's share.
    fn take(&self, id: u16) -> Option<Pending> {
        let mut t = self.table.lock().ok()?;
        let p = t.pending.remove(&id)?;
        let src = p.client.addr.ip();
        if let Some(s) = t.sources.get_mut(&src) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        Some(p)
    }

    /// Reads answers from upstream socket `i`; on each timeout tick, answers SERVFAIL
    /// for what has waited too long and forgets idle sources.
    fn receive(&self, i: usize) {
        let mut buf = vec![0u8; 65535];
        let sock = &self.upstreams[i];
        let mut last_sweep = Instant::now();
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 12 => {
                    let id = u16::from_be_bytes([buf[0], buf[1]]);
                    let Some(p) = self.peek(id, &buf[..n]) else { continue };
                    if let Some(out) = query::relay(&p.query, &buf[..n], true) {
                        let _ = p.client.sock.send_to(&out, p.client.addr);
                    }
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                // ICMP errors from a dead upstream surface here; the sweep answers.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            if last_sweep.elapsed() >= Duration::from_millis(200) {
                last_sweep = Instant::now();
                self.sweep();
            }
        }
    }

    /// The pending query `id`, taken from the table only if `answer` answers it (a
    /// forged or stray packet leaves it waiting).
    fn peek(&self, id: u16, answer: &[u8]) -> Option<Pending> {
        {
            let t = self.table.lock().ok()?;
            let p = t.pending.get(&id)?;
            query::relay(&p.query, answer, true)?;
        }
        self.take(id)
    }

    fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<u16> = match self.table.lock() {
            Ok(mut t) => {
                t.sources.retain(|_, s| s.in_flight > 0 || s.stamp.is_some_and(|at| now.duration_since(at) < Duration::from_secs(2)));
                t.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect()
            }
            Err(_) => return,
        };
        for id in expired {
            if let Some(p) = self.take(id) {
                let r = p.query.response(ResponseCode::ServFail, false, Vec::new());
                let _ = p.client.sock.send_to(&p.query.encode(&r, true), p.client.addr);
            }
        }
    }
}

/// The host's resolvers from `/etc/resolv.conf` (port 53).
pub fn system_servers() -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read("/etc/resolv.conf") else { return Vec::new() };
    match resolv_conf::Config::parse(&text) {
        Ok(c) => c.nameservers.iter().map(|n| SocketAddr::new(IpAddr::from(n.clone()), 53)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "/etc/resolv.conf not understood");
            Vec::new()
        }
    }
}
