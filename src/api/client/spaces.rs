//! `GET /v1/rooms/{roomId}/hierarchy`.

use axum::extract::State;
use ruma::api::client::space::get_hierarchy;
use serde_json::json;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(hierarchy)
}

async fn hierarchy(
    State(services): State<AppState>,
    request: Ruma<get_hierarchy::v1::Request>,
) -> Result<get_hierarchy::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let skip = body
        .from
        .as_deref()
        .map(|token| {
            token
                .parse::<usize>()
                .map_err(|_| Error::invalid_param(format!("Invalid from token `{token}`")))
        })
        .transpose()?
        .unwrap_or(0);
    let limit = crate::api::client::page_limit(body.limit, DEFAULT_LIMIT, MAX_LIMIT);
    let max_depth = body
        .max_depth
        .map(|d| usize::try_from(u64::from(d)).unwrap_or(usize::MAX));
    let (rooms, more) = services.hierarchy(
        user,
        &body.room_id,
        body.suggested_only,
        max_depth,
        skip,
        limit,
    )?;
    let count = rooms.len();
    let mut chunks = Vec::with_capacity(count);
    for room in rooms {
        let s = room.summary;
        let chunk = json!({
            "room_id": s.room_id,
            "name": s.name,
            "topic": s.topic,
            "canonical_alias": s.canonical_alias,
            "avatar_url": s.avatar_url,
            "num_joined_members": s.joined_members,
            "world_readable": s.world_readable,
            "guest_can_join": s.guest_can_join,
            "join_rule": s.join_rule,
            "room_type": s.room_type,
            "children_state": room.children_state,
        });
        chunks.push(serde_json::from_value(strip_nulls(chunk)).map_err(Error::internal)?);
    }
    let mut response = get_hierarchy::v1::Response::new();
    response.rooms = chunks;
    response.next_batch = more.then(|| (skip + count).to_string());
    Ok(response)
}

fn strip_nulls(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    value
}
