//! `GET /_synapse/admin/v1/server_version`.

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::admin::Admin;
use crate::api::ruma::AppState;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.route("/_synapse/admin/v1/server_version", get(server_version))
}

async fn server_version(_: Admin) -> Json<Value> {
    Json(json!({ "server_version": concat!("Myelin ", env!("CARGO_PKG_VERSION")) }))
}
