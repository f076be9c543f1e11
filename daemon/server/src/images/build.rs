//! `POST /build`: the uploaded context (a tar, maybe gzipped) is spooled and unpacked
//! beneath a scratch directory — no entry may leave it, nor the Dockerfile named in
//! `dockerfile` — and built by berth's builder, whose output streams as `{"stream": ...}`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::response::Response;
use berth::image;
use serde_json::json;

use super::progress::{answer, spool, Progress, Scratch};
use crate::api::{bad, App, Result};

/// The largest build context taken.
const CONTEXT_LIMIT: u64 = 2 << 30;

/// The query's build options, checked before the body is read.
fn options(q: &HashMap<String, String>, tags: Vec<String>) -> Result<(Option<PathBuf>, BTreeMap<String, String>, bool)> {
    let file = match q.get("dockerfile").filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => {
            let p = PathBuf::from(f);
            // The Dockerfile is a file of the context: no absolute path, no way up.
            if p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)) {
                return Err(bad(format!("the Dockerfile {f:?} is outside the build context")));
            }
            Some(p)
        }
    };
    for t in &tags {
        image::checked_name(t).map_err(|why| bad(format!("invalid tag {t:?}: {why}")))?;
    }
    let args: BTreeMap<String, String> = match q.get("buildargs").filter(|a| !a.is_empty()) {
        Some(a) => {
            let m: BTreeMap<String, Option<String>> = serde_json::from_str(a).map_err(|e| bad(format!("invalid buildargs: {e}")))?;
            m.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
        }
        None => BTreeMap::new(),
    };
    for (what, v) in [("remote", "remote"), ("platform", "platform"), ("target", "target")] {
        if q.get(v).is_some_and(|x| !x.is_empty()) {
            return Err(bad(format!("build option {what} is not supported by berth")));
        }
    }
    let no_cache = q.get("nocache").is_some_and(|v| v == "1" || v == "true");
    Ok((file, args, no_cache))
}

pub async fn build(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>, req: Request) -> Result<Response> {
    // `t` may repeat: read every one from the raw query.
    let tags: Vec<String> = crate::api::query_all(req.uri().query().unwrap_or(""), "t")?
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| image::normalize(&super::familiar(&t)))
        .collect();
    let (file, build_args, no_cache) = options(&q, tags.clone())?;
    let named = tags.clone();
    let archive = spool(req.into_body(), &app.paths, CONTEXT_LIMIT).await?;
    let (mut p, rx) = Progress::new("stream");
    tokio::task::spawn_blocking(move || {
        let ctx = Scratch(Scratch::path(&app.paths, "context"));
        let res = image::unpack::unpack_layer(&archive.0, &ctx.0, &mut |_| {}).and_then(|()| {
            drop(archive);
            let o = image::build::Options { context: ctx.0.clone(), file: file.map(|f| ctx.0.join(f)), tags, build_args, no_cache };
            image::build::build(&app.paths, &o, &mut p)
        });
        match res {
            Ok(img) => {
                p.send(json!({"aux": {"ID": img.id}}));
                p.send(json!({"stream": format!("Successfully built {}\n", &img.id.trim_start_matches("sha256:")[..12])}));
                for t in &named {
                    p.send(json!({"stream": format!("Successfully tagged {t}\n")}));
                }
                app.events.emit("image", "build", &img.id, json!({"name": img.name}));
            }
            Err(e) => p.fail(e),
        }
    });
    Ok(answer(rx))
}
