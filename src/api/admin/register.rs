//! `GET|POST /_synapse/admin/v1/register`: shared-secret registration, which admin tools use to
//! create the first accounts without open registration.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::ruma::{AppState, JsonBody};
use crate::error::Result;
use crate::service::users::Account;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.route("/_synapse/admin/v1/register", get(nonce).post(register))
}

async fn nonce(State(services): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!({ "nonce": services.shared_secret.nonce()? })))
}

#[derive(Deserialize)]
struct Body {
    nonce: String,
    username: String,
    password: String,
    mac: String,
    #[serde(default)]
    admin: bool,
    displayname: Option<String>,
    user_type: Option<String>,
}

async fn register(
    State(services): State<AppState>,
    JsonBody(body): JsonBody<Body>,
) -> Result<Json<Value>> {
    services.shared_secret.verify(
        &body.nonce,
        &body.username,
        &body.password,
        body.admin,
        body.user_type.as_deref(),
        &body.mac,
    )?;
    let user_id = services.users.new_user_id(&body.username)?;
    let account = Account {
        admin: body.admin,
        displayname: body.displayname,
        ..Account::default()
    };
    services
        .users
        .create(&user_id, Some(&body.password), account)
        .await?;
    let session = services
        .devices
        .create_session(&user_id, None, None, false)?;
    Ok(Json(json!({
        "user_id": user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": services.server_name,
    })))
}
