//! The DHCP daemon: serves ADD/DEL/CHECK for the `dhcp` plugin on a unix socket and keeps
//! each lease alive in a thread of its own. Protocol: the plugin writes one JSON object
//! `{"command": "ADD"|"DEL"|"CHECK", "request": Request}` and shuts down its writing side;
//! the daemon answers `{"lease": Lease}` (ADD, CHECK), `{}` (DEL) or `{"error": "...",
//! "kind": K}` with the error's [`crate::error::Kind`] name. Leases live in `<state>/<key>.json`, written
//! atomically; on start every saved lease is picked up again.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::Client;
use super::{Lease, Request};
use crate::error::{Error, Result};
use crate::netns::NetNs;
use crate::state::StateDir;

/// What the daemon keeps per attachment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    request: Request,
    lease: Lease,
}

/// One request to the daemon.
#[derive(Debug, Serialize, Deserialize)]
pub struct Call {
    /// ADD, DEL or CHECK.
    pub command: String,
    /// The attachment.
    pub request: Request,
}

/// The daemon's state.
pub struct Daemon {
    leases: StateDir,
    hostprefix: PathBuf,
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Serialises work on one attachment (ADD, DEL and its renewals).
    busy: Mutex<()>,
}

impl Daemon {
    /// A daemon keeping leases under `state`, reaching netns paths under `hostprefix`.
    pub fn open(state: &Path, hostprefix: &Path) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            leases: StateDir::open(state)?,
            hostprefix: hostprefix.to_path_buf(),
            running: Mutex::new(HashMap::new()),
            busy: Mutex::new(()),
        }))
    }

    fn netns(&self, req: &Request) -> Result<NetNs> {
        let rel = req.netns.trim_start_matches('/');
        NetNs::open(self.hostprefix.join(rel))
    }

    fn mac(ns: &NetNs, ifname: &str) -> Result<[u8; 6]> {
        let link = ns.run(|| crate::netlink::Socket::open()?.link_by_name(ifname).map_err(Error::from))?;
        let link = link.ok_or_else(|| Error::NoSuchInterface { ifname: ifname.to_string(), netns: ns.path().to_path_buf() })?;
        crate::tuning::parse_mac(&link.mac)
    }

    /// Serves `listener` until it fails; first resumes every saved lease.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> Result<()> {
        for key in self.leases.keys() {
            if let Some(r) = self.leases.load::<Record>(&key) {
                tracing::info!(ip = %r.lease.ip, ifname = %r.request.ifname, "resuming lease");
                self.keep(&r.request);
            }
        }
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let me = Arc::clone(self);
            std::thread::spawn(move || me.answer(conn));
        }
        Ok(())
    }

    fn answer(&self, mut conn: UnixStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut body = Vec::new();
        let reply = match (&mut conn).take(1 << 20).read_to_end(&mut body).map_err(|e| Error::io("read", "dhcp request", e)) {
            Ok(_) => match serde_json::from_slice::<Call>(&body) {
                Ok(call) => self.call(&call),
                Err(e) => Err(Error::Dhcp(format!("bad request: {e}"))),
            },
            Err(e) => Err(e),
        };
        let out = match reply {
            Ok(Some(lease)) => serde_json::json!({ "lease": lease }),
            Ok(None) => serde_json::json!({}),
            Err(e) => serde_json::json!({"error": e.to_string(), "kind": e.kind().as_str()}),
        };
        let _ = conn.write_all(out.to_string().as_bytes());
    }

    /// Runs one call.
    pub fn call(&self, call: &Call) -> Result<Option<Lease>> {
        let req = &call.request;
        crate::name::Name::interface(&req.ifname)?;
        match call.command.as_str() {
            "ADD" => self.add(req).map(Some),
            "DEL" => self.del(req).map(|()| None),
            "CHECK" => match self.leases.load::<Record>(&req.key()) {
                Some(r) if !r.lease.expired(crate::clock::now()) => Ok(Some(r.lease)),
                Some(_) => Err(Error::Check(format!("the lease of {} has expired", req.ifname))),
                None => Err(Error::Check(format!("no lease for {}", req.ifname))),
            },
            other => Err(Error::Dhcp(format!("unknown command {other:?}"))),
        }
    }

    fn add(&self, req: &Request) -> Result<Lease> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = self.leases.load::<Record>(&req.key()).filter(|r| r.request == *req && !r.lease.expired(crate::clock::now())) {
            return Ok(r.lease);
        }
        let ns = self.netns(req)?;
        let mac = Self::mac(&ns, &req.ifname)?;
        let lease = Client::new(&ns, req, mac).acquire()?;
        self.leases.save(&req.key(), &Record { request: req.clone(), lease: lease.clone() })?;
        tracing::info!(ip = %lease.ip, ifname = %req.ifname, secs = lease.secs, "leased");
        drop(_busy);
        self.keep(req);
        Ok(lease)
    }

    fn del(&self, req: &Request) -> Result<()> {
        if let Some(stop) = self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&req.key()) {
            stop.store(true, Ordering::SeqCst);
        }
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = self.leases.load::<Record>(&req.key()) else { return Ok(()) };
        // A gone netns or interface cannot send the RELEASE: the lease then just runs out.
        if let Ok(ns) = self.netns(&r.request) {
            if let Ok(mac) = Self::mac(&ns, &r.request.ifname) {
                if let Err(e) = Client::new(&ns, &r.request, mac).release(&r.lease) {
                    tracing::warn!(error = %e, "RELEASE not sent");
                }
            }
        }
        self.leases.remove(&req.key())
    }

    /// Starts the thread that renews the attachment's lease until DEL or its netns goes.
    fn keep(&self, req: &Request) {
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(old) = self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(req.key(), Arc::clone(&stop)) {
            old.store(true, Ordering::SeqCst);
        }
        let (leases, hostprefix, key) = (self.leases.clone(), self.hostprefix.clone(), req.key());
        std::thread::spawn(move || {
            let me = Daemon { leases, hostprefix, running: Mutex::new(HashMap::new()), busy: Mutex::new(()) };
            me.renew_until(&key, &stop);
        });
    }

    fn renew_until(&self, key: &str, stop: &AtomicBool) {
        let mut backoff = 0u64;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Some(r) = self.leases.load::<Record>(key) else { return };
            let now = crate::clock::now();
            if r.lease.expired(now) {
                tracing::warn!(ip = %r.lease.ip, ifname = %r.request.ifname, "lease expired");
                let _ = self.leases.remove(key);
                return;
            }
            let renew_at = r.lease.obtained + u64::from(r.lease.t1) + backoff;
            if now < renew_at {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            let Ok(ns) = self.netns(&r.request) else {
                tracing::info!(ifname = %r.request.ifname, "netns gone: lease dropped");
                let _ = self.leases.remove(key);
                return;
            };
            let rebind = now >= r.lease.obtained + u64::from(r.lease.t2);
            let renewed = Self::mac(&ns, &r.request.ifname).and_then(|mac| Client::new(&ns, &r.request, mac).renew(&r.lease, rebind));
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match renewed {
                Ok(lease) => {
                    backoff = 0;
                    tracing::info!(ip = %lease.ip, secs = lease.secs, rebind, "renewed");
                    let _ = self.leases.save(key, &Record { request: r.request, lease });
                }
                Err(e) => {
                    tracing::warn!(error = %e, rebind, "renewal failed");
                    backoff = (backoff + 2).min(u64::from(r.lease.secs / 8).max(2));
                }
            }
        }
    }
}

/// Asks the daemon at `socket` to run `call`.
pub fn ask(socket: &Path, call: &Call) -> Result<Option<Lease>> {
    let mut conn = UnixStream::connect(socket)
        .map_err(|e| Error::DaemonUnreachable { socket: socket.to_path_buf(), why: format!("{e} (is `dhcp daemon` running?)") })?;
    let body = serde_json::to_vec(call).map_err(|e| Error::Dhcp(e.to_string()))?;
    conn.write_all(&body).map_err(|e| Error::io("write", socket, e))?;
    conn.shutdown(std::net::Shutdown::Write).map_err(|e| Error::io("write", socket, e))?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out).map_err(|e| Error::io("read", socket, e))?;
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| Error::Dhcp(format!("bad answer from the daemon: {e}")))?;
    if let Some(msg) = v.get("error").and_then(|e| e.as_str()) {
        return Err(Error::Dhcp(msg.trim_start_matches("dhcp: ").to_string()));
    }
    match v.get("lease") {
        Some(l) => Ok(Some(serde_json::from_value(l.clone()).map_err(|e| Error::Dhcp(e.to_string()))?)),
        None => Ok(None),
    }
}
