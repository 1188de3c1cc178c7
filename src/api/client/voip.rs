//! `GET /voip/turnServer`: time-limited TURN credentials made from the configured shared
//! secret (the TURN REST API scheme coturn implements). Without a configured TURN server the
//! answer is an empty object, as Synapse gives and clients expect.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ruma::api::client::voip::get_turn_server_info;
use serde_json::json;

use axum::routing::get;

use crate::api::ruma::{AppState, Ruma};
use crate::error::{Error, Result};
use crate::service::users::now_ms;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    // Registered by hand: the no-TURN answer (`{}`) is not a ruma response.
    router
        .route("/_matrix/client/v3/voip/turnServer", get(turn_server))
        .route("/_matrix/client/r0/voip/turnServer", get(turn_server))
}

async fn turn_server(
    State(services): State<AppState>,
    request: Ruma<get_turn_server_info::v3::Request>,
) -> Result<Response> {
    let user = &request.identity()?.user_id;
    let turn = &services.config.turn;
    if turn.uris.is_empty() || turn.shared_secret.is_empty() {
        return Ok(axum::Json(json!({})).into_response());
    }
    let expires_s = (now_ms() + turn.user_lifetime_ms) / 1000;
    let username = format!("{expires_s}:{user}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(turn.shared_secret.as_bytes())
        .map_err(Error::internal)?;
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Ok(axum::Json(json!({
        "username": username,
        "password": password,
        "uris": turn.uris,
        "ttl": turn.user_lifetime_ms / 1000,
    }))
    .into_response())
}
