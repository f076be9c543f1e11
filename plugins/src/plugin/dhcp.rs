//! The dhcp IPAM plugin: asks berth's DHCP daemon ([`netd::dhcp::daemon`], the `dhcp
//! daemon` subcommand of the same binary) for a lease on the container's interface,
//! which the main plugin has made and brought up. Keys under `ipam`: `daemonSocketPath`
//! (default `/run/cni/dhcp.sock`), `request` (`[{"option": NAME|NUMBER, "skipDefault":
//! bool}]`), `provide` (`[{"option": ..., "value": STRING}]` or `"fromArg": CNI_ARGS key`),
//! `timeout` (seconds). The result: the address with the first router as its gateway;
//! routes from option 121 when the server sent it, else a default route via the router;
//! DNS from options 6 and 15.

use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netd::dhcp::daemon::{ask, Call};
use netd::dhcp::Request;
use serde::Deserialize;
use serde_json::Value;

use crate::skel::{Args, Plugin};
use crate::types::{code, gojson, CniError, CniResult, Dns, IpConfig, NetConf, RouteConfig};

/// The dhcp plugin.
pub struct Dhcp;

/// Where the daemon listens by default (the reference's path).
pub const DEFAULT_SOCKET: &str = "/run/cni/dhcp.sock";

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IpamConf {
    daemon_socket_path: Option<String>,
    #[serde(default)]
    request: Vec<Value>,
    #[serde(default)]
    provide: Vec<Value>,
    timeout: Option<f64>,
}

/// The option names the reference accepts beside numbers.
fn option_code(v: &Value) -> Result<u8, CniError> {
    let by_name = |n: &str| match n {
        "subnet-mask" => Some(1),
        "routers" => Some(3),
        "domain-name-servers" => Some(6),
        "host-name" => Some(12),
        "domain-name" => Some(15),
        "broadcast-address" => Some(28),
        "static-routes" => Some(33),
        "ntp-servers" => Some(42),
        "dhcp-client-identifier" => Some(61),
        "classless-static-routes" => Some(121),
        _ => n.parse::<u8>().ok(),
    };
    let code = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => by_name(s),
        _ => None,
    };
    code.filter(|c| *c != 0 && *c != 255)
        .ok_or_else(|| CniError::invalid(format!("dhcp: unknown option {v}: a number of 1-254 or a name such as host-name")))
}

fn request(args: &Args, conf: &NetConf) -> Result<(PathBuf, Request), CniError> {
    conf.require_name()?;
    let raw = conf.get("ipam").cloned().unwrap_or(Value::Null);
    let c: IpamConf = gojson::decode(raw).map_err(|e| CniError::invalid(format!("dhcp: ipam: {e}")))?;
    let mut wanted = Vec::new();
    for r in &c.request {
        wanted.push(option_code(gojson::get(r, "option").unwrap_or(&Value::Null))?);
    }
    let mut provide = Vec::new();
    for p in &c.provide {
        let code = option_code(gojson::get(p, "option").unwrap_or(&Value::Null))?;
        let value = match (gojson::get(p, "value").and_then(Value::as_str), gojson::get(p, "fromArg").and_then(Value::as_str)) {
            (Some(v), _) => v.to_string(),
            (None, Some(key)) => match args.args.iter().find(|(k, _)| k == key) {
                Some((_, v)) => v.clone(),
                None => continue,
            },
            _ => return Err(CniError::invalid(format!("dhcp: provide option {code}: needs \"value\" or \"fromArg\""))),
        };
        if value.len() > 255 || value.chars().any(char::is_control) {
            return Err(CniError::invalid(format!("dhcp: provide option {code}: at most 255 printable characters")));
        }
        provide.push((code, value.into_bytes()));
    }
    let netns = args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let req = Request {
        container_id: args.container_id.clone(),
        network: conf.name.clone(),
        netns,
        ifname: args.ifname.clone(),
        request: wanted,
        provide,
        timeout: std::time::Duration::from_secs_f64(c.timeout.unwrap_or(10.0).clamp(0.5, 120.0)),
        broadcast: false,
    };
    Ok((PathBuf::from(c.daemon_socket_path.unwrap_or_else(|| DEFAULT_SOCKET.into())), req))
}

fn call(socket: &std::path::Path, command: &str, req: Request) -> Result<Option<netd::dhcp::Lease>, CniError> {
    Ok(ask(socket, &Call { command: command.into(), request: req })?)
}

impl Plugin for Dhcp {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let (socket, req) = request(args, conf)?;
        if req.netns.is_empty() {
            return Err(CniError::new(code::INVALID_ENV, "dhcp: CNI_NETNS is required"));
        }
        let lease = call(&socket, "ADD", req)?.ok_or_else(|| CniError::new(code::INTERNAL, "dhcp: the daemon returned no lease"))?;
        let address = IpNetwork::new(lease.ip.into(), lease.prefix).map_err(|e| CniError::new(code::INTERNAL, format!("dhcp: {e}")))?;
        let gateway = lease.routers.first().map(|r| (*r).into());
        let routes = if !lease.routes.is_empty() {
            lease
                .routes
                .iter()
                .map(|(dst, gw)| RouteConfig { dst: IpNetwork::V4(*dst), gw: (!gw.is_unspecified()).then_some((*gw).into()) })
                .collect()
        } else {
            gateway.map(|gw| RouteConfig { dst: netd::netlink::Route::default_dst(gw), gw: Some(gw) }).into_iter().collect()
        };
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: Vec::new(),
            ips: vec![IpConfig { address, gateway, interface: None }],
            routes,
            dns: Dns {
                nameservers: lease.dns.iter().map(|d| d.to_string()).collect(),
                domain: lease.domain.clone().unwrap_or_default(),
                ..Default::default()
            },
        })
    }

    /// RELEASE through the daemon; nothing leased (or no daemon and so no lease) is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (socket, req) = request(args, conf)?;
        if !socket.exists() {
            tracing::warn!(socket = %socket.display(), "no dhcp daemon: nothing to release");
            return Ok(());
        }
        call(&socket, "DEL", req)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (socket, req) = request(args, conf)?;
        call(&socket, "CHECK", req)?;
        Ok(())
    }

    /// The daemon drops by itself the lease of an attachment whose netns is gone (at its
    /// next renewal): nothing to collect here.
    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        conf.require_name().map(|_| ())
    }

    fn status(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let raw = conf.get("ipam").cloned().unwrap_or(Value::Null);
        let c: IpamConf = gojson::decode(raw).unwrap_or_default();
        let socket = PathBuf::from(c.daemon_socket_path.unwrap_or_else(|| DEFAULT_SOCKET.into()));
        std::os::unix::net::UnixStream::connect(&socket)
            .map(|_| ())
            .map_err(|e| CniError::new(code::NOT_AVAILABLE, format!("dhcp: the daemon at {} does not answer: {e}", socket.display())))
    }
}
