//! Accounts: list, show, create or change, deactivate, reset passwords, admin flags, sessions
//! (`whois`), devices, joined rooms, uploads, shadow bans.

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use ruma::{OwnedDeviceId, OwnedUserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::{Admin, Page, listing, local_user, unknown_order};
use crate::api::extract::{Path, Query};
use crate::api::ruma::{AppState, JsonBody, OptionalJsonBody};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::users::UserChanges;
use crate::service::media::MediaRecord;
use crate::service::users::{Account, check_new_password};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route("/_synapse/admin/v2/users", get(list))
        .route("/_synapse/admin/v2/users/{user_id}", get(show).put(upsert))
        .route("/_synapse/admin/v1/deactivate/{user_id}", post(deactivate))
        .route(
            "/_synapse/admin/v1/reset_password/{user_id}",
            post(reset_password),
        )
        .route(
            "/_synapse/admin/v1/users/{user_id}/admin",
            get(admin_status).put(set_admin),
        )
        .route("/_synapse/admin/v1/whois/{user_id}", get(whois))
        .route("/_synapse/admin/v2/users/{user_id}/devices", get(devices))
        .route(
            "/_synapse/admin/v2/users/{user_id}/delete_devices",
            post(delete_devices),
        )
        .route(
            "/_synapse/admin/v2/users/{user_id}/devices/{device_id}",
            get(device).put(rename_device).delete(delete_device),
        )
        .route(
            "/_synapse/admin/v1/users/{user_id}/joined_rooms",
            get(joined_rooms),
        )
        .route(
            "/_synapse/admin/v1/users/{user_id}/media",
            get(media).delete(delete_media),
        )
        .route(
            "/_synapse/admin/v1/users/{user_id}/shadow_ban",
            post(shadow_ban).delete(lift_shadow_ban),
        )
}

/// An account in the Synapse admin API's shape.
fn user_json(services: &Services, user_id: &OwnedUserId, account: &Account) -> Result<Value> {
    let last_seen_ts = services
        .devices
        .list(user_id)?
        .iter()
        .filter_map(|(_, device)| device.last_seen_ts)
        .max();
    Ok(json!({
        "name": user_id,
        "displayname": account.displayname,
        "avatar_url": account.avatar_url,
        "is_guest": account.is_guest,
        "admin": account.admin,
        "deactivated": account.deactivated,
        "erased": account.erased,
        "shadow_banned": account.shadow_banned,
        "locked": false,
        "approved": true,
        "user_type": null,
        "appservice_id": null,
        "creation_ts": account.created_ms,
        "last_seen_ts": last_seen_ts,
        "threepids": [],
        "external_ids": [],
    }))
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<String>,
    name: Option<String>,
    guests: Option<bool>,
    deactivated: Option<bool>,
    admins: Option<bool>,
    order_by: Option<String>,
}

async fn list(
    State(services): State<AppState>,
    _: Admin,
    Query(page): Query<Page>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    let backwards = page.backwards()?;
    let mut users: Vec<(OwnedUserId, Account)> = services
        .users
        .all()?
        .into_iter()
        .filter(|(id, account)| {
            let name_matches = |needle: &str| {
                let needle = needle.to_lowercase();
                id.as_str().to_lowercase().contains(&needle)
                    || account
                        .displayname
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(&needle))
            };
            (query.guests.unwrap_or(true) || !account.is_guest)
                && (query.deactivated.unwrap_or(false) || !account.deactivated)
                && query.admins.is_none_or(|admins| admins == account.admin)
                && query
                    .user_id
                    .as_deref()
                    .is_none_or(|needle| id.as_str().contains(needle))
                && query.name.as_deref().is_none_or(name_matches)
        })
        .collect();
    sort_users(&mut users, query.order_by.as_deref().unwrap_or("name"))?;
    if backwards {
        users.reverse();
    }
    let total = users.len();
    let (page, next_token) = page.slice(users, 100)?;
    let users = page
        .iter()
        .map(|(id, account)| user_json(&services, id, account))
        .collect::<Result<Vec<_>>>()?;
    // Synapse hands out the users' `next_token` as a string.
    let next_token = next_token.map(|n| json!(n.to_string()));
    Ok(Json(listing("users", users, total, next_token)))
}

fn sort_users(users: &mut [(OwnedUserId, Account)], order_by: &str) -> Result<()> {
    // Ties keep user id order (`all` returns them sorted), as Synapse's secondary sort does.
    match order_by {
        "name" => {}
        "displayname" => users.sort_by(|a, b| a.1.displayname.cmp(&b.1.displayname)),
        "creation_ts" => users.sort_by_key(|(_, a)| a.created_ms),
        "admin" => users.sort_by_key(|(_, a)| a.admin),
        "deactivated" => users.sort_by_key(|(_, a)| a.deactivated),
        "is_guest" => users.sort_by_key(|(_, a)| a.is_guest),
        "shadow_banned" => users.sort_by_key(|(_, a)| a.shadow_banned),
        "avatar_url" => users.sort_by(|a, b| a.1.avatar_url.cmp(&b.1.avatar_url)),
        other => return Err(unknown_order(other)),
    }
    Ok(())
}

async fn show(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let account = services
        .users
        .get(&user_id)?
        .ok_or_else(|| Error::not_found("User not found"))?;
    Ok(Json(user_json(&services, &user_id, &account)?))
}

#[derive(Deserialize)]
struct UpsertBody {
    password: Option<String>,
    logout_devices: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    displayname: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    avatar_url: Option<Option<String>>,
    admin: Option<bool>,
    deactivated: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`: clear it) from one not sent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

async fn upsert(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<UpsertBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let user_id = services
        .users
        .parse_local_user(&user_id)
        .map_err(|_| Error::invalid_param("This endpoint can only be used with local users"))?;
    if let Some(password) = &body.password {
        check_new_password(password)?;
    }
    let changes = UserChanges {
        password: body.password,
        logout_devices: body.logout_devices.unwrap_or(true),
        displayname: body.displayname,
        avatar_url: body.avatar_url,
        admin: body.admin,
        deactivated: body.deactivated,
    };
    let created = services
        .upsert_user(&admin.user_id, &user_id, changes)
        .await?;
    let account = services
        .users
        .get(&user_id)?
        .ok_or_else(|| Error::not_found("User not found"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(user_json(&services, &user_id, &account)?)))
}

#[derive(Deserialize, Default)]
struct DeactivateBody {
    #[serde(default)]
    erase: bool,
}

async fn deactivate(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<DeactivateBody>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services.deactivate(&user_id, body.erase).await?;
    Ok(Json(json!({ "id_server_unbind_result": "success" })))
}

#[derive(Deserialize)]
struct ResetPasswordBody {
    new_password: String,
    logout_devices: Option<bool>,
}

async fn reset_password(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<ResetPasswordBody>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services
        .reset_password(
            &user_id,
            &body.new_password,
            body.logout_devices.unwrap_or(true),
        )
        .await?;
    Ok(Json(json!({})))
}

async fn admin_status(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let admin = services.users.get(&user_id)?.is_some_and(|a| a.admin);
    Ok(Json(json!({ "admin": admin })))
}

#[derive(Deserialize)]
struct AdminBody {
    admin: bool,
}

async fn set_admin(
    State(services): State<AppState>,
    Admin(caller): Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<AdminBody>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    if user_id == caller.user_id && !body.admin {
        return Err(Error::invalid_param("You may not demote yourself"));
    }
    services.set_admin(&user_id, body.admin)?;
    Ok(Json(json!({})))
}

async fn whois(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let devices = crate::api::client::admin::sessions(&services, &user_id)?;
    Ok(Json(json!({ "user_id": user_id, "devices": devices })))
}

fn device_json(
    user_id: &OwnedUserId,
    device_id: &OwnedDeviceId,
    device: &crate::service::devices::Device,
) -> Value {
    json!({
        "device_id": device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
        "last_seen_user_agent": null,
        "user_id": user_id,
    })
}

async fn devices(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let devices: Vec<Value> = services
        .devices
        .list(&user_id)?
        .iter()
        .map(|(id, device)| device_json(&user_id, id, device))
        .collect();
    Ok(Json(json!({ "total": devices.len(), "devices": devices })))
}

async fn device(
    State(services): State<AppState>,
    _: Admin,
    Path((user_id, device_id)): Path<(String, OwnedDeviceId)>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let device = services
        .devices
        .get(&user_id, &device_id)?
        .ok_or_else(|| Error::not_found("Device not found"))?;
    Ok(Json(device_json(&user_id, &device_id, &device)))
}

#[derive(Deserialize)]
struct RenameBody {
    display_name: Option<String>,
}

async fn rename_device(
    State(services): State<AppState>,
    _: Admin,
    Path((user_id, device_id)): Path<(String, OwnedDeviceId)>,
    JsonBody(body): JsonBody<RenameBody>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services
        .devices
        .set_display_name(&user_id, &device_id, body.display_name)?;
    Ok(Json(json!({})))
}

async fn delete_device(
    State(services): State<AppState>,
    _: Admin,
    Path((user_id, device_id)): Path<(String, OwnedDeviceId)>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services.delete_devices(&user_id, &[&device_id])?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteDevicesBody {
    devices: Vec<OwnedDeviceId>,
}

async fn delete_devices(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<DeleteDevicesBody>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let ids: Vec<&ruma::DeviceId> = body.devices.iter().map(|d| &**d).collect();
    services.delete_devices(&user_id, &ids)?;
    Ok(Json(json!({})))
}

async fn joined_rooms(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let mut rooms: Vec<_> = services
        .rooms
        .joined_room_ids(&user_id)?
        .into_iter()
        .collect();
    rooms.sort();
    Ok(Json(json!({ "total": rooms.len(), "joined_rooms": rooms })))
}

/// A media item in the Synapse admin API's shape.
pub fn media_json(media_id: &str, record: &MediaRecord) -> Value {
    json!({
        "media_id": media_id,
        "media_length": record.size,
        "media_type": record.content_type,
        "upload_name": record.filename,
        "created_ts": record.created_ms,
        "last_access_ts": null,
        "quarantined_by": record.quarantined_by,
        "safe_from_quarantine": record.safe_from_quarantine,
    })
}

#[derive(Deserialize)]
struct MediaQuery {
    order_by: Option<String>,
}

async fn media(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
    Query(page): Query<Page>,
    Query(query): Query<MediaQuery>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let mut uploads = services.media.uploads_of(&user_id)?;
    match query.order_by.as_deref().unwrap_or("created_ts") {
        "created_ts" => {}
        "media_id" => uploads.sort_by(|a, b| a.0.cmp(&b.0)),
        "media_length" => uploads.sort_by_key(|(_, r)| r.size),
        "media_type" => uploads.sort_by(|a, b| a.1.content_type.cmp(&b.1.content_type)),
        "upload_name" => uploads.sort_by(|a, b| a.1.filename.cmp(&b.1.filename)),
        "quarantined_by" => uploads.sort_by(|a, b| a.1.quarantined_by.cmp(&b.1.quarantined_by)),
        "safe_from_quarantine" => uploads.sort_by_key(|(_, r)| r.safe_from_quarantine),
        other => return Err(unknown_order(other)),
    }
    if page.backwards()? {
        uploads.reverse();
    }
    let total = uploads.len();
    let (page, next_token) = page.slice(uploads, 100)?;
    let media: Vec<Value> = page.iter().map(|(id, r)| media_json(id, r)).collect();
    Ok(Json(listing(
        "media",
        media,
        total,
        next_token.map(Value::from),
    )))
}

async fn delete_media(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    let ids = services.media.upload_ids_of(&user_id)?;
    let deleted = services.media.delete(&ids).await?;
    Ok(Json(
        json!({ "total": deleted.len(), "deleted_media": deleted }),
    ))
}

async fn shadow_ban(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services.users.set_shadow_banned(&user_id, true)?;
    Ok(Json(json!({})))
}

async fn lift_shadow_ban(
    State(services): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let user_id = local_user(&services, &user_id)?;
    services.users.set_shadow_banned(&user_id, false)?;
    Ok(Json(json!({})))
}
