//! [`Networking`] over the daemon's socket: when netd serves, the runtime asks it to do
//! the work instead of doing it in-process, so one process owns the kernel state. Plain
//! HTTP/1.1 on a blocking unix stream (one request per connection), std only: the
//! plugins link this library and must stay free of an async stack.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{AttachOptions, CreateNetwork, Member, Networking};
use crate::error::{Error, Result};
use crate::name::Name;
use crate::network::endpoint::{BridgeNetwork, Endpoint};

/// The path prefix of berth's own routes (beside the Docker API's).
pub const PREFIX: &str = "/berth/v1";

/// How long one request may take: attach holds locks bounded by `BERTH_LOCK_TIMEOUT`.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The body of an attach request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachRequest {
    /// The container.
    pub id: String,
    /// Its network namespace (as the daemon sees the file system: `/proc/PID/ns/net`).
    pub netns: PathBuf,
    /// Interface, ports, address, aliases.
    pub options: AttachOptions,
}

/// The body of a detach request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetachRequest {
    /// The container.
    pub id: String,
    /// Its network namespace, if it still exists.
    pub netns: Option<PathBuf>,
    /// The interface.
    pub ifname: String,
    /// The attachment as recorded, if known.
    pub endpoint: Option<Endpoint>,
}

/// A client of the netd socket at `socket`.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of `socket`, if a daemon accepts connections there (one connect, no
    /// request: a stale socket file is refused at once).
    pub fn connect(socket: &Path) -> Option<Self> {
        UnixStream::connect(socket).ok().map(|_| Self { socket: socket.to_path_buf() })
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> Error {
        Error::DaemonUnreachable { socket: self.socket.clone(), why: why.to_string() }
    }

    /// One request to `path` (absolute), answered within `timeout`: the status and body.
    fn request(&self, method: &str, path: &str, body: &[u8], timeout: Duration) -> Result<(u16, Vec<u8>)> {
        let mut s = UnixStream::connect(&self.socket).map_err(|e| self.unreachable(e))?;
        s.set_read_timeout(Some(timeout)).map_err(|e| self.unreachable(e))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: netd\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| self.unreachable(e))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| self.unreachable(e))?;
        let (status, body) = parse_response(&raw).ok_or_else(|| self.unreachable("malformed HTTP response"))?;
        Ok((status, body.to_vec()))
    }

    /// Whether the daemon answers the Docker API's `_ping` within `timeout`.
    pub fn ping(&self, timeout: Duration) -> bool {
        matches!(self.request("GET", "/_ping", &[], timeout), Ok((200, body)) if body == b"OK")
    }

    /// One request to berth's routes; a 2xx answer's body is decoded as `T`, any other
    /// becomes [`Error::Daemon`] with the daemon's message.
    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&impl Serialize>) -> Result<T> {
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| self.unreachable(e))?,
            None => Vec::new(),
        };
        let (status, body) = self.request(method, &format!("{PREFIX}{path}"), &body, TIMEOUT)?;
        let body = body.as_slice();
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
            return Err(Error::Daemon { status, message });
        }
        let body = if body.is_empty() { b"null".as_slice() } else { body };
        serde_json::from_slice(body).map_err(|e| self.unreachable(format!("undecodable answer to {method} {path}: {e}")))
    }
}

/// The status and body of a complete `Connection: close` response with a
/// `Content-Length` (what the daemon sends for every JSON answer).
fn parse_response(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let body = &raw[end + 4..];
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(body.len());
    body.get(..len).map(|b| (status, b))
}

const NONE: Option<&()> = None;

impl Networking for Client {
    fn network(&self, name: &str) -> Result<BridgeNetwork> {
        let n = Name::network(name).map_err(|_| Error::NoSuchNetwork(name.to_string()))?;
        self.call("GET", &format!("/networks/{n}"), NONE)
    }

    fn networks(&self) -> Result<Vec<BridgeNetwork>> {
        self.call("GET", "/networks", NONE)
    }

    fn create_network(&self, req: &CreateNetwork) -> Result<BridgeNetwork> {
        self.call("POST", "/networks", Some(req))
    }

    fn remove_network(&self, name: &str) -> Result<BridgeNetwork> {
        let n = Name::network(name).map_err(|_| Error::NoSuchNetwork(name.to_string()))?;
        self.call("DELETE", &format!("/networks/{n}"), NONE)
    }

    fn attach(&self, net: &BridgeNetwork, id: &str, netns: &Path, opts: &AttachOptions) -> Result<Endpoint> {
        let req = AttachRequest { id: id.to_string(), netns: netns.to_path_buf(), options: opts.clone() };
        self.call("POST", &format!("/networks/{}/attach", Name::network(&net.name)?), Some(&req))
    }

    fn detach(&self, net: &BridgeNetwork, id: &str, netns: Option<&Path>, ifname: &str, ep: Option<&Endpoint>) -> Result<()> {
        let req =
            DetachRequest { id: id.to_string(), netns: netns.map(Path::to_path_buf), ifname: ifname.to_string(), endpoint: ep.cloned() };
        self.call("POST", &format!("/networks/{}/detach", Name::network(&net.name)?), Some(&req))
    }

    fn attachments(&self, id: &str) -> Result<Vec<(String, String)>> {
        self.call("GET", &format!("/containers/{}/attachments", Name::container(id)?), NONE)
    }

    fn members(&self, network: &str) -> Result<Vec<Member>> {
        let n = Name::network(network).map_err(|_| Error::NoSuchNetwork(network.to_string()))?;
        self.call("GET", &format!("/networks/{n}/members"), NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_by_its_length() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"message\":1}trailing";
        assert_eq!(parse_response(raw), Some((404, b"{\"message\":1}".as_slice())));
        assert_eq!(parse_response(b"HTTP/1.1 204 No Content\r\n\r\n"), Some((204, b"".as_slice())));
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\nshort"), None);
    }
}
