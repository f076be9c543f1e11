//! Name resolution on user networks, as aardvark-dns does for podman: netd answers DNS on
//! each user network's gateway address (UDP and TCP 53) with the names of the containers
//! on that network (name, short ID, full ID), and forwards every other name to the host's
//! resolvers (a loopback one like 127.0.0.53 included: netd runs in the host's netns).
//! The default `bridge` network keeps Docker's semantics: no names.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::ServerFuture;
use netd::engine::{Engine, Networking};
use netd::network::endpoint::BridgeNetwork;
use serde_json::Value;

use netd::docker;

mod udp;

/// Names per network: network → lowercase name → addresses.
pub struct Names {
    by_network: RwLock<HashMap<String, HashMap<String, Vec<IpAddr>>>>,
    /// Which network a gateway address (listener) serves.
    by_gateway: RwLock<HashMap<IpAddr, String>>,
    engine: Engine,
    root: PathBuf,
    /// When the names were last read, to bound re-reads on misses.
    last: std::sync::Mutex<std::time::Instant>,
    /// The registry's mtime when they were read: any attach or detach since moves it.
    stamp: std::sync::Mutex<Option<(std::time::SystemTime, Option<std::time::SystemTime>)>>,
    /// When `moved` was last asked, in ms since `epoch`.
    checked: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    /// The networks as last read, and how many reads there were.
    networks: RwLock<Vec<BridgeNetwork>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Names {
    /// The registry's and the network store's mtimes: attach, detach, network create
    /// and remove move them.
    fn registry_mtime(&self) -> Option<(std::time::SystemTime, Option<std::time::SystemTime>)> {
        let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.engine.registry_dir())?, m(&self.root.join("networks"))))
    }

    /// Whether an attach, a detach or a network change happened since the names were
    /// read (two stats).
    fn moved(&self) -> bool {
        let now = self.registry_mtime();
        self.stamp.lock().map(|s| *s != now).unwrap_or(true)
    }

    /// Re-reads the networks and names from the store, the records and the registry
    /// (blocking).
    fn refresh(&self) {
        let stamp = self.registry_mtime();
        let records = docker::containers(&self.root);
        let nets = self.engine.networks().unwrap_or_default();
        let map = collect(&self.engine, &nets, &records);
        if let Ok(mut m) = self.by_network.write() {
            *m = map;
        }
        if let Ok(mut l) = self.last.lock() {
            *l = std::time::Instant::now();
        }
        if let Ok(mut s) = self.stamp.lock() {
            *s = stamp;
        }
        if let Ok(mut n) = self.networks.write() {
            *n = nets;
        }
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// A name not found may belong to a container that started a moment ago: re-read,
    /// at most every 50 ms, before saying so.
    fn stale(&self) -> bool {
        self.older_than(Duration::from_millis(50))
    }

    fn older_than(&self, age: Duration) -> bool {
        self.last.lock().map(|l| l.elapsed() > age).unwrap_or(true)
    }

    fn lookup(&self, gateway: IpAddr, name: &str) -> Option<Vec<IpAddr>> {
        let net = self.by_gateway.read().ok()?.get(&gateway)?.clone();
        self.by_network.read().ok()?.get(&net)?.get(name).cloned()
    }
}

/// The names of the running containers on each user network, from the records and the
/// endpoint registry.
fn collect(engine: &Engine, nets: &[BridgeNetwork], records: &[Value]) -> HashMap<String, HashMap<String, Vec<IpAddr>>> {
    let mut out: HashMap<String, HashMap<String, Vec<IpAddr>>> = HashMap::new();
    // Running containers by ID, once: a search per member would be O(N²).
    let running: HashMap<&str, &Value> =
        records.iter().filter(|c| docker::running(c)).filter_map(|c| Some((c["id"].as_str()?, c))).collect();
    for net in nets.iter().filter(|n| n.name != "bridge") {
        let names = out.entry(net.name.clone()).or_default();
        for m in engine.members(&net.name).unwrap_or_default() {
            let Some(c) = running.get(m.id.as_str()) else { continue };
            let mut keys = vec![m.id.to_lowercase(), m.id.chars().take(12).collect::<String>()];
            if let Some(n) = c["name"].as_str() {
                keys.push(n.to_lowercase());
            }
            // Aliases are network-scoped: the engine keeps them per attachment.
            keys.extend(m.aliases.iter().map(|a| a.to_lowercase()));
            for k in keys {
                names.entry(k).or_default().extend(m.addresses.iter().copied());
            }
        }
    }
    out
}

/// The answer records for `ips` that match `qtype` (A, AAAA or ANY), TTL 5 s as
/// aardvark-dns: names follow containers.
fn records(name: &hickory_proto::rr::Name, qtype: RecordType, ips: &[IpAddr]) -> Vec<Record> {
    ips.iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(Record::from_rdata(name.clone(), 5, RData::A(A(*v4)))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(Record::from_rdata(name.clone(), 5, RData::AAAA(AAAA(*v6)))),
            _ => None,
        })
        .collect()
}

/// Asks the host's resolvers: the records, or the response code to answer with.
async fn forward(up: Option<&TokioResolver>, name: hickory_proto::rr::Name, qtype: RecordType) -> Result<Vec<Record>, ResponseCode> {
    let up = up.ok_or(ResponseCode::ServFail)?;
    match up.lookup(name, qtype).await {
        Ok(found) => Ok(found.records().to_vec()),
        Err(e) if e.is_nx_domain() => Err(ResponseCode::NXDomain),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(_) => Err(ResponseCode::ServFail),
    }
}

impl Names {
    /// The addresses of `key` on the network served at `gateway`, re-reading the names
    /// first when an attach or detach happened since, or when it is not found and the
    /// names are older than 50 ms or changed. Blocking (a stat, at times a re-read).
    fn resolve(&self, gateway: IpAddr, key: &str) -> Option<Vec<IpAddr>> {
        // The stats at most once a millisecond: under load they would cost more than
        // the answer; a name missed in that window is found by the re-read on a miss.
        let now = self.epoch.elapsed().as_millis() as u64;
        let checked = self.checked.swap(now, std::sync::atomic::Ordering::Relaxed);
        if now != checked && self.moved() {
            self.refresh();
        }
        let found = self.lookup(gateway, key);
        if found.is_some() {
            return found;
        }
        // A miss: re-read if the names may be behind, then look again either way (the
        // other UDP thread may have just re-read them, between the first look and here;
        // answering from the first look would send a known name upstream: NXDOMAIN).
        if self.stale() || self.moved() {
            self.refresh();
        }
        self.lookup(gateway, key)
    }
}

struct Handler {
    gateway: IpAddr,
    names: Arc<Names>,
    upstream: Option<TokioResolver>,
}

impl Handler {
    async fn answer<R: ResponseHandler>(&self, request: &Request, mut response: R) -> Result<ResponseInfo, std::io::Error> {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
            return response.send_response(builder.error_msg(request.header(), ResponseCode::NotImp)).await;
        }
        let Ok(info) = request.request_info() else {
            return response.send_response(builder.error_msg(request.header(), ResponseCode::FormErr)).await;
        };
        let qname = info.query.name().clone();
        let qtype = info.query.query_type();
        let key = qname.to_string().trim_end_matches('.').to_lowercase();
        let (names, gateway, k) = (self.names.clone(), self.gateway, key.clone());
        let found = tokio::task::spawn_blocking(move || names.resolve(gateway, &k)).await.ok().flatten();
        let name: hickory_proto::rr::Name = qname.into();
        if let Some(ips) = found {
            header.set_authoritative(true);
            let records = records(&name, qtype, &ips);
            return response.send_response(builder.build(header, records.iter(), [], [], [])).await;
        }
        match forward(self.upstream.as_ref(), name, qtype).await {
            Ok(records) => response.send_response(builder.build(header, records.iter(), [], [], [])).await,
            Err(code) => {
                header.set_response_code(code);
                response.send_response(builder.build_no_records(header)).await
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, response: R) -> ResponseInfo {
        match self.answer(request, response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "dns answer not sent");
                let mut h = Header::response_from_request(request.header());
                h.set_response_code(ResponseCode::ServFail);
                h.into()
            }
        }
    }
}

/// Sockets bound to `ip:53` even before the bridge carries the address (IP_FREEBIND).
fn bind(ip: IpAddr) -> std::io::Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, 53);
    let domain = if ip.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let udp = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_freebind_v4(true)?;
    udp.bind(&addr.into())?;
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_freebind_v4(true)?;
    tcp.set_reuse_address(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(128)?;
    Ok((udp.into(), tokio::net::TcpListener::from_std(tcp.into())?))
}

/// Keeps a resolver on every user network's gateway and the names current (every
/// 250 ms, from the records and the registry). Runs for the daemon's life.
pub async fn run(engine: Engine, root: PathBuf) {
    let names = Arc::new(Names {
        by_network: Default::default(),
        by_gateway: Default::default(),
        engine,
        root,
        last: std::sync::Mutex::new(std::time::Instant::now()),
        stamp: std::sync::Mutex::new(None),
        networks: Default::default(),
        generation: Default::default(),
        checked: Default::default(),
        epoch: std::time::Instant::now(),
    });
    let upstream = TokioResolver::builder_tokio().map(|b| b.build()).ok();
    if upstream.is_none() {
        tracing::warn!("no upstream resolvers (/etc/resolv.conf): only container names will resolve");
    }
    let (to_forwarder, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(udp::forwarder(rx, upstream.clone()));
    let mut servers: HashMap<IpAddr, ServerFuture<Handler>> = HashMap::new();
    let mut first = true;
    let mut seen = 0;
    loop {
        // Re-read when something moved, and every 5 s for containers that died unseen:
        // a full re-read costs CPU that queries would wait for on a small machine.
        let n2 = names.clone();
        let due = std::mem::take(&mut first) || names.moved() || names.older_than(Duration::from_secs(5));
        if due {
            let _ = tokio::task::spawn_blocking(move || n2.refresh()).await;
        }
        // A query may have re-read the names (and networks) since: bind for what it saw.
        let generation = names.generation.load(std::sync::atomic::Ordering::Acquire);
        if generation != seen {
            seen = generation;
            let nets = names.networks.read().map(|n| n.clone()).unwrap_or_default();
            let mut gws = HashMap::new();
            for n in nets.iter().filter(|n| n.name != "bridge") {
                let gw = n.gateway.unwrap_or_else(|| netd::ipam::offset(n.subnet.network(), 1));
                gws.insert(gw, n.name.clone());
                if servers.contains_key(&gw) {
                    continue;
                }
                match bind(gw) {
                    Ok((udp, tcp)) => {
                        // Two threads on the socket: the kernel's send path, most of
                        // an answer's cost, then runs on both cores under load.
                        let spawned = udp.try_clone().and_then(|second| {
                            for sock in [udp, second] {
                                let (n3, tx) = (names.clone(), to_forwarder.clone());
                                std::thread::Builder::new()
                                    .name(format!("dns-{gw}"))
                                    .stack_size(256 * 1024)
                                    .spawn(move || udp::serve(sock, gw, n3, tx))?;
                            }
                            Ok(())
                        });
                        if let Err(e) = spawned {
                            tracing::warn!(network = %n.name, error = %e, "dns thread not started");
                            continue;
                        }
                        let mut s = ServerFuture::new(Handler { gateway: gw, names: names.clone(), upstream: upstream.clone() });
                        s.register_listener(tcp, Duration::from_secs(5));
                        tracing::info!(network = %n.name, address = %gw, "dns listening");
                        servers.insert(gw, s);
                    }
                    Err(e) => tracing::warn!(network = %n.name, address = %gw, error = %e, "dns listener not bound"),
                }
            }
            if let Ok(mut g) = names.by_gateway.write() {
                *g = gws;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
