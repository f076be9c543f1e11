//! The Docker Engine API's container endpoints over berth's container library — the same
//! calls `berth run`, `stop`, `rm`, `ps` and `inspect` make, so a container made by one is
//! seen, stopped and removed by the other.

mod attach;
mod create;
pub mod exec;
mod logs;
mod stats;
mod top;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth::container::{self, list::Filters, Container};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::api::{blocking, ApiError, App, Result};

/// The routes (mounted with and without a version prefix).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create::create))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/attach", post(attach::attach))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/containers/{id}/top", get(top::top))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/pause", post(|State(app): State<Arc<App>>, Path(id): Path<String>| freeze(app, id, true)))
        .route("/containers/{id}/unpause", post(|State(app): State<Arc<App>>, Path(id): Path<String>| freeze(app, id, false)))
        .route("/containers/{id}", axum::routing::delete(remove))
}

/// The HTTP status and Docker's wording for a runtime error.
pub fn error(e: berth::error::Error) -> ApiError {
    use berth::error::Error as E;
    let status = match &e {
        E::NoContainer(_) | E::NoImage(_) | E::NoNetwork(_) => StatusCode::NOT_FOUND,
        E::NameInUse(_) | E::Running(_) | E::State(_) | E::ImageInUse { .. } => StatusCode::CONFLICT,
        E::Flag { .. } | E::Conflict(_) | E::Ambiguous(_) | E::Security(_) => StatusCode::BAD_REQUEST,
        E::Start { code: 126 | 127, .. } => StatusCode::BAD_REQUEST,
        E::Net(n) => crate::api::status_of(n),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The docker CLI pulls on "No such image: NAME" and matches "No such container".
    let msg = match e {
        E::NoContainer(n) => format!("No such container: {n}"),
        E::NoImage(n) => format!("No such image: {n}"),
        e => e.to_string(),
    };
    ApiError(status, msg)
}

/// A boolean query parameter as Docker reads one: `1`, `true`, `True`.
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

/// Runs `f` on the container named by `id` off the async thread.
async fn with<T: Send + 'static>(app: Arc<App>, id: String, f: impl FnOnce(&App, Container) -> Result<T> + Send + 'static) -> Result<T> {
    blocking(move || {
        let c = container::lookup(&app.paths, &id).map_err(error)?;
        f(&app, c)
    })
    .await
}

async fn list(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    let filters = match q.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => Filters::from_json(f).map_err(error)?,
        None => Filters::default(),
    };
    let all = flag(&q, "all");
    let limit: Option<usize> = q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    blocking(move || {
        let mut cs = container::list::list(&app.paths, all || limit.is_some(), &filters).map_err(error)?;
        if let Some(l) = limit {
            cs.truncate(l);
        }
        Ok(Json(Value::Array(cs.iter().map(|c| c.summary(&app.paths)).collect())))
    })
    .await
}

async fn inspect(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<Value>> {
    with(app, id, |app, c| Ok(Json(c.inspect(&app.paths)))).await
}

/// One monitor kept ready ([`berth::container::Standby`]): a start hands its container to
/// it instead of spawning one, and the next is made in the background.
#[derive(Debug, Default)]
pub struct StandbySlot {
    ready: std::sync::Mutex<Option<berth::container::Standby>>,
    /// A refill is under way.
    filling: std::sync::atomic::AtomicBool,
}

impl StandbySlot {
    /// Makes the next one in the background, unless one is ready or being made.
    pub fn refill(self: &Arc<Self>, paths: &berth::paths::Paths, berth: &std::path::Path) {
        use std::sync::atomic::Ordering;
        if self.ready.lock().unwrap_or_else(|e| e.into_inner()).is_some() || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let (slot, paths, berth) = (self.clone(), paths.clone(), berth.to_path_buf());
        std::thread::spawn(move || {
            match berth::container::Standby::spawn(&paths, &berth) {
                Ok(s) => {
                    tracing::debug!(pid = s.pid, "monitor kept ready");
                    *slot.ready.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                }
                Err(e) => tracing::warn!(error = %e, "cannot keep a monitor ready"),
            }
            slot.filling.store(false, Ordering::Release);
        });
    }

    /// Starts `c` by the monitor kept ready, if there is one, then makes the next (after:
    /// spawning it while the container starts would take the CPU the start needs).
    fn start(self: &Arc<Self>, paths: &berth::paths::Paths, berth: &std::path::Path, c: &container::Container) -> berth::error::Result<()> {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner()).take();
        let started = c.start_with(paths, berth, ready);
        self.refill(paths, berth);
        started
    }
}

/// 204, or 304 when there was nothing to do, as dockerd answers.
fn done(changed: bool) -> Response {
    if changed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    }
}

async fn start(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response> {
    with(app, id, |app, c| {
        if c.alive() {
            return Ok(done(false));
        }
        if let Err(e) = app.standby.start(&app.paths, &app.berth, &c) {
            // As dockerd: an auto-remove container whose start failed is removed.
            if c.spec.auto_remove {
                c.discard(&app.paths);
                app.events.container(&c, "destroy");
            }
            return Err(error(e));
        }
        let c = container::lookup(&app.paths, &c.id).unwrap_or(c);
        app.events.container(&c, "start");
        Ok(done(true))
    })
    .await
}

/// `t` (or `timeout`, API ≥ 1.42 spells both), seconds before SIGKILL; Docker's 10 by default.
fn grace(q: &HashMap<String, String>) -> Result<u64> {
    match q.get("t").or_else(|| q.get("timeout")) {
        None => Ok(10),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => Ok(0),
            Ok(n) => Ok(n as u64),
            Err(_) => Err(crate::api::bad(format!("invalid timeout {t:?}"))),
        },
    }
}

async fn stop(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let secs = grace(&q)?;
    with(app, id, move |app, c| {
        // Running as recorded (its exit may be being reaped) or restarting: stopped, 204.
        // Otherwise 304, as dockerd — but marked stopped by hand all the same, as the
        // CLI's stop does, so a restart by policy under way gives up.
        let up = c.state.status == container::Status::Running || c.restarting();
        c.stop(&app.paths, secs).map_err(error)?;
        if !up {
            return Ok(done(false));
        }
        app.events.container(&c, "stop");
        Ok(done(true))
    })
    .await
}

async fn restart(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let secs = grace(&q)?;
    with(app, id, move |app, c| {
        c.restart(&app.paths, secs, &app.berth).map_err(error)?;
        let c = container::lookup(&app.paths, &c.id).unwrap_or(c);
        app.events.container(&c, "start");
        app.events.container(&c, "restart");
        Ok(done(true))
    })
    .await
}

async fn kill(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let sig = container::config::parse_signal(q.get("signal").map(String::as_str).unwrap_or("KILL")).map_err(error)?;
    with(app, id, move |app, c| {
        c.kill(&app.paths, sig).map_err(error)?;
        app.events.container(&c, "kill");
        Ok(done(true))
    })
    .await
}

/// Answers at once (clients wait for the headers before they start the container) and
/// sends `{"StatusCode": N}` when the condition is met.
async fn wait(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let condition = q.get("condition").filter(|c| !c.is_empty()).cloned().unwrap_or_else(|| "not-running".into());
    if !["not-running", "next-exit", "removed"].contains(&condition.as_str()) {
        return Err(crate::api::bad(format!("invalid condition: {condition:?}")));
    }
    let c = with(app.clone(), id, |_, c| Ok(c)).await?;
    // Set when the body is dropped (the client left): the waiting thread then stops.
    let left = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gone = Left(left.clone());
    let result = async move {
        let _gone = gone;
        let v = tokio::task::spawn_blocking(move || wait_for(&app, c, &condition, &left)).await.ok()?;
        Some((Ok::<_, std::io::Error>(format!("{v}\n").into_bytes()), ()))
    };
    let body = axum::body::Body::from_stream(futures::stream::once(result).filter_map(|x| async move { x.map(|(b, ())| b) }));
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Sets its flag when dropped.
struct Left(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Blocks until `condition` holds for `c` (or the client left); the answer's JSON.
fn wait_for(app: &App, c: Container, condition: &str, left: &std::sync::atomic::AtomicBool) -> Value {
    let failed = |e: berth::error::Error| json!({"StatusCode": -1, "Error": {"Message": e.to_string()}});
    let before = c.state.started_at;
    let mut last = c.clone();
    while !left.load(std::sync::atomic::Ordering::Relaxed) {
        let now = match container::lookup(&app.paths, &c.id) {
            Ok(n) => n,
            // Removed (`--rm`, `rm -f`): it has exited, with the code its monitor kept.
            Err(berth::error::Error::NoContainer(_)) => {
                last.state.exit_code = container::removed_exit(&app.paths, &c.id).or(last.state.exit_code);
                break;
            }
            Err(e) => return failed(e),
        };
        let running = now.busy();
        last = now;
        let done = match condition {
            // next-exit: the exit of the run after this request.
            "next-exit" => last.exited_since(before),
            "removed" => false,
            _ => !running,
        };
        if done {
            break;
        }
        if running {
            // Until the exit, the monitor's end is waited for rather than polled.
            if let Err(e) = last.wait(&app.paths, Some(Duration::from_millis(500))) {
                return failed(e);
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    json!({"StatusCode": last.state.exit_code.unwrap_or(0), "Error": null})
}

/// `POST /containers/{id}/resize?h=ROWS&w=COLS`: the terminal of a container with `-t`.
async fn resize(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let (h, w) = (crate::api::query_u16(&q, "h")?, crate::api::query_u16(&q, "w")?);
    with(app, id, move |app, c| {
        if !c.spec.tty {
            return Err(ApiError(StatusCode::BAD_REQUEST, format!("container {} has no terminal (-t)", c.name)));
        }
        let t = c.tty(&app.paths).map_err(|_| ApiError(StatusCode::CONFLICT, format!("container {} is not running", c.id)))?;
        berth::container::tty::resize(&t, h, w).map_err(error)?;
        Ok(StatusCode::OK.into_response())
    })
    .await
}

/// `pause` (`on`) and `unpause`: the cgroup freezer.
async fn freeze(app: Arc<App>, id: String, on: bool) -> Result<Response> {
    with(app, id, move |app, c| {
        if on { c.pause() } else { c.unpause() }.map_err(error)?;
        app.events.container(&c, if on { "pause" } else { "unpause" });
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn rename(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let name = q.get("name").cloned().unwrap_or_default();
    with(app, id, move |app, c| {
        container::rename(&app.paths, &c.id, &name).map_err(error)?;
        app.events.container(&c, "rename");
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn remove(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let (force, volumes) = (flag(&q, "force"), flag(&q, "v"));
    with(app, id, move |app, c| {
        c.remove(&app.paths, force, volumes).map_err(error)?;
        app.events.container(&c, "destroy");
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn prune(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    blocking(move || {
        let mut deleted = Vec::new();
        for c in container::list::list(&app.paths, true, &Filters::default()).map_err(error)? {
            if c.effective_status() != container::Status::Running && !c.monitor_alive() {
                c.remove(&app.paths, false, false).map_err(error)?;
                app.events.container(&c, "destroy");
                deleted.push(c.id);
            }
        }
        Ok(Json(json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0})))
    })
    .await
}
