//! The Docker Engine API's network endpoints (and read-only container listing) over the
//! engine: routing, Docker's error shape and status codes, lookups by id, name or prefix.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use netd::engine::{CreateNetwork, Engine, Networking};
use netd::network::endpoint::BridgeNetwork;
use serde::Deserialize;
use serde_json::{json, Value};

use netd::docker;

/// What every handler shares.
pub struct App {
    /// The engine.
    pub engine: Engine,
    /// The container library's roots, networking in this process.
    pub paths: berth::paths::Paths,
    /// The `berth` executable that runs as each container's monitor.
    pub berth: PathBuf,
    /// What the API did, for `GET /events`.
    pub events: crate::events::Events,
    /// Exec instances.
    pub execs: crate::containers::exec::Execs,
    /// The monitor kept ready for the next start.
    pub standby: Arc<crate::containers::StandbySlot>,
}

/// An API error: Docker's `{"message": ...}` with its status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"message": self.1}))).into_response()
    }
}

/// The HTTP status of an engine error's kind, as the Docker Engine API answers.
pub fn status_of(e: &netd::Error) -> StatusCode {
    use netd::error::Kind as K;
    match (e.kind(), e) {
        // A client error carries netd's own answer through.
        (_, netd::Error::Daemon { status, .. }) => StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        (K::Invalid | K::Exhausted, _) => StatusCode::BAD_REQUEST,
        (K::NotFound | K::UnknownContainer | K::BadNetns, _) => StatusCode::NOT_FOUND,
        (K::Forbidden | K::Busy, _) => StatusCode::FORBIDDEN,
        (K::InUse, _) => StatusCode::CONFLICT,
        (K::Unsupported, _) => StatusCode::NOT_IMPLEMENTED,
        (K::TryLater, _) => StatusCode::SERVICE_UNAVAILABLE,
        (K::Io | K::Internal, _) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<netd::Error> for ApiError {
    fn from(e: netd::Error) -> Self {
        ApiError(status_of(&e), e.to_string())
    }
}

pub fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

pub type Result<T> = std::result::Result<T, ApiError>;

/// A request body as JSON; malformed is a 400 saying why.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))
}

/// Every value of a query key that may repeat (`t=a&t=b`, `names=x&names=y`), decoded
/// (`%XX`, `+`); an escape that is not valid is a 400.
pub fn query_all(query: &str, key: &str) -> Result<Vec<String>> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
        .map(|v| {
            let b = v.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'%' => {
                        let hex =
                            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                        out.push(hex.ok_or_else(|| bad(format!("invalid escape in {key}={v}")))?);
                        i += 3;
                    }
                    b'+' => {
                        out.push(b' ');
                        i += 1;
                    }
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(out).map_err(|_| bad(format!("{key}={v} is not UTF-8")))
        })
        .collect()
}

/// Runs blocking engine work (netlink, file locks) off the async thread.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// Docker's lookup order: full ID, exact name, then a unique ID prefix.
fn find(nets: Vec<BridgeNetwork>, key: &str) -> Result<BridgeNetwork> {
    let missing = || ApiError(StatusCode::NOT_FOUND, format!("network {key} not found"));
    if let Some(n) = nets.iter().find(|n| docker::network_id(&n.name) == key || n.name == key) {
        return Ok(n.clone());
    }
    let mut m = nets.into_iter().filter(|n| !key.is_empty() && docker::network_id(&n.name).starts_with(key));
    match (m.next(), m.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(bad(format!("network {key} is ambiguous"))),
        _ => Err(missing()),
    }
}

/// The oldest and newest API versions a `/v1.NN` path prefix may name.
const VERSIONS: std::ops::RangeInclusive<u32> = 24..=50;

/// The API as served on both sockets: one router, the `/v1.24` … `/v1.50` prefix taken
/// off before routing (as dockerd's router does) rather than the routes nested 27 times.
pub type Api = tower::util::MapRequest<Router, fn(axum::extract::Request) -> axum::extract::Request>;

/// The router, answering with and without a `/v1.24` … `/v1.50` prefix, ready to serve:
/// each connection gets a clone of it. (axum's own per-connection service rebuilds the
/// whole route table for every connection: ~2 ms of netd's time per request here, and
/// each container start makes several.)
pub fn service(app: Arc<App>) -> axum::routing::IntoMakeService<Api> {
    let api: Api = tower::ServiceExt::map_request(router(app).with_state(()), unversion as fn(_) -> _);
    axum::ServiceExt::<axum::extract::Request>::into_make_service(api)
}

/// The routes, without version prefixes (see [`service`]).
fn router(app: Arc<App>) -> Router {
    let app_berth = app.clone();
    let api = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/networks", get(list_networks))
        .route("/networks/create", post(create_network))
        .route("/networks/prune", post(prune_networks))
        .route("/networks/{id}", get(inspect_network).delete(remove_network))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
        .route("/info", get(info))
        .route("/events", get(crate::events::events))
        .route("/system/df", get(system_df))
        .route("/swarm", axum::routing::any(not_swarm))
        .route("/swarm/{*rest}", axum::routing::any(not_swarm))
        .merge(crate::containers::router())
        .merge(crate::images::router())
        .with_state(app);
    // The body is read before answering: a client still sending it (`docker create`
    // to a daemon without the route) gets the 404, not a reset connection.
    api.merge(crate::engine_routes::router(app_berth))
        .fallback(|_body: axum::body::Bytes| async { ApiError(StatusCode::NOT_FOUND, "page not found".into()) })
        .layer(axum::middleware::from_fn(timed))
}

/// `req` with its API version prefix taken off, if it has one in [`VERSIONS`] and is a
/// Docker API path (berth's own routes take none).
fn unversion(mut req: axum::extract::Request) -> axum::extract::Request {
    let Some(rest) = strip_version(req.uri().path()) else {
        return req;
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The path after a `/v1.NN` prefix with NN in [`VERSIONS`]; `None` for any other path.
fn strip_version(path: &str) -> Option<&str> {
    let after = path.strip_prefix("/v1.")?;
    let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
    let rest = &after[digits..];
    let v: u32 = after[..digits].parse().ok()?;
    (VERSIONS.contains(&v) && rest.starts_with('/') && !rest.starts_with(netd::engine::client::PREFIX)).then_some(rest)
}

/// Logs each request's method, path, status and time to its answer's head (debug), so
/// that a slow endpoint shows in netd's log.
async fn timed(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let t = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::debug!(%method, %path, status = res.status().as_u16(), elapsed_us = t.elapsed().as_micros() as u64, "request");
    res
}

/// What a dockerd outside a swarm answers every swarm route.
async fn not_swarm(_body: axum::body::Bytes) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
            .into(),
    )
}

async fn system_df(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    blocking(move || berth::usage::system_df(&app.paths).map(Json).map_err(crate::containers::error)).await
}

async fn info(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    blocking(move || berth::info::info(&app.paths).map(Json).map_err(crate::containers::error)).await
}

async fn ping(method: Method) -> impl IntoResponse {
    let mut h = HeaderMap::new();
    h.insert("Api-Version", HeaderValue::from_static(docker::API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    (h, if method == Method::HEAD { "" } else { "OK" })
}

async fn version() -> impl IntoResponse {
    let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().to_string()).unwrap_or_default();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    Json(json!({
        "Platform": {"Name": "berth netd"},
        "Components": [{"Name": "netd", "Version": env!("CARGO_PKG_VERSION")}],
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": docker::API_VERSION, "MinAPIVersion": docker::MIN_API_VERSION,
        "Os": "linux", "Arch": arch, "KernelVersion": kernel,
    }))
}

/// `filters={"name":["x"],"driver":["bridge"],"type":["custom"],"label":["k=v"],"id":["..."]}`.
fn matches(net: &BridgeNetwork, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        // Labels must all hold; other keys' values are alternatives (Docker's rule).
        let test = |v: &String| match k.as_str() {
            "name" => net.name.contains(v.as_str()),
            "id" => docker::network_id(&net.name).starts_with(v.as_str()),
            "driver" => v == "bridge",
            "type" => (v == "builtin") == (net.name == "bridge"),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => net.labels.get(lk).is_some_and(|x| x == lv),
                None => net.labels.contains_key(v.as_str()),
            },
            "scope" => v == "local",
            _ => false,
        };
        if k == "label" {
            vals.iter().all(test)
        } else {
            vals.iter().any(test)
        }
    })
}

/// Docker's `filters` query (`{"name":["x"]}` or the older `{"name":{"x":true}}`) as
/// key → values; with `allowed`, any other key is refused.
pub fn parse_filters(q: &HashMap<String, String>, allowed: Option<&[&str]>) -> Result<HashMap<String, Vec<String>>> {
    let Some(f) = q.get("filters").filter(|f| !f.is_empty()) else { return Ok(HashMap::new()) };
    let v: Value = serde_json::from_str(f).map_err(|e| bad(format!("invalid filters: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("invalid filters: not an object"))?;
    let mut out = HashMap::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => return Err(bad(format!("invalid filter {k}"))),
        };
        if allowed.is_some_and(|a| !a.contains(&k.as_str())) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
        out.insert(k.clone(), list);
    }
    Ok(out)
}

/// A size parameter (`h`, `w` of a terminal resize); absent is 0.
pub fn query_u16(q: &HashMap<String, String>, key: &str) -> Result<u16> {
    q.get(key).map(|v| v.parse::<u16>().map_err(|_| bad(format!("invalid {key} {v:?}")))).transpose().map(Option::unwrap_or_default)
}

async fn list_networks(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    let filters = parse_filters(&q, Some(&["name", "id", "driver", "type", "label", "scope", "dangling"]))?;
    blocking(move || {
        let running = berth::container::list::attached(&app.paths);
        let mut out = Vec::new();
        for n in app.engine.networks()?.iter().filter(|n| matches(n, &filters)) {
            out.push(docker::network(n, &running, &app.engine.members(&n.name)?));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

async fn inspect_network(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<Value>> {
    blocking(move || {
        let net = find(app.engine.networks()?, &id)?;
        Ok(Json(docker::network(&net, &berth::container::list::attached(&app.paths), &app.engine.members(&net.name)?)))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default, rename = "IPRange")]
    ip_range: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Create {
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default)]
    options: Option<HashMap<String, String>>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

fn create_request(c: Create) -> Result<CreateNetwork> {
    let driver = match netd::network::driver::Driver::by_name(c.driver.as_deref().unwrap_or_default()) {
        Ok(d) => d,
        Err(_) => {
            return Err(bad(format!("plugin {:?} not found: the drivers are bridge, macvlan and ipvlan", c.driver.unwrap_or_default())))
        }
    };
    let configs = c.ipam.and_then(|i| i.config).unwrap_or_default();
    let mut req = CreateNetwork {
        name: c.name,
        labels: c.labels.unwrap_or_default(),
        internal: c.internal,
        ipv6: c.enable_ipv6 == Some(true),
        driver,
        ..Default::default()
    };
    let cidr = |what: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty()).map(|s| s.parse::<ipnetwork::IpNetwork>().map_err(|_| bad(format!("invalid {what} {s:?}")))).transpose()
    };
    let addr = |what: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty()).map(|s| s.parse::<std::net::IpAddr>().map_err(|_| bad(format!("invalid {what} {s:?}")))).transpose()
    };
    // One config per family, as Docker's default IPAM driver takes them.
    for cfg in configs {
        let subnet = cidr("subnet", cfg.subnet)?;
        let gateway = addr("gateway", cfg.gateway)?;
        let ip_range = cidr("IPRange", cfg.ip_range)?;
        let v6 = subnet.is_some_and(|s| s.is_ipv6()) || gateway.is_some_and(|g| g.is_ipv6());
        let taken = if v6 { req.subnet6.is_some() || req.gateway6.is_some() } else { req.subnet.is_some() || req.gateway.is_some() };
        if taken {
            return Err(bad("one IPAM config per address family is supported"));
        }
        if v6 {
            if ip_range.is_some() {
                return Err(bad("IPRange is supported for the IPv4 subnet only"));
            }
            (req.subnet6, req.gateway6) = (subnet, gateway);
        } else {
            (req.subnet, req.gateway, req.ip_range) = (subnet, gateway, ip_range);
        }
    }
    for (k, v) in c.options.unwrap_or_default() {
        req.option(&k, &v)?;
    }
    Ok(req)
}

async fn create_network(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Result<(StatusCode, Json<Value>)> {
    let c: Create = decode(&body)?;
    let req = create_request(c)?;
    blocking(move || {
        let net = app.engine.create_network(&req)?;
        Ok((StatusCode::CREATED, Json(json!({"Id": docker::network_id(&net.name), "Warning": ""}))))
    })
    .await
}

async fn remove_network(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<StatusCode> {
    blocking(move || {
        let net = find(app.engine.networks()?, &id)?;
        if berth::container::list::attached(&app.paths).iter().any(|c| c.network.as_ref().is_some_and(|(n, _)| *n == net.name)) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("error while removing network: network {} has active endpoints", net.name),
            ));
        }
        app.engine.remove_network(&net.name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn prune_networks(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    blocking(move || {
        let deleted = app.engine.prune()?;
        Ok(Json(json!({"NetworksDeleted": deleted})))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Connect {
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointConfig>,
}

/// Docker's `EndpointSettings`, the parts connect honours.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointConfig {
    #[serde(default, rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct EndpointIpam {
    #[serde(default, rename = "IPv4Address")]
    ipv4: Option<String>,
    #[serde(default, rename = "IPv6Address")]
    ipv6: Option<String>,
}

async fn connect(State(app): State<Arc<App>>, Path(id): Path<String>, body: axum::body::Bytes) -> Result<StatusCode> {
    let req: Connect = decode(&body)?;
    let cfg = req.endpoint_config.unwrap_or_default();
    let ip = cfg
        .ipam_config
        .and_then(|i| i.ipv4.filter(|s| !s.is_empty()).or(i.ipv6.filter(|s| !s.is_empty())))
        .map(|s| s.parse::<std::net::IpAddr>().map_err(|_| bad(format!("invalid IP address {s:?}"))))
        .transpose()?;
    let aliases = cfg.aliases.unwrap_or_default();
    blocking(move || {
        let net = find(app.engine.networks()?, &id)?;
        // The container library's connect: a running container gets the next ethN, one
        // not running has the network recorded for its start.
        let join = berth::network::Join { ip, aliases };
        berth::network::connect(&app.paths, &net.name, &req.container, Some(&join)).map_err(crate::containers::error)?;
        Ok(StatusCode::OK)
    })
    .await
}

async fn disconnect(State(app): State<Arc<App>>, Path(id): Path<String>, body: axum::body::Bytes) -> Result<StatusCode> {
    let req: Connect = decode(&body)?;
    blocking(move || {
        let net = find(app.engine.networks()?, &id)?;
        berth::network::connect(&app.paths, &net.name, &req.container, None).map_err(crate::containers::error)?;
        Ok(StatusCode::OK)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_in_range_are_taken_off() {
        assert_eq!(strip_version("/v1.41/containers/json"), Some("/containers/json"));
        assert_eq!(strip_version("/v1.24/_ping"), Some("/_ping"));
        assert_eq!(strip_version("/v1.50/networks/x/connect"), Some("/networks/x/connect"));
        for kept in
            ["/v1.23/_ping", "/v1.51/_ping", "/v1.41", "/v1.x/_ping", "/v1./_ping", "/v2.41/_ping", "/containers/json", "/v1.41x/_ping"]
        {
            assert_eq!(strip_version(kept), None, "{kept}");
        }
        // berth's own routes take no version.
        assert_eq!(strip_version("/v1.41/berth/v1/networks"), None);
        let req =
            axum::extract::Request::builder().uri("/v1.44/containers/json?all=1&filters=%7B%7D").body(axum::body::Body::empty()).unwrap();
        assert_eq!(unversion(req).uri().to_string(), "/containers/json?all=1&filters=%7B%7D");
    }

    #[test]
    fn repeated_query_values_are_decoded() {
        assert_eq!(query_all("t=a%3A1&x=2&t=b+c", "t").ok(), Some(vec!["a:1".to_string(), "b c".to_string()]));
        assert!(query_all("t=%zz", "t").is_err());
        assert!(query_all("t=%2", "t").is_err());
    }

    #[test]
    fn engine_errors_get_dockers_statuses() {
        let cases = [
            (netd::Error::NoSuchNetwork("x".into()), 404),
            (netd::Error::NetworkExists("x".into()), 409),
            (netd::Error::PredefinedNetwork("bridge".into()), 403),
            (netd::Error::NetworkInUse { network: "x".into(), endpoints: 1 }, 403),
            (netd::Error::BadSubnet { subnet: "x".into(), why: "bad".into() }, 400),
            (netd::Error::LockTimeout { path: "/l".into(), waited: std::time::Duration::from_secs(1) }, 503),
            (netd::Error::Daemon { status: 418, message: "x".into() }, 418),
        ];
        for (e, s) in cases {
            assert_eq!(status_of(&e).as_u16(), s, "{e}");
        }
    }
}
