//! `GET /containers/{id}/top`: the container's processes (its cgroup's, by PID 1's
//! descendants) in the columns `ps -ef` prints, as dockerd answers by default.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::with;
use crate::api::{ApiError, App, Result};

/// (pid, ppid, uid, command line) of every process.
fn processes() -> Vec<(i32, i32, u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
            .unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push((pid, ppid, uid, cmd));
    }
    out
}

pub async fn top(State(app): State<Arc<App>>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    if q.get("ps_args").is_some_and(|a| !a.is_empty() && a != "-ef") {
        return Err(crate::api::bad("berth's top prints the columns of ps -ef only"));
    }
    with(app, id, |_, c| {
        let pid = c
            .state
            .pid
            .filter(|_| c.alive())
            .ok_or_else(|| ApiError(axum::http::StatusCode::CONFLICT, format!("container {} is not running", c.id)))?;
        let all = processes();
        let mut tree = vec![pid];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
            i += 1;
        }
        let rows: Vec<Value> = all
            .iter()
            .filter(|p| tree.contains(&p.0))
            .map(|(pid, ppid, uid, cmd)| json!([uid.to_string(), pid.to_string(), ppid.to_string(), "0", "", "?", "00:00:00", cmd]))
            .collect();
        Ok(Json(json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows})))
    })
    .await
}
