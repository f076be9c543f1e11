//! A container as the Docker Engine API shows it: one inspect document and one list
//! entry, served by the daemon and printed by `berth inspect` and `ps --format`, so
//! `docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'` works
//! against either.

use serde_json::{json, Map, Value};

use super::{Container, NetMode, Status};
use crate::paths::Paths;

/// Docker's zero time for what has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: Option<u64>) -> String {
    t.map(netd::clock::rfc3339).unwrap_or_else(|| ZERO_TIME.into())
}

/// The state name Docker uses.
pub fn state_name(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Exited => "exited",
    }
}

/// Docker's state word: a running one may be paused, an exited one restarting.
fn state_word(st: Status, paused: bool, restarting: bool) -> &'static str {
    match st {
        Status::Running if paused => "paused",
        Status::Exited if restarting => "restarting",
        st => state_name(st),
    }
}

/// One network's entry of `NetworkSettings.Networks`.
fn endpoint_entry(c: &Container, network: &str, ep: Option<&netd::network::endpoint::Endpoint>, aliases: &[String]) -> Value {
    let v4 = ep.map(|e| e.address);
    let v6 = ep.and_then(|e| e.address6);
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": aliases,
        "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
        "DriverOpts": null,
        "NetworkID": netd::docker::network_id(network),
        "EndpointID": if ep.is_some() { netd::docker::network_id(&format!("{}/{network}", c.id)) } else { String::new() },
        "Gateway": ep.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": v4.map(|a| a.ip().to_string()).unwrap_or_default(),
        "IPPrefixLen": v4.map(|a| a.prefix()).unwrap_or(0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": v6.map(|a| a.ip().to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": v6.map(|a| a.prefix()).unwrap_or(0),
        "DNSNames": if network == "bridge" { Value::Null } else { json!([c.name.clone(), c.short_id()]) },
    })
}

impl Container {
    /// `NetworkSettings.Networks`: its network (with the attachment while it runs) and
    /// the networks connected later (`network connect`), read from the engine.
    pub fn networks(&self, paths: &Paths) -> Map<String, Value> {
        let mut m = Map::new();
        let running = self.effective_status() == Status::Running;
        // One handle for the whole document (for the CLI, one connection to netd).
        let nets = running.then(|| paths.networking());
        match &self.spec.net {
            NetMode::Bridge(name) => {
                let ep = self.state.endpoint.as_ref().filter(|_| running);
                let mut e = endpoint_entry(self, name, ep, &self.spec.aliases);
                if ep.is_some() && e["Gateway"] == "" {
                    // The default bridge's attachments record no gateway: it is the network's.
                    if let Some(net) = nets.as_ref().and_then(|n| n.network(name).ok()) {
                        e["Gateway"] = json!(net.gateway_ip().to_string());
                    }
                }
                m.insert(name.clone(), e);
            }
            other => {
                m.insert(other.display(), endpoint_entry(self, &other.display(), None, &[]));
            }
        }
        let Some(nets) = nets.filter(|_| matches!(self.spec.net, NetMode::Bridge(_))) else { return m };
        for (name, ifname) in nets.attachments(&self.id).unwrap_or_default() {
            if m.contains_key(&name) {
                continue;
            }
            let member = nets.members(&name).ok().and_then(|ms| ms.into_iter().find(|x| x.id == self.id && x.ifname == ifname));
            let Some(member) = member else { continue };
            let mut e = endpoint_entry(self, &name, None, &member.aliases);
            let net = nets.network(&name).ok();
            for ip in &member.addresses {
                if ip.is_ipv4() {
                    e["IPAddress"] = json!(ip.to_string());
                    e["IPPrefixLen"] = json!(net.as_ref().map(|n| n.subnet.prefix()).unwrap_or(0));
                    e["Gateway"] = json!(net.as_ref().map(|n| n.gateway_ip().to_string()).unwrap_or_default());
                } else {
                    e["GlobalIPv6Address"] = json!(ip.to_string());
                    e["GlobalIPv6PrefixLen"] = json!(net.as_ref().and_then(|n| n.subnet6).map(|s| s.prefix()).unwrap_or(64));
                }
            }
            e["EndpointID"] = json!(netd::docker::network_id(&format!("{}/{name}", self.id)));
            m.insert(name, e);
        }
        m
    }

    /// Published ports as Docker's `NetworkSettings.Ports` map: `"80/tcp": [{HostIp, HostPort}]`.
    pub fn port_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for p in self.published() {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = json!({"HostIp": p.host_ip_display(), "HostPort": p.host_port.to_string()});
            match m.get_mut(&key) {
                Some(Value::Array(a)) => a.push(entry),
                _ => {
                    m.insert(key, json!([entry]));
                }
            }
        }
        m
    }

    fn mounts(&self) -> Vec<Value> {
        self.spec
            .volumes
            .iter()
            .map(|v| {
                json!({
                    "Type": if v.volume.is_some() { "volume" } else { "bind" },
                    "Name": v.volume.clone().unwrap_or_default(),
                    "Source": v.host, "Destination": v.container,
                    "Driver": if v.volume.is_some() { "local" } else { "" },
                    "Mode": if v.readonly { "ro" } else { "" }, "RW": !v.readonly, "Propagation": "",
                })
            })
            .collect()
    }

    /// `GET /containers/{id}/json`, `berth inspect`.
    pub fn inspect(&self, paths: &Paths) -> Value {
        let st = self.effective_status();
        // Docker's restarting container counts as running, without a PID.
        let restarting = self.restarting();
        let running = st == Status::Running;
        let paused = running && self.paused();
        let networks = self.networks(paths);
        // The primary network's address at the top level too, as Docker still shows it.
        let primary = networks.get(&self.spec.net.display()).cloned().unwrap_or(Value::Null);
        let field = |k: &str| primary.get(k).cloned().unwrap_or(json!(""));
        let l = &self.spec.limits;
        json!({
            "Id": self.id,
            "Created": time(Some(self.created)),
            "Path": self.spec.args.first().cloned().unwrap_or_default(),
            "Args": self.spec.args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
            "State": {
                "Status": state_word(st, paused, restarting), "Running": running || restarting, "Paused": paused, "Restarting": restarting,
                "OOMKilled": false, "Dead": false,
                "Pid": if running { self.state.pid.unwrap_or(0) } else { 0 },
                "ExitCode": self.state.exit_code.unwrap_or(0),
                "Error": self.state.error,
                "StartedAt": time(self.state.started_at),
                "FinishedAt": time(self.state.finished_at),
            },
            "Image": self.spec.image_id,
            "ImageId": self.spec.image_id,
            "ResolvConfPath": paths.container(&self.id).join("resolv.conf"),
            "HostnamePath": paths.container(&self.id).join("hostname"),
            "HostsPath": paths.container(&self.id).join("hosts"),
            "LogPath": paths.container(&self.id).join("container.log"),
            "Name": format!("/{}", self.name),
            "RestartCount": self.state.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "HostConfig": {
                "NetworkMode": self.spec.net.display(),
                "PortBindings": self.spec.ports.iter().fold(Map::new(), |mut m, p| {
                    let host_port = if p.is_ephemeral() { String::new() } else { p.host_port.to_string() };
                    let e = json!({"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(), "HostPort": host_port});
                    if let Some(a) = m.entry(format!("{}/{}", p.container_port, p.proto)).or_insert_with(|| json!([])).as_array_mut() {
                        a.push(e);
                    }
                    m
                }),
                "RestartPolicy": {"Name": self.spec.restart.name(), "MaximumRetryCount": self.spec.restart.max_retries},
                // The API serves the log as json-file's does: clients (docker-py) read it then.
                "LogConfig": {"Type": "json-file", "Config": {}},
                "AutoRemove": self.spec.auto_remove,
                "Binds": self.spec.volumes.iter().filter(|v| !v.anonymous).map(|v| {
                    let src = v.volume.clone().unwrap_or(v.host.clone());
                    if v.readonly { format!("{src}:{}:ro", v.container) } else { format!("{src}:{}", v.container) }
                }).collect::<Vec<_>>(),
                "Memory": l.memory.unwrap_or(0),
                "NanoCpus": l.cpus.map(|x| (x * 1e9) as u64).unwrap_or(0),
                "PidsLimit": l.pids.unwrap_or(0),
                "Privileged": self.spec.security.privileged,
                "CapAdd": null, "CapDrop": null,
                "Dns": self.spec.dns,
            },
            "Config": {
                "Hostname": self.spec.hostname,
                "User": self.spec.user,
                "Tty": self.spec.tty,
                "OpenStdin": self.spec.interactive,
                "Env": self.spec.env,
                "Cmd": self.spec.args,
                "Image": self.spec.image,
                "WorkingDir": self.spec.workdir,
                "Labels": self.spec.labels,
                "StopSignal": self.spec.stop_signal,
            },
            "Mounts": self.mounts(),
            "NetworkSettings": {
                "Ports": self.port_map(),
                "IPAddress": field("IPAddress"),
                "IPPrefixLen": primary.get("IPPrefixLen").cloned().unwrap_or(json!(0)),
                "Gateway": field("Gateway"),
                "MacAddress": field("MacAddress"),
                "GlobalIPv6Address": field("GlobalIPv6Address"),
                "GlobalIPv6PrefixLen": primary.get("GlobalIPv6PrefixLen").cloned().unwrap_or(json!(0)),
                "Networks": networks,
            },
        })
    }

    /// The state name `ps` shows: Docker's, with `paused`.
    pub fn state_text(&self) -> &'static str {
        let st = self.effective_status();
        state_word(st, st == Status::Running && self.paused(), st == Status::Exited && self.restarting())
    }

    /// The status `ps` shows: "Up 5 minutes (Paused)", "Exited (3) 2 seconds ago".
    pub fn status_text(&self) -> String {
        match self.effective_status() {
            Status::Created => "Created".to_string(),
            Status::Running => {
                let up = format!("Up {}", crate::clock::since(self.state.started_at.unwrap_or(self.created)));
                if self.paused() {
                    format!("{up} (Paused)")
                } else {
                    up
                }
            }
            Status::Exited => format!(
                "{} ({}) {} ago",
                if self.restarting() { "Restarting" } else { "Exited" },
                self.state.exit_code.unwrap_or(0),
                crate::clock::since(self.state.finished_at.unwrap_or(self.created))
            ),
        }
    }

    /// `GET /containers/json`: the list entry.
    pub fn summary(&self, paths: &Paths) -> Value {
        let ports: Vec<Value> = self
            .published()
            .iter()
            .map(|p| json!({"IP": p.host_ip_display(), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto.to_string()}))
            .collect();
        json!({
            "Id": self.id,
            "Names": [format!("/{}", self.name)],
            "Image": self.spec.image,
            "ImageID": self.spec.image_id,
            "Command": self.spec.args.join(" "),
            "Created": self.created,
            "Ports": ports,
            "Labels": self.spec.labels,
            "State": self.state_text(),
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": self.spec.net.display()},
            "NetworkSettings": {"Networks": self.networks(paths)},
            "Mounts": self.mounts(),
        })
    }
}
