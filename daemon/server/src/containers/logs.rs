//! `GET /containers/{id}/logs`: the container's output as Docker's stream — 8-byte frame
//! headers (stream, 0, 0, 0, big-endian length) unless it has a TTY — with `tail` and
//! `follow`. berth keeps one log of the container's output, so every frame is stdout's.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::container::{self, output::Until};

use super::{error, flag};
use crate::api::{bad, blocking, App, Result};

/// One frame of the multiplexed stream (stdout), or the bytes as they are with a TTY.
pub(super) fn frame(data: &[u8], tty: bool) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The offset of the last `n` lines of `data`.
fn tail_start(data: &[u8], n: usize) -> usize {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    if n == 0 {
        data.len()
    } else {
        0
    }
}

pub async fn logs(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    if !flag(&q, "stdout") && !flag(&q, "stderr") {
        return Err(bad("you must choose at least one stream"));
    }
    if flag(&q, "timestamps") {
        return Err(bad("berth does not record log timestamps"));
    }
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") | Some("") => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| bad(format!("invalid tail {t:?}")))?),
    };
    let follow = flag(&q, "follow");
    let (first, follower, tty) = blocking(move || {
        let c = container::lookup(&app.paths, &id).map_err(error)?;
        let mut file = c.log(&app.paths).map_err(error)?;
        let mut data = Vec::new();
        let _ = file.read_to_end(&mut data);
        let from = tail.map(|n| tail_start(&data, n)).unwrap_or(0);
        let first = if data.len() > from { frame(&data[from..], c.spec.tty) } else { Vec::new() };
        let follower = if follow { Some(c.follow(&app.paths, Some(data.len() as u64), Until::NotRunning).map_err(error)?) } else { None };
        Ok((first, follower, c.spec.tty))
    })
    .await?;
    let rest = futures::stream::unfold(follower, move |f| async move {
        let mut f = f?;
        let (chunk, f) = tokio::task::spawn_blocking(move || (f.next_chunk(), f)).await.ok()?;
        chunk.map(|c| (Ok::<_, std::io::Error>(frame(&c, tty)), Some(f)))
    });
    let head = futures::stream::iter((!first.is_empty()).then_some(Ok::<_, std::io::Error>(first)));
    let body = Body::from_stream(futures::StreamExt::chain(head, rest));
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_length() {
        assert_eq!(frame(b"hi\n", false), vec![1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
        assert_eq!(frame(b"hi\n", true), b"hi\n".to_vec());
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        let d = b"a\nb\nc\n";
        assert_eq!(&d[tail_start(d, 2)..], b"b\nc\n");
        assert_eq!(&d[tail_start(d, 9)..], d);
        assert_eq!(tail_start(d, 0), d.len());
    }
}
