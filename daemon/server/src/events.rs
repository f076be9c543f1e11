//! `GET /events`: what the API did to containers (and later images, volumes, networks),
//! as Docker's event objects — the recent past from a bounded history (`since`), then
//! live until `until` or the client leaves.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::api::{bad, App, Result};

/// How many past events `since` can reach.
const HISTORY: usize = 1024;

/// What the bus has said of one container: each run's start and die once, whoever
/// started it (the API, berth's CLI) and whoever saw it end (the monitor reaps it).
#[derive(Debug, Clone)]
struct Seen {
    container: berth::container::Container,
    started_at: Option<u64>,
    died: bool,
}

/// The event bus.
pub struct Events {
    history: Mutex<VecDeque<Value>>,
    live: broadcast::Sender<Value>,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Default for Events {
    fn default() -> Self {
        Self { history: Mutex::new(VecDeque::new()), live: broadcast::channel(256).0, seen: Mutex::new(HashMap::new()) }
    }
}

impl Events {
    /// Publishes one event.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: Value) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut e = json!({
            "Type": kind, "Action": action, "Actor": {"ID": id, "Attributes": attributes},
            "scope": "local", "time": now.as_secs(), "timeNano": now.as_nanos() as u64,
        });
        if kind == "container" {
            e["status"] = json!(action);
            e["id"] = json!(id);
            e["from"] = e["Actor"]["Attributes"]["image"].clone();
        }
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.live.send(e);
    }

    fn say(&self, c: &berth::container::Container, action: &str, extra: &[(&str, Value)]) {
        let mut attrs = serde_json::Map::new();
        for (k, v) in &c.spec.labels {
            attrs.insert(k.clone(), json!(v));
        }
        attrs.insert("image".into(), json!(c.spec.image));
        attrs.insert("name".into(), json!(c.name));
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.emit("container", action, &c.id, Value::Object(attrs));
    }

    /// A container event, with its image, name and labels as attributes. The lifecycle
    /// events (create, start, die, destroy) are kept in step with what [`watch`]
    /// sees, so each is said once.
    pub fn container(&self, c: &berth::container::Container, action: &str) {
        let Ok(mut seen) = self.seen.lock() else { return };
        match action {
            "create" => {
                seen.insert(c.id.clone(), Seen { container: c.clone(), started_at: None, died: false });
            }
            "start" | "restart" => {
                if let Some(s) = seen.get_mut(&c.id) {
                    s.started_at = c.state.started_at;
                    s.died = false;
                }
            }
            "destroy" => {
                if let Some(s) = seen.remove(&c.id) {
                    if s.started_at.is_some() && !s.died {
                        self.say(c, "die", &[]);
                    }
                }
            }
            _ => {}
        }
        self.say(c, action, &[]);
    }

    /// Takes the records as the starting point, saying nothing (the daemon's start).
    pub fn sync_quietly(&self, records: Vec<berth::container::Container>) {
        if let Ok(mut seen) = self.seen.lock() {
            for c in records {
                let died = c.state.status == berth::container::Status::Exited;
                seen.insert(c.id.clone(), Seen { started_at: c.state.started_at, died, container: c });
            }
        }
    }

    /// Brings the lifecycle events up to date with the container records: containers
    /// made, started, ended or removed by berth's CLI or by their monitor (`--rm`).
    pub fn sync(&self, records: Vec<berth::container::Container>) {
        let Ok(mut seen) = self.seen.lock() else { return };
        let ids: std::collections::HashSet<String> = records.iter().map(|c| c.id.clone()).collect();
        for c in records {
            let s = seen.entry(c.id.clone()).or_insert_with(|| {
                self.say(&c, "create", &[]);
                Seen { container: c.clone(), started_at: None, died: false }
            });
            if c.state.started_at.is_some() && c.state.started_at != s.started_at {
                if s.started_at.is_some() && !s.died {
                    self.say(&c, "die", &[]);
                }
                self.say(&c, "start", &[]);
                s.started_at = c.state.started_at;
                s.died = false;
            }
            if c.state.status == berth::container::Status::Exited && s.started_at.is_some() && !s.died {
                self.say(&c, "die", &[("exitCode", json!(c.state.exit_code.unwrap_or(0).to_string()))]);
                s.died = true;
            }
            s.container = c;
        }
        let gone: Vec<String> = seen.keys().filter(|id| !ids.contains(*id)).cloned().collect();
        for id in gone {
            if let Some(s) = seen.remove(&id) {
                if s.started_at.is_some() && !s.died {
                    self.say(&s.container, "die", &[]);
                }
                self.say(&s.container, "destroy", &[]);
            }
        }
    }
}

/// Keeps the container events true to the records, every 100 ms, for the daemon's life.
pub async fn watch(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let a = app.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(all) = berth::container::all(&a.paths) {
                a.events.sync(all);
            }
        })
        .await;
    }
}

/// A time as Docker's clients send it: seconds, with an optional fraction.
fn when(q: &HashMap<String, String>, key: &str) -> Result<Option<f64>> {
    q.get(key).filter(|v| !v.is_empty()).map(|v| v.parse::<f64>().map_err(|_| bad(format!("invalid {key} {v:?}")))).transpose()
}

/// `filters={"type":["container"],"event":["start"],"container":["web"],"label":["k=v"]}`.
fn passes(e: &Value, f: &HashMap<String, Vec<String>>) -> bool {
    f.iter().all(|(k, vals)| {
        vals.iter().any(|v| match k.as_str() {
            "type" => e["Type"] == v.as_str(),
            "event" => e["Action"] == v.as_str(),
            "container" | "image" | "network" | "volume" => {
                e["Actor"]["ID"].as_str().is_some_and(|id| id.starts_with(v.as_str())) || e["Actor"]["Attributes"]["name"] == v.as_str()
            }
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e["Actor"]["Attributes"][lk] == lv,
                None => !e["Actor"]["Attributes"][v.as_str()].is_null(),
            },
            _ => false,
        })
    })
}

pub async fn events(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let since = when(&q, "since")?;
    let until = when(&q, "until")?;
    let filters = crate::api::parse_filters(&q, None)?;
    let at = |e: &Value| e["timeNano"].as_u64().unwrap_or(0) as f64 / 1e9;
    let rx = app.events.live.subscribe();
    let past: Vec<Value> = match since {
        Some(s) => app.events.history.lock().map(|h| h.iter().filter(|e| at(e) >= s).cloned().collect()).unwrap_or_default(),
        None => Vec::new(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let deadline = until.map(|u| Duration::from_secs_f64((u - now).max(0.0)));
    let line = |e: &Value| Ok::<_, std::io::Error>(format!("{e}\n").into_bytes());
    let f2 = filters.clone();
    let head: Vec<_> = past.iter().filter(|e| passes(e, &filters) && until.is_none_or(|u| at(e) <= u)).map(line).collect();
    let live = futures::stream::unfold(rx, move |mut rx| {
        let f = f2.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if passes(&e, &f) => return Some((line(&e), rx)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures::StreamExt::chain(futures::stream::iter(head), live);
    let body = match deadline {
        Some(d) => Body::from_stream(futures::StreamExt::take_until(stream, tokio::time::sleep(d))),
        None => Body::from_stream(stream),
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
