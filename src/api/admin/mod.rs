//! The admin API, on the Synapse admin API's paths and shapes so existing admin tools
//! (synapse-admin, scripts written for Synapse) work. Every endpoint but shared-secret
//! registration needs a server admin's access token: 401 without one, 403 for anyone else.

mod media;
mod register;
mod registration_tokens;
mod reports;
mod rooms;
mod server;
mod server_notices;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use http::request::Parts;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::ruma::{AppState, Authenticated};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::devices::Identity;

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    let router = register::routes(router);
    let router = server::routes(router);
    let router = users::routes(router);
    let router = rooms::routes(router);
    let router = reports::routes(router);
    let router = media::routes(router);
    let router = registration_tokens::routes(router);
    server_notices::routes(router)
}

/// A caller who is a server admin.
pub struct Admin(pub Identity);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, services: &AppState) -> Result<Self> {
        let Authenticated(identity) = Authenticated::from_request_parts(parts, services).await?;
        if !services.users.is_admin(&identity.user_id)? {
            return Err(Error::forbidden("You are not a server admin"));
        }
        Ok(Admin(identity))
    }
}

/// A user id from a path: 400 if it is malformed or not on this server, 404 if no such account.
fn local_user(services: &Services, user_id: &str) -> Result<OwnedUserId> {
    let user_id = UserId::parse(user_id)
        .map_err(|e| Error::invalid_param(format!("Invalid user id {user_id}: {e}")))?;
    if !services.users.is_local(&user_id) {
        return Err(Error::invalid_param("Can only look up local users"));
    }
    if !services.users.exists(&user_id)? {
        return Err(Error::not_found("User not found"));
    }
    Ok(user_id)
}

/// A room id from a path: 400 if malformed, 404 if this server does not know the room.
fn known_room(services: &Services, room_id: &str) -> Result<OwnedRoomId> {
    let room_id = parse_room_id(room_id)?;
    services.rooms.existing_room(&room_id)?;
    Ok(room_id)
}

fn parse_room_id(room_id: &str) -> Result<OwnedRoomId> {
    RoomId::parse(room_id)
        .map_err(|e| Error::invalid_param(format!("Invalid room id {room_id}: {e}")))
}

/// The offset pagination every Synapse admin listing uses: `from` (an offset, also handed back
/// as `next_token`), `limit`, and `dir` (`f` or `b`).
#[derive(Debug, Deserialize)]
struct Page {
    from: Option<u64>,
    limit: Option<u64>,
    dir: Option<String>,
}

/// Most entries one admin listing returns.
const MAX_LIMIT: u64 = 1000;

impl Page {
    /// Whether the listing runs backwards (`dir=b`); anything but `f` or `b` is a bad parameter.
    fn backwards(&self) -> Result<bool> {
        match self.dir.as_deref() {
            None | Some("f") => Ok(false),
            Some("b") => Ok(true),
            Some(other) => Err(Error::invalid_param(format!(
                "Unknown direction {other}: use f or b"
            ))),
        }
    }

    /// The entries of this page and the next page's offset, if there are more.
    fn slice<T>(&self, items: Vec<T>, default_limit: u64) -> Result<(Vec<T>, Option<u64>)> {
        let limit = self.limit.unwrap_or(default_limit);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid_param(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let from = usize::try_from(self.from.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let end = from.saturating_add(limit);
        let next = (end < items.len()).then_some(end as u64);
        Ok((items.into_iter().skip(from).take(limit).collect(), next))
    }
}

/// A listing's body: `{key: entries, "total": n}`, and `next_token` when there is more.
fn listing(key: &str, entries: Vec<Value>, total: usize, next_token: Option<Value>) -> Value {
    let mut body = json!({ key: entries, "total": total });
    if let Some(next) = next_token {
        body["next_token"] = next;
    }
    body
}

/// An `order_by` the listing does not know.
fn unknown_order(order_by: &str) -> Error {
    Error::invalid_param(format!("Unknown value for order_by: {order_by}"))
}
