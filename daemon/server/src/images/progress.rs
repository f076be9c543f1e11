//! Docker's JSON progress streams: a writer the image code writes its progress lines to,
//! each sent as one `{"status": ...}` (pull, push, load) or `{"stream": ...}` (build)
//! message; the end is a result or an `errorDetail` message, as dockerd sends them after
//! the stream began. And request bodies (build contexts, image archives) spooled to a
//! scratch file (berth's one scratch guard) under a size limit.

pub use berth::scratch::Scratch;
use std::io::Write;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::api::{ApiError, Result};

/// The sending side of a progress stream.
#[derive(Clone)]
pub struct Progress {
    tx: UnboundedSender<Vec<u8>>,
    key: &'static str,
    buf: Vec<u8>,
}

impl Progress {
    /// A stream whose lines are sent under `key` ("status" or "stream"), and its body.
    pub fn new(key: &'static str) -> (Self, UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = unbounded_channel();
        (Self { tx, key, buf: Vec::new() }, rx)
    }

    /// Sends one message as it is.
    pub fn send(&self, v: Value) {
        let _ = self.tx.send(format!("{v}\r\n").into_bytes());
    }

    /// Ends the stream with the error, as dockerd does once the answer began.
    pub fn fail(&self, e: impl std::fmt::Display) {
        let m = e.to_string();
        self.send(json!({"errorDetail": {"message": m}, "error": m}));
    }
}

impl Write for Progress {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line).to_string();
            if text.trim().is_empty() {
                continue;
            }
            // A build's output keeps its newlines; a status is one line.
            let v = if self.key == "stream" { text } else { text.trim_end().to_string() };
            self.send(json!({ self.key: v }));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The 200 answer streaming `rx`.
pub fn answer(rx: UnboundedReceiver<Vec<u8>>) -> Response {
    let s = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx)) });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(s)).into_response()
}

/// Writes a request body to a new scratch file under `dir`; more than `limit` bytes is
/// a 413 and nothing is kept.
pub async fn spool(body: Body, paths: &berth::paths::Paths, limit: u64) -> Result<Scratch> {
    let internal = |e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("spooling the request body: {e}"));
    let path = Scratch::path(paths, "upload");
    let scratch = Scratch(path.clone());
    let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")))?;
        n += chunk.len() as u64;
        if n > limit {
            return Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over {limit} bytes")));
        }
        f.write_all(&chunk).await.map_err(internal)?;
    }
    f.flush().await.map_err(internal)?;
    Ok(scratch)
}
