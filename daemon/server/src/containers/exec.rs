//! Exec instances: `POST /containers/{id}/exec` records one, `POST /exec/{id}/start` runs
//! it as `berth exec` (dockerd runs `runc exec` the same way) with its output framed on
//! the connection, `GET /exec/{id}/json` tells its exit code.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{logs::frame, with};
use crate::api::{bad, decode, ApiError, App, Result};

/// One exec instance.
#[derive(Debug, Clone)]
struct Instance {
    container: String,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: String,
    stdin: bool,
    tty: bool,
    running: bool,
    pid: u32,
    exit_code: Option<i32>,
    /// The pty's leader end while it runs with a terminal (for resize).
    leader: Option<Arc<std::os::fd::OwnedFd>>,
}

/// The exec instances of this daemon's life, by ID.
#[derive(Default)]
pub struct Execs(Mutex<HashMap<String, Instance>>);

impl Execs {
    fn get(&self, id: &str) -> Result<Instance> {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("No such exec instance: {id}")))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Instance)) {
        if let Some(i) = self.0.lock().ok().as_mut().and_then(|m| m.get_mut(id)) {
            f(i);
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: bool,
    tty: bool,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: String,
    user: String,
    privileged: bool,
}

pub async fn create(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Result<(StatusCode, Json<Value>)> {
    let b: CreateBody = decode(&body)?;
    let cmd = b.cmd.filter(|c| !c.is_empty()).ok_or_else(|| bad("no exec command specified"))?;
    if b.privileged || !b.user.is_empty() {
        return Err(bad("berth runs exec as the container's user and confinement: User and Privileged are not supported"));
    }
    if cmd.iter().chain(b.env.iter().flatten()).any(|a| a.contains('\0')) || b.env.iter().flatten().any(|e| !e.contains('=')) {
        return Err(bad("invalid exec command or environment"));
    }
    let c = with(app.clone(), id, |_, c| Ok(c)).await?;
    if !c.alive() {
        return Err(ApiError(StatusCode::CONFLICT, format!("container {} is not running", c.id)));
    }
    let exec_id = berth::container::id::random(32);
    let inst = Instance {
        container: c.id,
        cmd,
        env: b.env.unwrap_or_default(),
        workdir: b.working_dir,
        stdin: b.attach_stdin,
        tty: b.tty,
        running: false,
        pid: 0,
        exit_code: None,
        leader: None,
    };
    app.execs
        .0
        .lock()
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "exec table poisoned".into()))?
        .insert(exec_id.clone(), inst);
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
}

/// `berth exec` for the instance, its stdio piped; with a terminal, made in the container
/// and sent to `console`.
fn command(app: &App, i: &Instance, console: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&app.berth);
    cmd.arg("--root").arg(&app.paths.lib).arg("--run-root").arg(&app.paths.run).arg("exec");
    if i.tty {
        cmd.arg("-t").arg("--console-socket").arg(console);
    }
    for e in &i.env {
        cmd.arg("-e").arg(e);
    }
    if !i.workdir.is_empty() {
        cmd.arg("-w").arg(&i.workdir);
    }
    cmd.arg(&i.container).arg("--").args(&i.cmd);
    cmd.stdin(if i.stdin { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.kill_on_drop(false);
    cmd
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// A started `berth exec` and its ends.
struct Spawned {
    child: tokio::process::Child,
    out: Option<Reader>,
    err: Option<Reader>,
    stdin: Option<Writer>,
    leader: Option<std::os::fd::OwnedFd>,
}

/// Starts `berth exec` for the instance: on pipes, or with a terminal (`-t`) that it makes
/// in the container (the command's controlling terminal, named in its devpts) and sends
/// back over a console socket; the leader is returned and carries input and output.
/// berth's own stderr stays a pipe, so why an exec could not start reaches the client.
async fn spawn(app: &App, exec_id: &str, i: &Instance) -> std::io::Result<Spawned> {
    let sock = app.paths.run.join(format!("exec-{exec_id}.sock"));
    let mut cmd = command(app, i, &sock);
    if !i.tty {
        let mut child = cmd.spawn()?;
        let out = child.stdout.take().map(|o| Box::new(o) as Reader);
        let err = child.stderr.take().map(|e| Box::new(e) as Reader);
        let stdin = child.stdin.take().map(|w| Box::new(w) as Writer);
        return Ok(Spawned { child, out, err, stdin, leader: None });
    }
    let _ = std::fs::remove_file(&sock);
    let listener = tokio::net::UnixListener::bind(&sock)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let spawned = cmd.spawn();
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&sock);
            return Err(e);
        }
    };
    let err = child.stderr.take().map(|e| Box::new(e) as Reader);
    // The connection, or none if berth exec ended first (it could not start).
    let conn = tokio::select! {
        c = listener.accept() => c.ok().map(|(c, _)| c),
        _ = child.wait() => None,
    };
    let _ = std::fs::remove_file(&sock);
    let leader = match conn.map(|c| c.into_std()) {
        Some(Ok(c)) => {
            c.set_nonblocking(false)?;
            tokio::task::spawn_blocking(move || berth::process::console::receive(std::os::fd::AsRawFd::as_raw_fd(&c)))
                .await
                .map_err(std::io::Error::other)??
        }
        _ => None,
    };
    let Some(leader) = leader else { return Ok(Spawned { child, out: None, err, stdin: None, leader: None }) };
    let out = tokio::fs::File::from_std(std::fs::File::from(leader.try_clone()?));
    let input = tokio::fs::File::from_std(std::fs::File::from(leader.try_clone()?));
    Ok(Spawned { child, out: Some(Box::new(out)), err, stdin: i.stdin.then(|| Box::new(input) as Writer), leader: Some(leader) })
}

/// Copies one output pipe into frames of `stream` (1 stdout, 2 stderr) on `tx`.
async fn pump(mut r: impl AsyncRead + Unpin, stream: u8, tty: bool, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if tx.send(frame(stream, &buf[..n], tty)).await.is_err() {
            break;
        }
    }
}

pub async fn start(State(app): State<Arc<App>>, Path(id): Path<String>, mut req: Request) -> Result<Response> {
    let upgrade_asked = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = upgrade_asked.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.map_err(|e| bad(e.to_string()))?;
    let b: StartBody = if body.is_empty() { StartBody::default() } else { decode(&body)? };
    let inst = app.execs.get(&id)?;
    if inst.running || inst.exit_code.is_some() {
        return Err(ApiError(StatusCode::CONFLICT, format!("exec {id} has already been started")));
    }
    let Spawned { mut child, out, err, stdin, leader } =
        spawn(&app, &id, &inst).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot run berth exec: {e}")))?;
    let leader = leader.map(Arc::new);
    app.execs.update(&id, |i| {
        i.running = true;
        i.pid = child.id().unwrap_or(0);
        i.leader = leader.clone();
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let tty = inst.tty;
    let finish = {
        let app = app.clone();
        let id = id.clone();
        async move {
            let (a, b) = (out.map(|o| pump(o, 1, tty, tx.clone())), err.map(|e| pump(e, 2, tty, tx.clone())));
            tokio::join!(
                async {
                    if let Some(a) = a {
                        a.await
                    }
                },
                async {
                    if let Some(b) = b {
                        b.await
                    }
                }
            );
            let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(126);
            app.execs.update(&id, |i| {
                i.running = false;
                i.exit_code = Some(code);
                i.leader = None;
            });
            // The stream ends after the exit code is recorded: clients ask for it then.
            drop(tx);
        }
    };
    tokio::spawn(finish);
    if b.detach {
        // Output read and dropped so the command never blocks on a full pipe.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        return Ok(StatusCode::OK.into_response());
    }
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    match on_upgrade {
        Some(up) => {
            tokio::spawn(async move {
                let Ok(io) = up.await else { return };
                let (mut rd, mut wr) = tokio::io::split(hyper_util::rt::TokioIo::new(io));
                let input = async move {
                    if let Some(mut si) = stdin {
                        let _ = tokio::io::copy(&mut rd, &mut si).await;
                        let _ = si.shutdown().await;
                    }
                };
                let output = async move {
                    while let Some(f) = rx.recv().await {
                        if wr.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                    let _ = AsyncWriteExt::shutdown(&mut wr).await;
                };
                tokio::join!(input, output);
            });
            Ok((
                StatusCode::SWITCHING_PROTOCOLS,
                [(header::CONNECTION, "Upgrade"), (header::UPGRADE, "tcp"), (header::CONTENT_TYPE, ct)],
                Body::empty(),
            )
                .into_response())
        }
        None => {
            drop(stdin);
            let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (Ok::<_, std::io::Error>(f), rx)) });
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
        }
    }
}

pub async fn inspect(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<Value>> {
    let i = app.execs.get(&id)?;
    Ok(Json(json!({
        "ID": id, "ContainerID": i.container, "Running": i.running, "ExitCode": i.exit_code, "Pid": i.pid,
        "OpenStdin": i.stdin, "OpenStdout": true, "OpenStderr": true, "CanRemove": false, "DetachKeys": "",
        "ProcessConfig": {"tty": i.tty, "entrypoint": i.cmd.first(), "arguments": i.cmd.get(1..).unwrap_or_default(), "privileged": false, "user": ""},
    })))
}

/// `POST /exec/{id}/resize?h=ROWS&w=COLS`: its terminal's size, while it runs.
pub async fn resize(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Result<StatusCode> {
    let i = app.execs.get(&id)?;
    let (h, w) = (crate::api::query_u16(&q, "h")?, crate::api::query_u16(&q, "w")?);
    match &i.leader {
        Some(t) => berth::container::tty::resize(t, h, w).map(|()| StatusCode::OK).map_err(super::error),
        None if !i.tty => Err(bad(format!("exec {id} has no terminal"))),
        None => Ok(StatusCode::OK),
    }
}
