//! `POST /_synapse/admin/v1/send_server_notice` (and `PUT …/{txnId}`, which sends once per
//! transaction id): a message from the server to one user.

use axum::Json;
use axum::extract::State;
use axum::routing::{post, put};
use ruma::events::TimelineEventType;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::Admin;
use crate::api::extract::Path;
use crate::api::ruma::{AppState, JsonBody};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::server_notices::Notice;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route("/_synapse/admin/v1/send_server_notice", post(send))
        .route(
            "/_synapse/admin/v1/send_server_notice/{txn_id}",
            put(send_with_transaction),
        )
}

#[derive(Deserialize)]
struct Body {
    user_id: String,
    content: Value,
    #[serde(rename = "type")]
    kind: Option<String>,
    state_key: Option<String>,
}

async fn deliver(
    services: &Services,
    body: Body,
    transaction: Option<(ruma::OwnedUserId, String)>,
) -> Result<Json<Value>> {
    let user = ruma::UserId::parse(&body.user_id)
        .map_err(|e| Error::invalid_param(format!("Invalid user_id: {e}")))?;
    if !body.content.is_object() {
        return Err(Error::bad_json("content must be a JSON object"));
    }
    let notice = Notice {
        kind: TimelineEventType::from(body.kind.as_deref().unwrap_or("m.room.message")),
        state_key: body.state_key,
        content: body.content,
        transaction,
    };
    let event_id = services.send_server_notice(&user, notice).await?;
    Ok(Json(json!({ "event_id": event_id })))
}

async fn send(
    State(services): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<Body>,
) -> Result<Json<Value>> {
    deliver(&services, body, None).await
}

async fn send_with_transaction(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(txn_id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> Result<Json<Value>> {
    deliver(&services, body, Some((admin.user_id, txn_id))).await
}
