//! Name resolution on user networks, as Docker's embedded resolver behaves: netd answers
//! DNS on each user network's gateway address (UDP and TCP 53) with the names of the
//! containers on that network (name, short ID, full ID, aliases) — to that network's
//! members only. The sockets are bound to the network's bridge (SO_BINDTODEVICE), so a
//! query that arrives on any other interface (a LAN host routing the subnet here, a
//! container of another network) reaches no resolver; a source that is not a member
//! is REFUSED. Other names are forwarded, bounded (see [`forward`]), to the host's
//! resolvers — never from an `--internal` network. The default `bridge` network keeps
//! Docker's semantics: no names. Networks without a bridge (macvlan, ipvlan), whose
//! containers cannot reach the host, are served as Docker serves them: on 127.0.0.11
//! inside each running member's own netns.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth::container::Container;
use netd::engine::{Engine, Networking};
use netd::network::endpoint::BridgeNetwork;

pub mod fast;
pub mod forward;
pub mod query;
mod tcp;
mod udp;

/// One user network as its resolver sees it.
#[derive(Debug, Default)]
pub struct NetView {
    /// Lowercase name → addresses.
    names: HashMap<String, Vec<IpAddr>>,
    /// The addresses of its members: the only sources answered.
    members: HashSet<IpAddr>,
    /// `--internal`: nothing is forwarded.
    internal: bool,
}

/// Every user network by the gateway address its resolver listens on.
pub type Snapshot = HashMap<IpAddr, NetView>;

/// The names as last read. Readers hold an `Arc` of one snapshot and swap it only
/// when the generation moves, so a query takes no lock.
pub struct Names {
    snap: RwLock<Arc<Snapshot>>,
    engine: Engine,
    paths: berth::paths::Paths,
    /// When the names were last read, to bound re-reads on misses.
    last: std::sync::Mutex<std::time::Instant>,
    /// The registry's mtime when they were read: any attach or detach since moves it.
    stamp: std::sync::Mutex<Option<(std::time::SystemTime, Option<std::time::SystemTime>)>>,
    /// When `moved` was last asked, in ms since `epoch`.
    checked: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    /// The networks as last read, and how many reads there were.
    networks: RwLock<Vec<BridgeNetwork>>,
    /// The running members of networks without a bridge, as last read.
    embedded: RwLock<Vec<Embedded>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Names {
    /// The registry's and the network store's mtimes: attach, detach, network create
    /// and remove move them.
    fn registry_mtime(&self) -> Option<(std::time::SystemTime, Option<std::time::SystemTime>)> {
        let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.engine.registry_dir())?, m(&self.paths.lib.join("networks"))))
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
        let records = berth::container::all(&self.paths).unwrap_or_default();
        let nets = self.engine.networks().unwrap_or_default();
        let (map, embedded) = collect(&self.engine, &nets, &records);
        if let Ok(mut m) = self.snap.write() {
            *m = Arc::new(map);
        }
        if let Ok(mut e) = self.embedded.write() {
            *e = embedded;
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

    /// The current snapshot.
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A reader's view: the snapshot it holds and its generation.
pub struct View {
    generation: u64,
    snap: Arc<Snapshot>,
}

/// What a query's source and name come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not a member of the network (or no network is served there): REFUSED.
    NotMember,
    /// A container name: these addresses.
    Found(Vec<IpAddr>),
    /// Not a container name: forwarded, unless the network is internal.
    Missing {
        /// The network is `--internal`.
        internal: bool,
    },
    /// A miss from a source past its forwarding share: dropped unanswered, before the
    /// names are re-read for it.
    Shed,
}

/// The names and members of the running containers on each user network, from the
/// records and the endpoint registry, by gateway address; and the running members of
/// networks without a bridge, whose resolver is in their own netns.
fn collect(engine: &Engine, nets: &[BridgeNetwork], records: &[Container]) -> (Snapshot, Vec<Embedded>) {
    let mut out = Snapshot::new();
    let mut embedded = Vec::new();
    // Running containers by ID, once: a search per member would be O(N²).
    let running: HashMap<&str, &Container> = records.iter().filter(|c| c.alive()).map(|c| (c.id.as_str(), c)).collect();
    for net in nets.iter().filter(|n| n.name != "bridge") {
        let view = out.entry(gateway(net)).or_default();
        view.internal = net.internal;
        for m in engine.members(&net.name).unwrap_or_default() {
            // Every attachment is a member (one starting up asks before its record
            // says running); only running containers have names.
            view.members.extend(m.addresses.iter().copied());
            let Some(c) = running.get(m.id.as_str()) else { continue };
            if net.driver != netd::network::driver::Driver::Bridge {
                if let (Some(pid), Some(addr)) = (c.state.pid, m.addresses.first()) {
                    embedded.push(Embedded { key: gateway(net), id: m.id.clone(), pid: pid as u32, addr: *addr });
                }
            }
            let mut keys = vec![m.id.to_lowercase(), m.id.chars().take(12).collect::<String>()];
            keys.push(c.name.to_lowercase());
            // Aliases are network-scoped: the engine keeps them per attachment.
            keys.extend(m.aliases.iter().map(|a| a.to_lowercase()));
            for k in keys {
                view.names.entry(k).or_default().extend(m.addresses.iter().copied());
            }
        }
    }
    (out, embedded)
}

/// The address a network's resolver listens on.
fn gateway(n: &BridgeNetwork) -> IpAddr {
    n.gateway_ip()
}

impl Names {
    fn new(engine: Engine, paths: berth::paths::Paths) -> Self {
        Self {
            snap: Default::default(),
            engine,
            paths,
            last: std::sync::Mutex::new(std::time::Instant::now()),
            stamp: std::sync::Mutex::new(None),
            networks: Default::default(),
            embedded: Default::default(),
            generation: Default::default(),
            checked: Default::default(),
            epoch: std::time::Instant::now(),
        }
    }

    /// A view of the current names for one reader.
    pub fn view(&self) -> View {
        View { generation: self.generation.load(std::sync::atomic::Ordering::Acquire), snap: self.snapshot() }
    }

    /// Brings `view` up to date if the names were re-read since (one atomic load).
    fn update(&self, view: &mut View) {
        let g = self.generation.load(std::sync::atomic::Ordering::Acquire);
        if g != view.generation {
            *view = View { generation: g, snap: self.snapshot() };
        }
    }

    fn look(view: &View, gateway: IpAddr, src: IpAddr, key: &str) -> Lookup {
        match view.snap.get(&gateway) {
            Some(n) if n.members.contains(&src) => match n.names.get(key) {
                Some(ips) => Lookup::Found(ips.clone()),
                None => Lookup::Missing { internal: n.internal },
            },
            _ => Lookup::NotMember,
        }
    }

    /// What `key` asked by `src` on the network served at `gateway` comes to. The names
    /// are re-read first when an attach, detach or network change happened since
    /// (checked at most once a millisecond: two stats), and on a miss when they are
    /// older than 50 ms (a container that started a moment ago). Blocking at times.
    pub fn resolve(&self, view: &mut View, gateway: IpAddr, src: IpAddr, key: &str, shed: impl Fn(IpAddr) -> bool) -> Lookup {
        let now = self.epoch.elapsed().as_millis() as u64;
        let checked = self.checked.swap(now, std::sync::atomic::Ordering::Relaxed);
        if now != checked && self.moved() {
            self.refresh();
        }
        self.update(view);
        let found = Self::look(view, gateway, src, key);
        if matches!(found, Lookup::Found(_)) {
            return found;
        }
        // A miss (or an unknown source): re-read if the names may be behind, then look
        // again either way (another thread may have re-read them since the first look).
        let may_be_behind = match found {
            Lookup::NotMember => self.moved(),
            Lookup::Missing { internal: false } if shed(src) => return Lookup::Shed,
            _ => self.stale() || self.moved(),
        };
        if may_be_behind {
            self.refresh();
        }
        self.update(view);
        Self::look(view, gateway, src, key)
    }
}

/// Sockets bound to `ip:53` on `bridge` only (SO_BINDTODEVICE), even before the bridge
/// carries the address (IP_FREEBIND).
fn bind(ip: IpAddr, bridge: &str) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, 53);
    let domain = if ip.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let udp = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_freebind_v4(true)?;
    // Room for bursts (and for the packets that arrive while a flood is shed).
    udp.set_recv_buffer_size(1 << 20)?;
    udp.bind_device(Some(bridge.as_bytes()))?;
    udp.bind(&addr.into())?;
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_freebind_v4(true)?;
    tcp.set_reuse_address(true)?;
    tcp.bind_device(Some(bridge.as_bytes()))?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(128)?;
    Ok((udp.into(), tcp.into()))
}

/// A network's resolver: its sockets (to re-bind them when the bridge is made anew)
/// and the index of the bridge they are bound to.
struct Served {
    bridge: String,
    index: u32,
    udp: socket2::Socket,
    tcp: socket2::Socket,
}

impl Served {
    /// Re-binds to the bridge when it was deleted and made again (a new index).
    fn follow(&mut self) {
        let Ok(index) = nix::net::if_::if_nametoindex(self.bridge.as_str()) else { return };
        if index != self.index {
            for s in [&self.udp, &self.tcp] {
                if let Err(e) = s.bind_device(Some(self.bridge.as_bytes())) {
                    tracing::warn!(bridge = %self.bridge, error = %e, "dns socket not re-bound");
                    return;
                }
            }
            self.index = index;
        }
    }
}

/// Starts the resolver of one network: two UDP threads and the TCP listener.
fn serve(
    n: &BridgeNetwork,
    names: &Arc<Names>,
    forwarder: &Arc<forward::Forwarder>,
    tcp_limits: &Arc<tcp::Limits>,
) -> std::io::Result<Served> {
    let gw = gateway(n);
    let index = nix::net::if_::if_nametoindex(n.bridge.as_str()).map_err(std::io::Error::from)?;
    let (udp, listener) = bind(gw, &n.bridge)?;
    let served = Served { bridge: n.bridge.clone(), index, udp: udp.try_clone()?.into(), tcp: listener.try_clone()?.into() };
    // Two threads on the socket: the kernel's send path, most of an answer's cost,
    // then runs on both cores under load.
    let second = udp.try_clone()?;
    for sock in [udp, second] {
        let (n3, f) = (names.clone(), forwarder.clone());
        std::thread::Builder::new().name(format!("dns-{gw}")).stack_size(256 * 1024).spawn(move || udp::serve(sock, gw, None, n3, f))?;
    }
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(tcp::serve(listener, gw, None, names.clone(), tcp_limits.clone()));
    Ok(served)
}

/// Where a container on a network without a bridge (macvlan, ipvlan) asks: 127.0.0.11 in
/// its own netns, as Docker's embedded resolver — the host cannot be reached from there.
pub const EMBEDDED: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// A running member of a network without a bridge, served inside its netns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Embedded {
    /// The network's key in the snapshot (its gateway address).
    key: IpAddr,
    /// The container.
    id: String,
    /// Its PID 1 (whose netns the sockets are made in).
    pid: u32,
    /// Its address on the network: every query there is from it.
    addr: IpAddr,
}

/// The sockets of one embedded resolver, shut down when its member leaves.
struct EmbeddedServed {
    udp: socket2::Socket,
    tcp: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedServed {
    fn drop(&mut self) {
        // Wakes the UDP thread (its receive returns empty) and ends the TCP task, so no
        // socket keeps the container's netns alive after it left.
        let _ = self.udp.shutdown(std::net::Shutdown::Both);
        self.tcp.abort();
    }
}

/// Opens 127.0.0.11:53 (UDP and TCP) inside `e`'s netns and serves it for its network.
fn serve_embedded(
    e: &Embedded,
    names: &Arc<Names>,
    forwarder: &Arc<forward::Forwarder>,
    tcp_limits: &Arc<tcp::Limits>,
) -> std::result::Result<EmbeddedServed, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ns = netd::netns::NetNs::open(format!("/proc/{}/ns/net", e.pid)).map_err(|e| e.to_string())?;
    let addr: SocketAddr = (EMBEDDED, 53).into();
    let (udp, tcp) = ns
        .run(|| {
            let io = |e: std::io::Error| netd::Error::io("bind", "127.0.0.11:53", e);
            let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io)?;
            udp.bind(&addr.into()).map_err(io)?;
            let tcp = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
            tcp.set_reuse_address(true).map_err(io)?;
            tcp.set_nonblocking(true).map_err(io)?;
            tcp.bind(&addr.into()).map_err(io)?;
            tcp.listen(16).map_err(io)?;
            Ok((udp, tcp))
        })
        .map_err(|e| e.to_string())?;
    let keep = udp.try_clone().map_err(|e| e.to_string())?;
    let (key, member, n, f) = (e.key, Some(e.addr), names.clone(), forwarder.clone());
    let std_udp: std::net::UdpSocket = udp.into();
    std::thread::Builder::new()
        .name(format!("dns-{}", e.id.chars().take(12).collect::<String>()))
        .stack_size(256 * 1024)
        .spawn(move || udp::serve(std_udp, key, member, n, f))
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(tcp.into()).map_err(|e| e.to_string())?;
    let task = tokio::spawn(tcp::serve(listener, key, member, names.clone(), tcp_limits.clone()));
    Ok(EmbeddedServed { udp: keep, tcp: task })
}

/// Keeps a resolver on every user network's gateway and the names current (every
/// 250 ms, from the records and the registry). Runs for the daemon's life.
pub async fn run(engine: Engine, paths: berth::paths::Paths) {
    let names = Arc::new(Names::new(engine, paths));
    let upstream = forward::system_servers();
    if upstream.is_empty() {
        tracing::warn!("no upstream resolvers (/etc/resolv.conf): only container names will resolve");
    }
    let forwarder = match forward::Forwarder::start(&upstream, forward::Limits::default()) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "dns forwarder not started: only container names will resolve");
            match forward::Forwarder::start(&[], forward::Limits::default()) {
                Ok(f) => f,
                Err(_) => return,
            }
        }
    };
    let tcp_limits = Arc::new(tcp::Limits::new(upstream));
    let mut servers: HashMap<IpAddr, Served> = HashMap::new();
    let mut embedded: HashMap<Embedded, EmbeddedServed> = HashMap::new();
    let mut first = true;
    loop {
        // Re-read when something moved, and every 5 s for containers that died unseen:
        // a full re-read costs CPU that queries would wait for on a small machine.
        let n2 = names.clone();
        let due = std::mem::take(&mut first) || names.moved() || names.older_than(Duration::from_secs(5));
        if due {
            let _ = tokio::task::spawn_blocking(move || n2.refresh()).await;
        }
        let members = names.embedded.read().map(|e| e.clone()).unwrap_or_default();
        // A member that left (or restarted: a new PID) loses its resolver first, so the
        // sockets never keep its netns alive; one per container (its first such network).
        embedded.retain(|e, _| members.contains(e));
        for e in &members {
            if embedded.contains_key(e) || embedded.keys().any(|s| s.id == e.id) {
                continue;
            }
            match serve_embedded(e, &names, &forwarder, &tcp_limits) {
                Ok(s) => {
                    tracing::info!(container = %e.id, network = %e.key, "dns listening on 127.0.0.11 in the container");
                    embedded.insert(e.clone(), s);
                }
                Err(why) => tracing::debug!(container = %e.id, error = %why, "embedded dns not bound (yet)"),
            }
        }
        let nets = names.networks.read().map(|n| n.clone()).unwrap_or_default();
        for n in nets.iter().filter(|n| n.name != "bridge" && n.driver == netd::network::driver::Driver::Bridge) {
            match servers.get_mut(&gateway(n)) {
                Some(s) => s.follow(),
                // Only once the bridge exists: the sockets are bound to it.
                None if nix::net::if_::if_nametoindex(n.bridge.as_str()).is_ok() => match serve(n, &names, &forwarder, &tcp_limits) {
                    Ok(s) => {
                        tracing::info!(network = %n.name, address = %gateway(n), bridge = %n.bridge, "dns listening");
                        servers.insert(gateway(n), s);
                    }
                    Err(e) => tracing::warn!(network = %n.name, address = %gateway(n), error = %e, "dns listener not bound"),
                },
                None => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
