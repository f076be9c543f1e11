//! `POST /containers/{id}/attach`: the connection is taken over (HTTP upgrade to a raw
//! stream, as dockerd does) — the container's output goes to the client framed as Docker's
//! multiplexed stream (raw with a TTY), the client's bytes go to its stdin. `docker run`
//! without `-d` attaches before it starts the container, so nothing is missed.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::container::output::Until;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{error, flag, logs::Select, with};
use crate::api::{bad, App, Result};

pub async fn attach(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mut req: Request,
) -> Result<Response> {
    if !flag(&q, "stream") && !flag(&q, "logs") {
        return Err(bad("attach needs stream=1 or logs=1"));
    }
    let want_in = flag(&q, "stdin");
    let c = with(app.clone(), id, |_, c| Ok(c)).await?;
    if want_in && !c.spec.interactive {
        return Err(bad(format!("container {} was not created with an open stdin (-i)", c.name)));
    }
    let paths = app.paths.clone();
    let (follower, stdin) = {
        let c = c.clone();
        let from = flag(&q, "logs").then_some(0);
        let until = if c.alive() { Until::NotRunning } else { Until::NextExit(c.state.started_at) };
        tokio::task::spawn_blocking(move || {
            let f = c.follow(&paths, from, until)?;
            // With a terminal, input goes to the pty (lent by the monitor once it runs).
            let s = if want_in && !c.spec.tty { Some(c.stdin(&paths)?) } else { None };
            Ok::<_, berth::error::Error>((f, s))
        })
        .await
        .map_err(|e| crate::api::ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(error)?
    };
    let tty = c.spec.tty;
    let sel = Select { stdout: flag(&q, "stdout"), stderr: flag(&q, "stderr"), timestamps: false, since: 0, until: None, tty };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        // Client → stdin; its end of input closes stdin (after PID 1 opened it: the FIFO
        // keeps what was written until then).
        let input = async move {
            if want_in && c.spec.tty {
                return to_terminal(&app, &c, &mut rd).await;
            }
            let Some(mut fifo) = stdin else { return };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let data = buf[..n].to_vec();
                        let r = tokio::task::spawn_blocking(move || fifo.write_all(&data).map(|_| fifo)).await;
                        match r {
                            Ok(Ok(f)) => fifo = f,
                            _ => return,
                        }
                    }
                }
            }
            let _ = tokio::task::spawn_blocking(move || {
                // PID 1 opens stdin when it starts: held until then (or until it is gone).
                let started = |n: &berth::container::Container| n.state.status != berth::container::Status::Created;
                for _ in 0..3000 {
                    if berth::container::lookup(&app.paths, &c.id).map_or(true, |n| started(&n)) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                drop(fifo);
            })
            .await;
        };
        let output = async move {
            let mut f = follower;
            loop {
                let (entries, back) = match tokio::task::spawn_blocking(move || (f.next_entries(), f)).await {
                    Ok(x) => x,
                    Err(_) => return,
                };
                f = back;
                let Some(entries) = entries else { break };
                let frames = sel.frames(&entries);
                if !frames.is_empty() && wr.write_all(&frames).await.is_err() {
                    // The client left: the container runs on.
                    return;
                }
            }
            let _ = wr.shutdown().await;
        };
        tokio::join!(input, output);
    });
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "Upgrade"), (header::UPGRADE, "tcp"), (header::CONTENT_TYPE, ct)],
        Body::empty(),
    )
        .into_response())
}

/// Copies the client's bytes into the container's terminal, which its monitor lends once
/// PID 1 runs (attach comes before start): what arrives before is held until then.
async fn to_terminal(app: &Arc<App>, c: &berth::container::Container, rd: &mut (impl tokio::io::AsyncRead + Unpin)) {
    let (paths, c2) = (app.paths.clone(), c.clone());
    let tty = tokio::task::spawn_blocking(move || {
        for _ in 0..3000 {
            if let Ok(t) = c2.tty(&paths) {
                return Some(std::fs::File::from(t));
            }
            match berth::container::lookup(&paths, &c2.id) {
                Ok(n) if n.exited_since(c2.state.started_at) => return None,
                Err(_) => return None,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(mut tty) = tty else { return };
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = rd.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let data = buf[..n].to_vec();
        match tokio::task::spawn_blocking(move || tty.write_all(&data).map(|_| tty)).await {
            Ok(Ok(t)) => tty = t,
            _ => return,
        }
    }
}
