//! Account data endpoints, global and per room. Only the owner may read or write.

use axum::extract::State;
use ruma::UserId;
use ruma::api::client::config::{
    get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data,
};
use ruma::serde::Raw;
use serde_json::Value;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(set_global)
        .ruma(get_global)
        .ruma(set_room)
        .ruma(get_room)
}

fn require_self(caller: &UserId, owner: &UserId) -> Result<()> {
    if caller == owner {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Cannot access account data of other users",
        ))
    }
}

fn parse(raw: &serde_json::value::RawValue) -> Result<Value> {
    serde_json::from_str(raw.get()).map_err(|e| Error::bad_json(e.to_string()))
}

fn not_found(kind: &str) -> Error {
    Error::not_found(format!("No account data of type {kind}"))
}

async fn set_global(
    State(services): State<AppState>,
    request: Ruma<set_global_account_data::v3::Request>,
) -> Result<set_global_account_data::v3::Response> {
    let body = &request.body;
    require_self(&request.identity()?.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    services
        .account_data
        .set(&body.user_id, None, &kind, parse(body.data.json())?)?;
    Ok(set_global_account_data::v3::Response::new())
}

async fn get_global(
    State(services): State<AppState>,
    request: Ruma<get_global_account_data::v3::Request>,
) -> Result<get_global_account_data::v3::Response> {
    let body = &request.body;
    require_self(&request.identity()?.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    let content = services
        .account_data
        .get(&body.user_id, None, &kind)?
        .ok_or_else(|| not_found(&kind))?;
    let raw = serde_json::value::to_raw_value(&content).map_err(Error::internal)?;
    Ok(get_global_account_data::v3::Response::new(Raw::from_json(
        raw,
    )))
}

async fn set_room(
    State(services): State<AppState>,
    request: Ruma<set_room_account_data::v3::Request>,
) -> Result<set_room_account_data::v3::Response> {
    let body = &request.body;
    require_self(&request.identity()?.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    services.account_data.set(
        &body.user_id,
        Some(&body.room_id),
        &kind,
        parse(body.data.json())?,
    )?;
    Ok(set_room_account_data::v3::Response::new())
}

async fn get_room(
    State(services): State<AppState>,
    request: Ruma<get_room_account_data::v3::Request>,
) -> Result<get_room_account_data::v3::Response> {
    let body = &request.body;
    require_self(&request.identity()?.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    let content = services
        .account_data
        .get(&body.user_id, Some(&body.room_id), &kind)?
        .ok_or_else(|| not_found(&kind))?;
    let raw = serde_json::value::to_raw_value(&content).map_err(Error::internal)?;
    Ok(get_room_account_data::v3::Response::new(Raw::from_json(
        raw,
    )))
}
