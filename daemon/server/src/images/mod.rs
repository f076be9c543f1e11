//! The Docker Engine API's image and volume endpoints over berth's image store and
//! volumes: list, inspect, history, tag, remove; pull, push, save, load and build with
//! Docker's progress streams (`transfer`, `build`); volume create, list, inspect, remove,
//! prune.

mod build;
mod progress;
mod transfer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth::image::{self, Image};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{bad, blocking, decode, ApiError, App, Result};
use crate::containers::{error, flag};

/// The routes (mounted with and without a version prefix).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(transfer::pull))
        .route("/images/load", post(transfer::load))
        .route("/images/get", get(transfer::save_many))
        .route("/build", post(build::build))
        .route("/images/prune", post(prune_images))
        .route("/images/{*name}", get(by_path).post(by_path_post).delete(remove))
        .route("/volumes", get(volumes))
        .route("/volumes/create", post(create_volume))
        .route("/volumes/prune", post(prune_volumes))
        .route("/volumes/{name}", get(inspect_volume).delete(remove_volume))
}

/// A reference as Docker shows it: the docker CLI sends `docker.io/library/site` for
/// `site`, and berth stores names as users write them.
pub(crate) fn familiar(r: &str) -> String {
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    r.strip_prefix("library/").unwrap_or(r).to_string()
}

/// Docker's image summary: one entry per image ID with every name as a RepoTag.
fn summaries(images: &[Image]) -> Vec<Value> {
    let mut by_id: BTreeMap<&str, Vec<&Image>> = BTreeMap::new();
    for i in images {
        by_id.entry(i.id.as_str()).or_default().push(i);
    }
    by_id
        .into_iter()
        .map(|(id, imgs)| {
            let first = imgs[0];
            json!({
                "Id": id, "ParentId": "", "RepoTags": imgs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), "RepoDigests": [],
                "Created": first.created, "Size": 0, "SharedSize": -1, "VirtualSize": 0,
                "Labels": first.config.labels, "Containers": -1,
            })
        })
        .collect()
}

fn inspect(paths: &berth::paths::Paths, img: &Image) -> Value {
    let names: Vec<String> = image::list(paths).unwrap_or_default().into_iter().filter(|i| i.id == img.id).map(|i| i.name).collect();
    let c = &img.config;
    let exposed: serde_json::Map<String, Value> = c.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect();
    json!({
        "Id": img.id, "RepoTags": names, "RepoDigests": [], "Parent": "", "Comment": "",
        "Created": netd::clock::rfc3339(img.created),
        "Config": {
            "Env": c.env, "Cmd": c.cmd, "Entrypoint": if c.entrypoint.is_empty() { Value::Null } else { json!(c.entrypoint) },
            "WorkingDir": c.working_dir, "User": c.user, "ExposedPorts": exposed, "Labels": c.labels,
            "StopSignal": c.stop_signal,
        },
        "Architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "Os": "linux", "Size": 0,
        "RootFS": {"Type": "layers", "Layers": img.layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

async fn list(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    let reference = q.get("filter").cloned();
    blocking(move || {
        let mut imgs = image::list(&app.paths).map_err(error)?;
        if let Some(r) = reference {
            imgs.retain(|i| i.name == r || i.name.split(':').next() == Some(r.as_str()));
        }
        Ok(Json(Value::Array(summaries(&imgs))))
    })
    .await
}

/// `GET /images/{name}/json` and `/images/{name}/history`: the name may hold slashes.
async fn by_path(State(app): State<Arc<App>>, Path(rest): Path<String>) -> Result<Response> {
    let (name, what) = rest.rsplit_once('/').ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "page not found".into()))?;
    let (name, what) = (name.to_string(), what.to_string());
    if what == "get" {
        return transfer::save(app, vec![name]).await;
    }
    blocking(move || {
        let img = image::get(&app.paths, &name).map_err(error)?;
        match what.as_str() {
            "json" => Ok(Json(inspect(&app.paths, &img))),
            "history" => {
                let cfg = image::store::config(&app.paths, &img).map_err(error)?;
                let mut items: Vec<Value> = cfg["history"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        let created = h["created"].as_str().and_then(netd::clock::parse_rfc3339).unwrap_or(0);
                        json!({"Id": "<missing>", "Created": created, "CreatedBy": h["created_by"], "Tags": null, "Size": 0, "Comment": h["comment"]})
                    })
                    .collect();
                items.reverse();
                if let Some(top) = items.first_mut() {
                    top["Id"] = json!(img.id);
                }
                Ok(Json(Value::Array(items)))
            }
            _ => Err(ApiError(StatusCode::NOT_FOUND, "page not found".into())),
        }
    })
    .await
    .map(IntoResponse::into_response)
}

/// `POST /images/{name}/tag?repo=R&tag=T`.
async fn by_path_post(State(app): State<Arc<App>>, Path(rest): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    if let Some(name) = rest.strip_suffix("/push") {
        return transfer::push(app, name, &q).await;
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()));
    };
    let repo = familiar(q.get("repo").filter(|r| !r.is_empty()).ok_or_else(|| bad("repository name is required"))?);
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo,
    };
    // Validated, then stored as given (as `berth tag` stores it).
    image::checked_name(&target).map_err(|why| bad(format!("invalid reference {target:?}: {why}")))?;
    let target = image::normalize(&target);
    let name = name.to_string();
    blocking(move || {
        let img = image::get(&app.paths, &name).map_err(error)?;
        image::store::tag(&app.paths, &img, &target).map_err(error)?;
        app.events.emit("image", "tag", &img.id, json!({"name": target}));
        Ok(StatusCode::CREATED.into_response())
    })
    .await
}

async fn remove(State(app): State<Arc<App>>, Path(name): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    let force = flag(&q, "force");
    blocking(move || {
        let img = image::delete(&app.paths, &name, force).map_err(error)?;
        let mut out = vec![json!({"Untagged": img.name})];
        if !image::list(&app.paths).map_err(error)?.iter().any(|i| i.id == img.id) {
            out.push(json!({"Deleted": img.id}));
            app.events.emit("image", "delete", &img.id, json!({"name": img.name}));
        } else {
            app.events.emit("image", "untag", &img.id, json!({"name": img.name}));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

async fn volumes(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    blocking(move || {
        let v: Vec<Value> = berth::volume::list(&app.paths).iter().map(|r| r.docker(&app.paths)).collect();
        Ok(Json(json!({"Volumes": v, "Warnings": []})))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateVolume {
    name: String,
    driver: String,
    labels: Option<BTreeMap<String, String>>,
    driver_opts: Option<BTreeMap<String, String>>,
}

async fn create_volume(State(app): State<Arc<App>>, body: Bytes) -> Result<(StatusCode, Json<Value>)> {
    let b: CreateVolume = decode(&body)?;
    if !matches!(b.driver.as_str(), "" | "local") {
        return Err(bad(format!("volume driver {:?} is not supported by berth: only local", b.driver)));
    }
    if b.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(bad("volume driver options are not supported by berth"));
    }
    blocking(move || {
        let name = if b.name.is_empty() { berth::container::id::random(32) } else { b.name };
        let r = match berth::volume::get(&app.paths, &name) {
            // Docker answers an existing volume's create with the volume.
            Some(r) => r,
            None => {
                let r = berth::volume::create(&app.paths, &name, b.labels.unwrap_or_default(), false).map_err(error)?;
                app.events.emit("volume", "create", &r.name, json!({"driver": "local"}));
                r
            }
        };
        Ok((StatusCode::CREATED, Json(r.docker(&app.paths))))
    })
    .await
}

fn no_volume(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("get {name}: no such volume"))
}

async fn inspect_volume(State(app): State<Arc<App>>, Path(name): Path<String>) -> Result<Json<Value>> {
    blocking(move || berth::volume::get(&app.paths, &name).map(|r| Json(r.docker(&app.paths))).ok_or_else(|| no_volume(&name))).await
}

async fn remove_volume(State(app): State<Arc<App>>, Path(name): Path<String>) -> Result<StatusCode> {
    blocking(move || {
        if berth::volume::get(&app.paths, &name).is_none() {
            return Err(no_volume(&name));
        }
        berth::volume::remove(&app.paths, &name).map_err(|e| match e {
            berth::error::Error::State(m) => ApiError(StatusCode::CONFLICT, m),
            e => error(e),
        })?;
        app.events.emit("volume", "destroy", &name, json!({"driver": "local"}));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /images/prune`: `dangling=false` deletes every image no container uses, as
/// `docker image prune -a`; berth keeps no dangling images for the default to delete.
async fn prune_images(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    let filters = crate::api::parse_filters(&q, Some(&["dangling", "until", "label"]))?;
    if filters.contains_key("until") || filters.contains_key("label") {
        return Err(bad("berth prunes images by dangling only"));
    }
    let all = filters.get("dangling").is_some_and(|v| v.iter().any(|d| d == "false" || d == "0"));
    blocking(move || {
        let (untagged, deleted, freed) = image::prune(&app.paths, all).map_err(error)?;
        for id in &deleted {
            app.events.emit("image", "delete", id, json!({}));
        }
        let mut out: Vec<Value> = untagged.iter().map(|n| json!({"Untagged": n})).collect();
        out.extend(deleted.iter().map(|d| json!({"Deleted": d})));
        Ok(Json(json!({"ImagesDeleted": out, "SpaceReclaimed": freed})))
    })
    .await
}

async fn prune_volumes(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    // API ≥ 1.42 prunes only anonymous volumes unless filters all=true, as Docker 23+.
    let all = q.get("filters").is_some_and(|f| f.contains("\"all\"") && f.contains("true"));
    blocking(move || {
        let gone = berth::volume::prune(&app.paths, all).map_err(error)?;
        for n in &gone {
            app.events.emit("volume", "destroy", n, json!({"driver": "local"}));
        }
        Ok(Json(json!({"VolumesDeleted": gone, "SpaceReclaimed": 0})))
    })
    .await
}
