//! Images in and out: pull (`POST /images/create`), push, save (`GET /images/get`,
//! `/images/{name}/get`) and load (`POST /images/load`), over berth's registry client and
//! archive code, with Docker's progress streams.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::image;
use serde_json::json;

use super::familiar;
use super::progress::{answer, spool, Progress};
use crate::api::{bad, blocking, App, Result};
use crate::containers::error;

/// The largest image archive `load` takes.
const LOAD_LIMIT: u64 = 8 << 30;

/// Registries spoken to over plain HTTP besides loopback ones (netd's environment).
fn insecure() -> Vec<String> {
    std::env::var("BERTH_INSECURE_REGISTRIES").unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A checked image reference with its tag (or `latest`).
fn reference(name: &str, tag: Option<&String>) -> Result<String> {
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) if !name.contains('@') => format!("{}:{t}", familiar(name)),
        _ => familiar(name),
    };
    image::checked_name(&name).map_err(|why| bad(format!("invalid reference {name:?}: {why}")))?;
    Ok(image::normalize(&name))
}

/// `POST /images/create?fromImage=NAME&tag=TAG`: pulls, streaming progress.
pub async fn pull(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    if q.contains_key("fromSrc") {
        return Err(bad("importing a root filesystem through the API is not supported by berth: use berth import"));
    }
    let from = q.get("fromImage").filter(|f| !f.is_empty()).ok_or_else(|| bad("fromImage is required"))?;
    let name = reference(from, q.get("tag"))?;
    let (mut p, rx) = Progress::new("status");
    tokio::task::spawn_blocking(move || match image::registry::pull(&app.paths, &name, &insecure(), &mut p) {
        Ok(img) => {
            p.send(json!({"status": format!("Status: Downloaded newer image for {name}")}));
            app.events.emit("image", "pull", &img.id, json!({"name": name}));
        }
        Err(e) => p.fail(e),
    });
    Ok(answer(rx))
}

/// `POST /images/{name}/push?tag=TAG`.
pub async fn push(app: Arc<App>, name: &str, q: &HashMap<String, String>) -> Result<Response> {
    let name = reference(name, q.get("tag"))?;
    let img = blocking({
        let (app, name) = (app.clone(), name.clone());
        move || image::get(&app.paths, &name).map_err(error)
    })
    .await?;
    let (mut p, rx) = Progress::new("status");
    tokio::task::spawn_blocking(move || match image::registry::push(&app.paths, &name, &insecure(), &mut p) {
        Ok(()) => {
            p.send(json!({"status": format!("{name}: pushed"), "aux": {"Tag": name.rsplit_once(':').map(|x| x.1).unwrap_or("latest")}}));
            app.events.emit("image", "push", &img.id, json!({"name": name}));
        }
        Err(e) => p.fail(e),
    });
    Ok(answer(rx))
}

/// A pipe the archive writer fills from a blocking thread and the body drains.
struct Pipe(tokio::sync::mpsc::Sender<Vec<u8>>);

impl std::io::Write for Pipe {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // A client that left ends the save: the writer sees a broken pipe.
        self.0.blocking_send(data.to_vec()).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The images as one `docker save` archive, streamed.
pub async fn save(app: Arc<App>, names: Vec<String>) -> Result<Response> {
    if names.is_empty() {
        return Err(bad("no image named"));
    }
    let images = blocking({
        let app = app.clone();
        move || names.iter().map(|n| image::get(&app.paths, &familiar(n)).map_err(error)).collect::<Result<Vec<_>>>()
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 << 10, Pipe(tx));
        if let Err(e) = image::save::save(&app.paths, &images, w) {
            tracing::warn!(error = %e, "image save ended early");
        }
    });
    let s = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx)) });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/x-tar")], Body::from_stream(s)).into_response())
}

/// `GET /images/get?names=A&names=B`.
pub async fn save_many(State(app): State<Arc<App>>, req: Request) -> Result<Response> {
    let names = crate::api::query_all(req.uri().query().unwrap_or(""), "names")?;
    save(app, names).await
}

/// `POST /images/load`: the archive (docker save or OCI layout) is spooled, then loaded.
pub async fn load(State(app): State<Arc<App>>, req: Request) -> Result<Response> {
    let scratch = spool(req.into_body(), &app.paths, LOAD_LIMIT).await?;
    let (p, rx) = Progress::new("stream");
    tokio::task::spawn_blocking(move || {
        match image::load(&app.paths, &scratch.0) {
            Ok(images) => {
                for img in images {
                    p.send(json!({"stream": format!("Loaded image: {}\n", img.name)}));
                    app.events.emit("image", "load", &img.id, json!({"name": img.name}));
                }
            }
            Err(e) => p.fail(e),
        }
        drop(scratch);
    });
    Ok(answer(rx))
}
