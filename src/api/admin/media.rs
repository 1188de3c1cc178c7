//! Media: delete one item or everything older than a date, quarantine items, a room's or a
//! user's media, protect items from quarantine, list a room's media.

use axum::Json;
use axum::extract::State;
use axum::routing::{delete as delete_route, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::{Admin, known_room, local_user};
use crate::api::extract::{Path, Query};
use crate::api::ruma::AppState;
use crate::error::{Error, Result};
use crate::service::Services;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route(
            "/_synapse/admin/v1/media/{server_name}/{media_id}",
            delete_route(delete_one),
        )
        .route("/_synapse/admin/v1/media/delete", post(delete_older))
        .route(
            "/_synapse/admin/v1/media/{server_name}/delete",
            post(delete_older_legacy),
        )
        .route(
            "/_synapse/admin/v1/media/quarantine/{server_name}/{media_id}",
            post(quarantine),
        )
        .route(
            "/_synapse/admin/v1/media/unquarantine/{server_name}/{media_id}",
            post(unquarantine),
        )
        .route("/_synapse/admin/v1/media/protect/{media_id}", post(protect))
        .route(
            "/_synapse/admin/v1/media/unprotect/{media_id}",
            post(unprotect),
        )
        .route("/_synapse/admin/v1/room/{room_id}/media", get(room_media))
        .route(
            "/_synapse/admin/v1/room/{room_id}/media/quarantine",
            post(quarantine_room),
        )
        .route(
            "/_synapse/admin/v1/quarantine_media/{room_id}",
            post(quarantine_room),
        )
        .route(
            "/_synapse/admin/v1/user/{user_id}/media/quarantine",
            post(quarantine_user),
        )
        .route(
            "/_synapse/admin/v1/purge_media_cache",
            post(purge_remote_cache),
        )
}

/// A media id on this server, or 400 for another server's (whose media is not stored here).
fn local_media(services: &Services, server_name: &str, media_id: String) -> Result<String> {
    if server_name != services.server_name.as_str() {
        return Err(Error::invalid_param("Can only act on media of this server"));
    }
    Ok(media_id)
}

fn known_media(services: &Services, server_name: &str, media_id: String) -> Result<String> {
    let media_id = local_media(services, server_name, media_id)?;
    if services.media.record(&media_id)?.is_none() {
        return Err(Error::not_found("Unknown media"));
    }
    Ok(media_id)
}

async fn delete_one(
    State(services): State<AppState>,
    _: Admin,
    Path((server_name, media_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let media_id = known_media(&services, &server_name, media_id)?;
    let deleted = services.media.delete(&[media_id]).await?;
    Ok(Json(
        json!({ "total": deleted.len(), "deleted_media": deleted }),
    ))
}

#[derive(Deserialize)]
struct DeleteOlderQuery {
    before_ts: Option<u64>,
    size_gt: Option<u64>,
    keep_profiles: Option<bool>,
}

async fn delete_older(
    State(services): State<AppState>,
    _: Admin,
    Query(query): Query<DeleteOlderQuery>,
) -> Result<Json<Value>> {
    let before_ts = query
        .before_ts
        .ok_or_else(|| Error::missing_param("Missing integer query parameter before_ts"))?;
    let kept = if query.keep_profiles.unwrap_or(true) {
        services.avatar_media_ids()?
    } else {
        Default::default()
    };
    let ids: Vec<String> = services
        .media
        .older_than(before_ts, query.size_gt.unwrap_or(0))?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !kept.contains(id))
        .collect();
    let deleted = services.media.delete(&ids).await?;
    Ok(Json(
        json!({ "total": deleted.len(), "deleted_media": deleted }),
    ))
}

async fn delete_older_legacy(
    state: State<AppState>,
    admin: Admin,
    Path(server_name): Path<String>,
    query: Query<DeleteOlderQuery>,
) -> Result<Json<Value>> {
    local_media(&state, &server_name, String::new())?;
    delete_older(state, admin, query).await
}

async fn quarantine(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path((server_name, media_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let media_id = known_media(&services, &server_name, media_id)?;
    services
        .media
        .set_quarantine(&media_id, Some(&admin.user_id), false)?;
    Ok(Json(json!({})))
}

async fn unquarantine(
    State(services): State<AppState>,
    _: Admin,
    Path((server_name, media_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let media_id = known_media(&services, &server_name, media_id)?;
    services.media.set_quarantine(&media_id, None, false)?;
    Ok(Json(json!({})))
}

async fn protect(
    State(services): State<AppState>,
    _: Admin,
    Path(media_id): Path<String>,
) -> Result<Json<Value>> {
    if !services.media.set_protected(&media_id, true)? {
        return Err(Error::not_found("Unknown media"));
    }
    Ok(Json(json!({})))
}

async fn unprotect(
    State(services): State<AppState>,
    _: Admin,
    Path(media_id): Path<String>,
) -> Result<Json<Value>> {
    if !services.media.set_protected(&media_id, false)? {
        return Err(Error::not_found("Unknown media"));
    }
    Ok(Json(json!({})))
}

async fn room_media(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let (local, remote): (Vec<String>, Vec<String>) = services
        .media_in_room(&room_id)?
        .into_iter()
        .partition(|uri| services.local_media_id(uri).is_some());
    Ok(Json(json!({ "local": local, "remote": remote })))
}

/// Quarantines media ids (skipping protected ones) and says how many changed.
fn quarantine_all(services: &Services, by: &ruma::UserId, ids: &[String]) -> Result<u64> {
    let mut count = 0;
    for id in ids {
        if services.media.set_quarantine(id, Some(by), true)? {
            count += 1;
        }
    }
    Ok(count)
}

async fn quarantine_room(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let ids: Vec<String> = services
        .media_in_room(&room_id)?
        .iter()
        .filter_map(|uri| services.local_media_id(uri))
        .collect();
    let count = quarantine_all(&services, &admin.user_id, &ids)?;
    Ok(Json(json!({ "num_quarantined": count })))
}

async fn quarantine_user(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let ids = services.media.upload_ids_of(&user_id)?;
    let count = quarantine_all(&services, &admin.user_id, &ids)?;
    Ok(Json(json!({ "num_quarantined": count })))
}

#[derive(Deserialize)]
struct PurgeQuery {
    before_ts: Option<u64>,
}

/// Myelin caches no remote media (federation is not available yet), so there is never
/// anything to purge; the parameters are still checked as Synapse checks them.
async fn purge_remote_cache(_: Admin, Query(query): Query<PurgeQuery>) -> Result<Json<Value>> {
    query
        .before_ts
        .ok_or_else(|| Error::missing_param("Missing integer query parameter before_ts"))?;
    Ok(Json(json!({ "deleted": 0 })))
}
