//! Server-side key backup: `/room_keys/version[/{version}]` and
//! `/room_keys/keys[/{roomId}[/{sessionId}]]`.

use axum::extract::State;
use ruma::api::client::backup::{
    RoomKeyBackup, add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session,
    create_backup_version, delete_backup_keys, delete_backup_keys_for_room,
    delete_backup_keys_for_session, delete_backup_version, get_backup_info, get_backup_keys,
    get_backup_keys_for_room, get_backup_keys_for_session, get_latest_backup_info,
    update_backup_version,
};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, UInt};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::key_backup::Version;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(create_version)
        .ruma(latest_version)
        .ruma(get_version)
        .ruma(update_version)
        .ruma(delete_version)
        .ruma(put_keys)
        .ruma(put_room_keys)
        .ruma(put_session_key)
        .ruma(get_keys)
        .ruma(get_room_keys)
        .ruma(get_session_key)
        .ruma(delete_keys)
        .ruma(delete_room_keys)
        .ruma(delete_session_key)
}

/// `{algorithm, auth_data}` from the request's algorithm object.
fn algorithm_of<T>(raw: &Raw<T>) -> Result<(String, Value)> {
    let value: Value = serde_json::from_str(raw.json().get()).map_err(Error::internal)?;
    let algorithm = value["algorithm"]
        .as_str()
        .ok_or_else(|| Error::bad_json("algorithm is required"))?
        .to_owned();
    if !value["auth_data"].is_object() {
        return Err(Error::bad_json("auth_data must be an object"));
    }
    Ok((algorithm, value["auth_data"].clone()))
}

fn raw<T>(value: &Value) -> Result<Raw<T>> {
    serde_json::value::to_raw_value(value)
        .map(Raw::from_json)
        .map_err(Error::internal)
}

fn count(n: u64) -> UInt {
    UInt::new(n).unwrap_or_default()
}

fn info(version: &Version) -> Result<Raw<ruma::api::client::backup::BackupAlgorithm>> {
    raw(&json!({"algorithm": version.algorithm, "auth_data": version.auth_data}))
}

async fn create_version(
    State(services): State<AppState>,
    request: Ruma<create_backup_version::v3::Request>,
) -> Result<create_backup_version::v3::Response> {
    let user = &request.identity()?.user_id;
    let (algorithm, auth_data) = algorithm_of(&request.body.algorithm)?;
    let version = services.key_backup.create(user, algorithm, auth_data)?;
    Ok(create_backup_version::v3::Response::new(version))
}

async fn latest_version(
    State(services): State<AppState>,
    request: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<get_latest_backup_info::v3::Response> {
    let user = &request.identity()?.user_id;
    let (version, stored) = services
        .key_backup
        .latest(user)?
        .ok_or_else(|| Error::not_found("No backup exists"))?;
    let (etag, n) = services.key_backup.etag_and_count(user, &version)?;
    Ok(get_latest_backup_info::v3::Response::new(
        info(&stored)?,
        count(n),
        etag.to_string(),
        version,
    ))
}

async fn get_version(
    State(services): State<AppState>,
    request: Ruma<get_backup_info::v3::Request>,
) -> Result<get_backup_info::v3::Response> {
    let user = &request.identity()?.user_id;
    let version = &request.body.version;
    let stored = services.key_backup.get(user, version)?;
    let (etag, n) = services.key_backup.etag_and_count(user, version)?;
    Ok(get_backup_info::v3::Response::new(
        info(&stored)?,
        count(n),
        etag.to_string(),
        version.clone(),
    ))
}

async fn update_version(
    State(services): State<AppState>,
    request: Ruma<update_backup_version::v3::Request>,
) -> Result<update_backup_version::v3::Response> {
    let user = &request.identity()?.user_id;
    let (algorithm, auth_data) = algorithm_of(&request.body.algorithm)?;
    services
        .key_backup
        .update(user, &request.body.version, algorithm, auth_data)?;
    Ok(update_backup_version::v3::Response::new())
}

async fn delete_version(
    State(services): State<AppState>,
    request: Ruma<delete_backup_version::v3::Request>,
) -> Result<delete_backup_version::v3::Response> {
    let user = &request.identity()?.user_id;
    services.key_backup.delete(user, &request.body.version)?;
    Ok(delete_backup_version::v3::Response::new())
}

fn sessions_of<T>(
    room: &OwnedRoomId,
    sessions: &BTreeMap<String, Raw<T>>,
) -> Result<Vec<(String, String, Value)>> {
    sessions
        .iter()
        .map(|(session, data)| {
            let data: Value = serde_json::from_str(data.json().get()).map_err(Error::internal)?;
            if !data["session_data"].is_object() {
                return Err(Error::bad_json("session_data must be an object"));
            }
            Ok((room.to_string(), session.clone(), data))
        })
        .collect()
}

async fn put_keys(
    State(services): State<AppState>,
    request: Ruma<add_backup_keys::v3::Request>,
) -> Result<add_backup_keys::v3::Response> {
    let user = &request.identity()?.user_id;
    let mut sessions = Vec::new();
    for (room, backup) in &request.body.rooms {
        sessions.extend(sessions_of(room, &backup.sessions)?);
    }
    let (etag, n) = services
        .key_backup
        .put(user, &request.body.version, sessions)?;
    Ok(add_backup_keys::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}

async fn put_room_keys(
    State(services): State<AppState>,
    request: Ruma<add_backup_keys_for_room::v3::Request>,
) -> Result<add_backup_keys_for_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let sessions = sessions_of(&body.room_id, &body.sessions)?;
    let (etag, n) = services.key_backup.put(user, &body.version, sessions)?;
    Ok(add_backup_keys_for_room::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}

async fn put_session_key(
    State(services): State<AppState>,
    request: Ruma<add_backup_keys_for_session::v3::Request>,
) -> Result<add_backup_keys_for_session::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let sessions = sessions_of(
        &body.room_id,
        &BTreeMap::from([(body.session_id.clone(), body.session_data.clone())]),
    )?;
    let (etag, n) = services.key_backup.put(user, &body.version, sessions)?;
    Ok(add_backup_keys_for_session::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}

/// Sessions of one room's map as ruma wants them.
fn room_sessions<T>(sessions: &Value) -> Result<BTreeMap<String, Raw<T>>> {
    sessions
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(id, data)| Ok((id.clone(), raw(data)?)))
                .collect()
        })
        .unwrap_or_else(|| Ok(BTreeMap::new()))
}

async fn get_keys(
    State(services): State<AppState>,
    request: Ruma<get_backup_keys::v3::Request>,
) -> Result<get_backup_keys::v3::Response> {
    let user = &request.identity()?.user_id;
    let rooms: Map<String, Value> =
        services
            .key_backup
            .sessions(user, &request.body.version, None, None)?;
    let mut result = BTreeMap::new();
    for (room, sessions) in rooms {
        let room = OwnedRoomId::try_from(room).map_err(Error::internal)?;
        result.insert(room, RoomKeyBackup::new(room_sessions(&sessions)?));
    }
    Ok(get_backup_keys::v3::Response::new(result))
}

async fn get_room_keys(
    State(services): State<AppState>,
    request: Ruma<get_backup_keys_for_room::v3::Request>,
) -> Result<get_backup_keys_for_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let rooms =
        services
            .key_backup
            .sessions(user, &body.version, Some(body.room_id.as_str()), None)?;
    let sessions = rooms
        .get(body.room_id.as_str())
        .map(room_sessions)
        .transpose()?
        .unwrap_or_default();
    Ok(get_backup_keys_for_room::v3::Response::new(sessions))
}

async fn get_session_key(
    State(services): State<AppState>,
    request: Ruma<get_backup_keys_for_session::v3::Request>,
) -> Result<get_backup_keys_for_session::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let rooms = services.key_backup.sessions(
        user,
        &body.version,
        Some(body.room_id.as_str()),
        Some(&body.session_id),
    )?;
    let data = rooms
        .get(body.room_id.as_str())
        .and_then(|sessions| sessions.get(&body.session_id))
        .ok_or_else(|| Error::not_found("No such session in the backup"))?;
    Ok(get_backup_keys_for_session::v3::Response::new(raw(data)?))
}

async fn delete_keys(
    State(services): State<AppState>,
    request: Ruma<delete_backup_keys::v3::Request>,
) -> Result<delete_backup_keys::v3::Response> {
    let user = &request.identity()?.user_id;
    let (etag, n) = services
        .key_backup
        .delete_sessions(user, &request.body.version, None, None)?;
    Ok(delete_backup_keys::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}

async fn delete_room_keys(
    State(services): State<AppState>,
    request: Ruma<delete_backup_keys_for_room::v3::Request>,
) -> Result<delete_backup_keys_for_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (etag, n) = services.key_backup.delete_sessions(
        user,
        &body.version,
        Some(body.room_id.as_str()),
        None,
    )?;
    Ok(delete_backup_keys_for_room::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}

async fn delete_session_key(
    State(services): State<AppState>,
    request: Ruma<delete_backup_keys_for_session::v3::Request>,
) -> Result<delete_backup_keys_for_session::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (etag, n) = services.key_backup.delete_sessions(
        user,
        &body.version,
        Some(body.room_id.as_str()),
        Some(&body.session_id),
    )?;
    Ok(delete_backup_keys_for_session::v3::Response::new(
        etag.to_string(),
        count(n),
    ))
}
