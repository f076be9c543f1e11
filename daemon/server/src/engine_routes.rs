//! berth's own routes (`/berth/v1/...`): the engine's [`Networking`] operations for the
//! runtime's [`Client`](netd::engine::client::Client), so that when netd serves, one
//! process owns the kernel state. Bodies and answers are the engine's own types.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use netd::engine::client::{AttachRequest, DetachRequest, PREFIX};
use netd::engine::{CreateNetwork, Member, Networking};
use netd::name::Name;
use netd::network::endpoint::{BridgeNetwork, Endpoint};

use crate::api::{blocking, decode, App, Result};

/// The routes, under [`PREFIX`].
pub fn router(app: Arc<App>) -> Router {
    let r = Router::new()
        .route("/networks", get(networks).post(create))
        .route("/networks/{name}", get(network).delete(remove))
        .route("/networks/{name}/members", get(members))
        .route("/networks/{name}/attach", post(attach))
        .route("/networks/{name}/detach", post(detach))
        .route("/containers/{id}/attachments", get(attachments))
        .with_state(app);
    Router::new().nest(PREFIX, r)
}

async fn networks(State(app): State<Arc<App>>) -> Result<Json<Vec<BridgeNetwork>>> {
    blocking(move || Ok(Json(app.engine.networks()?))).await
}

async fn network(State(app): State<Arc<App>>, Path(name): Path<String>) -> Result<Json<BridgeNetwork>> {
    blocking(move || Ok(Json(app.engine.network(&name)?))).await
}

async fn create(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Result<(StatusCode, Json<BridgeNetwork>)> {
    let req: CreateNetwork = decode(&body)?;
    blocking(move || Ok((StatusCode::CREATED, Json(app.engine.create_network(&req)?)))).await
}

async fn remove(State(app): State<Arc<App>>, Path(name): Path<String>) -> Result<Json<BridgeNetwork>> {
    blocking(move || Ok(Json(app.engine.remove_network(&name)?))).await
}

async fn attach(State(app): State<Arc<App>>, Path(name): Path<String>, body: axum::body::Bytes) -> Result<Json<Endpoint>> {
    let req: AttachRequest = decode(&body)?;
    blocking(move || {
        let net = app.engine.network(&name)?;
        let id = Name::container(&req.id).map_err(netd::Error::from)?;
        let ep = app.engine.attach(&net, id.as_str(), &req.netns, &req.options)?;
        tracing::info!(network = %name, container = %id, ifname = %req.options.ifname, address = %ep.address, "attached");
        Ok(Json(ep))
    })
    .await
}

async fn detach(State(app): State<Arc<App>>, Path(name): Path<String>, body: axum::body::Bytes) -> Result<Json<()>> {
    let req: DetachRequest = decode(&body)?;
    blocking(move || {
        let net = app.engine.network(&name)?;
        let id = Name::container(&req.id).map_err(netd::Error::from)?;
        let ifname = Name::interface(&req.ifname).map_err(netd::Error::from)?;
        app.engine.detach(&net, id.as_str(), req.netns.as_deref(), ifname.as_str(), req.endpoint.as_ref())?;
        tracing::info!(network = %name, container = %id, ifname = %ifname, "detached");
        Ok(Json(()))
    })
    .await
}

async fn attachments(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<Vec<(String, String)>>> {
    blocking(move || {
        let id = Name::container(&id).map_err(netd::Error::from)?;
        Ok(Json(app.engine.attachments(id.as_str())?))
    })
    .await
}

async fn members(State(app): State<Arc<App>>, Path(name): Path<String>) -> Result<Json<Vec<Member>>> {
    blocking(move || {
        let net = app.engine.network(&name)?;
        Ok(Json(app.engine.members(&net.name)?))
    })
    .await
}
