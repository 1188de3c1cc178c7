//! Rooms: list and search, details, members, state, history, blocking and deletion.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::{Admin, Page, known_room, parse_room_id, unknown_order};
use crate::api::client::message::{format_token, parse_token};
use crate::api::extract::{Path, Query};
use crate::api::ruma::{AppState, JsonBody, OptionalJsonBody};
use crate::error::{Error, Result};
use crate::service::admin::room_deletion::DeleteRequest;
use crate::service::admin::rooms::RoomDetails;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route("/_synapse/admin/v1/rooms", get(list))
        .route(
            "/_synapse/admin/v1/rooms/{room_id}",
            get(show).delete(delete_now),
        )
        .route("/_synapse/admin/v1/rooms/{room_id}/members", get(members))
        .route("/_synapse/admin/v1/rooms/{room_id}/state", get(state))
        .route("/_synapse/admin/v1/rooms/{room_id}/messages", get(messages))
        .route(
            "/_synapse/admin/v1/rooms/{room_id}/block",
            get(block_status).put(set_block),
        )
        .route(
            "/_synapse/admin/v2/rooms/{room_id}",
            axum::routing::delete(delete),
        )
        .route(
            "/_synapse/admin/v2/rooms/{room_id}/delete_status",
            get(room_delete_status),
        )
        .route(
            "/_synapse/admin/v2/rooms/delete_status/{delete_id}",
            get(delete_status),
        )
}

#[derive(Deserialize)]
struct ListQuery {
    search_term: Option<String>,
    order_by: Option<String>,
}

async fn list(
    State(services): State<AppState>,
    _: Admin,
    Query(page): Query<Page>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    let backwards = page.backwards()?;
    let search = query.search_term.as_deref().map(str::to_lowercase);
    let mut rooms = Vec::new();
    for room_id in services.room_ids()? {
        let Some(details) = services.room_details(&room_id)? else {
            continue;
        };
        let matches = search.as_deref().is_none_or(|needle| {
            [&details.name, &details.canonical_alias]
                .iter()
                .any(|field| {
                    field
                        .as_deref()
                        .is_some_and(|f| f.to_lowercase().contains(needle))
                })
                || details.room_id.as_str().to_lowercase().contains(needle)
        });
        if matches {
            rooms.push(details);
        }
    }
    sort_rooms(&mut rooms, query.order_by.as_deref().unwrap_or("name"))?;
    if backwards {
        rooms.reverse();
    }
    let total = rooms.len();
    let offset = page.from.unwrap_or(0);
    let limit = page.limit.unwrap_or(100);
    let (rooms, next) = page.slice(rooms, 100)?;
    let mut body = json!({ "rooms": rooms, "offset": offset, "total_rooms": total });
    if let Some(next) = next {
        body["next_batch"] = json!(next);
    }
    if offset > 0 {
        body["prev_batch"] = json!(offset.saturating_sub(limit));
    }
    Ok(Json(body))
}

fn sort_rooms(rooms: &mut [RoomDetails], order_by: &str) -> Result<()> {
    match order_by {
        // Synapse sorts by name with unnamed rooms last, then by id.
        "name" => rooms.sort_by(|a, b| {
            (a.name.is_none(), &a.name, &a.room_id).cmp(&(b.name.is_none(), &b.name, &b.room_id))
        }),
        "canonical_alias" => rooms.sort_by(|a, b| a.canonical_alias.cmp(&b.canonical_alias)),
        // Counts sort largest first, as in Synapse.
        "joined_members" | "size" => rooms.sort_by_key(|r| std::cmp::Reverse(r.joined_members)),
        "joined_local_members" => rooms.sort_by_key(|r| std::cmp::Reverse(r.joined_local_members)),
        "state_events" => rooms.sort_by_key(|r| std::cmp::Reverse(r.state_events)),
        "version" => rooms.sort_by(|a, b| a.version.cmp(&b.version)),
        "creator" => rooms.sort_by(|a, b| a.creator.cmp(&b.creator)),
        "encryption" => rooms.sort_by(|a, b| a.encryption.cmp(&b.encryption)),
        "federatable" => rooms.sort_by_key(|r| r.federatable),
        "public" => rooms.sort_by_key(|r| r.public),
        "join_rules" => rooms.sort_by(|a, b| a.join_rules.cmp(&b.join_rules)),
        "guest_access" => rooms.sort_by(|a, b| a.guest_access.cmp(&b.guest_access)),
        "history_visibility" => {
            rooms.sort_by(|a, b| a.history_visibility.cmp(&b.history_visibility))
        }
        other => return Err(unknown_order(other)),
    }
    Ok(())
}

async fn show(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let details = services
        .room_details(&room_id)?
        .ok_or_else(|| Error::not_found("Room not found"))?;
    Ok(Json(
        serde_json::to_value(details).map_err(Error::internal)?,
    ))
}

async fn members(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let members = services.rooms.joined_members(&room_id)?;
    Ok(Json(json!({ "total": members.len(), "members": members })))
}

async fn state(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let state: Vec<Value> = services
        .current_state(&room_id)?
        .iter()
        .map(|pdu| pdu.client_event(&room_id, None, None))
        .collect();
    Ok(Json(json!({ "state": state })))
}

#[derive(Deserialize)]
struct MessagesQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<u64>,
    dir: Option<String>,
}

/// Most events one page of `/messages` returns.
const MAX_MESSAGES: u64 = 1000;

/// A room's history as an admin sees it: every event, whatever the room's visibility rules.
async fn messages(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
    Query(query): Query<MessagesQuery>,
) -> Result<Json<Value>> {
    let room_id = known_room(&services, &room_id)?;
    let room = services.rooms.existing_room(&room_id)?;
    let forward = match query.dir.as_deref() {
        None | Some("b") => false,
        Some("f") => true,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "Unknown direction {other}: use f or b"
            )));
        }
    };
    let limit = query.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_MESSAGES {
        return Err(Error::invalid_param(format!(
            "limit must be between 1 and {MAX_MESSAGES}"
        )));
    }
    let from = query.from.as_deref().map(parse_token).transpose()?;
    let to = query.to.as_deref().map(parse_token).transpose()?;
    // Tokens are boundaries, as in the client API: backwards from `p` reads below `p`.
    let start = from.unwrap_or(if forward {
        0
    } else {
        services.rooms.current_position() + 1
    });
    let cursor = if forward {
        start
    } else {
        start.saturating_sub(1)
    };
    if !forward && start == 0 {
        return Ok(Json(json!({ "chunk": [], "start": format_token(0) })));
    }
    let events = services.rooms.timeline(
        &room,
        Some(cursor),
        forward,
        usize::try_from(limit).unwrap_or(10),
    )?;
    let mut chunk = Vec::new();
    let mut end = None;
    for pdu in &events {
        if let Some(to) = to
            && ((forward && pdu.position >= to) || (!forward && pdu.position < to))
        {
            break;
        }
        end = Some(if forward {
            pdu.position + 1
        } else {
            pdu.position
        });
        chunk.push(pdu.client_event(&room_id, None, None));
    }
    let mut body = json!({ "chunk": chunk, "start": format_token(start) });
    if let Some(end) = end {
        body["end"] = json!(format_token(end));
    }
    Ok(Json(body))
}

async fn block_status(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = parse_room_id(&room_id)?;
    let moderation = services.room_moderation(&room_id)?;
    let mut body = json!({ "block": moderation.blocked });
    if let Some(user) = moderation.blocked_by {
        body["user_id"] = json!(user);
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct BlockBody {
    block: bool,
}

async fn set_block(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(room_id): Path<String>,
    JsonBody(body): JsonBody<BlockBody>,
) -> Result<Json<Value>> {
    let room_id = parse_room_id(&room_id)?;
    services.set_room_blocked(&room_id, body.block, Some(&admin.user_id))?;
    Ok(Json(json!({ "block": body.block })))
}

#[derive(Deserialize)]
#[serde(default)]
struct DeleteBody {
    new_room_user_id: Option<String>,
    room_name: Option<String>,
    message: Option<String>,
    block: bool,
    purge: bool,
    /// Synapse refuses to purge a room local users are still in unless forced; here everyone
    /// is removed first, so a purge always goes ahead. Accepted for compatibility.
    #[allow(dead_code)]
    force_purge: bool,
}

impl Default for DeleteBody {
    fn default() -> Self {
        DeleteBody {
            new_room_user_id: None,
            room_name: None,
            message: None,
            block: false,
            purge: true,
            force_purge: false,
        }
    }
}

impl DeleteBody {
    fn request(self) -> Result<DeleteRequest> {
        let new_room_user_id = self
            .new_room_user_id
            .map(|id| {
                ruma::UserId::parse(&id)
                    .map_err(|e| Error::invalid_param(format!("Invalid new_room_user_id: {e}")))
            })
            .transpose()?;
        Ok(DeleteRequest {
            block: self.block,
            purge: self.purge,
            new_room_user_id,
            room_name: self.room_name,
            message: self.message,
        })
    }
}

/// `DELETE /v2/rooms/{roomId}`: starts the deletion and answers with its `delete_id`.
async fn delete(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(room_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<DeleteBody>,
) -> Result<Json<Value>> {
    let room_id = parse_room_id(&room_id)?;
    let delete_id = services.start_room_deletion(&admin.user_id, &room_id, body.request()?)?;
    Ok(Json(json!({ "delete_id": delete_id })))
}

/// `DELETE /v1/rooms/{roomId}`: the older form, which answers once the room is gone.
async fn delete_now(
    State(services): State<AppState>,
    Admin(admin): Admin,
    Path(room_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<DeleteBody>,
) -> Result<Json<Value>> {
    let room_id = parse_room_id(&room_id)?;
    let request = body.request()?;
    services.check_room_deletion(&room_id, &request)?;
    let result = services
        .delete_room(Some(&admin.user_id), &room_id, request, |_| {})
        .await?;
    Ok(Json(serde_json::to_value(result).map_err(Error::internal)?))
}

async fn room_delete_status(
    State(services): State<AppState>,
    _: Admin,
    Path(room_id): Path<String>,
) -> Result<Json<Value>> {
    let room_id = parse_room_id(&room_id)?;
    let results = services.room_deletions.of_room(&room_id);
    if results.is_empty() {
        return Err(Error::not_found("No delete task for this room"));
    }
    Ok(Json(json!({ "results": results })))
}

async fn delete_status(
    State(services): State<AppState>,
    _: Admin,
    Path(delete_id): Path<String>,
) -> Result<Json<Value>> {
    let status = services
        .room_deletions
        .by_id(&delete_id)
        .ok_or_else(|| Error::not_found("Delete id not found"))?;
    Ok(Json(serde_json::to_value(status).map_err(Error::internal)?))
}
