//! `GET /containers/{id}/stats`: Docker's stats documents from the container's cgroup —
//! one (`stream=false`, with the CPU use of the last 200 ms in `precpu_stats`, so the
//! docker CLI can show a percentage), or one a second until it stops or the client leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::container::{self, Container};
use serde_json::Value;

use super::{error, with};
use crate::api::{App, Result};

/// A sample, with the one before it as `precpu_stats`.
fn sample(app: &App, c: &Container, before: Option<&Value>) -> Option<Value> {
    let mut s = c.stats(&app.paths).ok()?;
    s["precpu_stats"] = before.map(|b| b["cpu_stats"].clone()).unwrap_or(Value::Null);
    s["preread"] = before.map(|b| b["read"].clone()).unwrap_or(Value::Null);
    Some(s)
}

pub async fn stats(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let stream = !q.get("stream").is_some_and(|v| v == "0" || v == "false");
    let one_shot = super::flag(&q, "one-shot");
    let c = with(app.clone(), id, |app, c| {
        c.stats(&app.paths).map_err(error)?;
        Ok(c)
    })
    .await?;
    if !stream {
        let doc = tokio::task::spawn_blocking(move || {
            let first = sample(&app, &c, None)?;
            if one_shot {
                return Some(first);
            }
            std::thread::sleep(Duration::from_millis(200));
            sample(&app, &c, Some(&first))
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| error(berth::error::Error::State("container stopped".into())))?;
        return Ok(axum::Json(doc).into_response());
    }
    let s = futures::stream::unfold((app, c, None::<Value>), |(app, c, prev)| async move {
        if prev.is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (doc, app, c) = tokio::task::spawn_blocking(move || {
            let alive = container::lookup(&app.paths, &c.id).is_ok_and(|n| n.alive());
            (alive.then(|| sample(&app, &c, prev.as_ref())).flatten(), app, c)
        })
        .await
        .ok()?;
        let doc = doc?;
        Some((Ok::<_, std::io::Error>(format!("{doc}\n").into_bytes()), (app, c, Some(doc))))
    });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(s)).into_response())
}
