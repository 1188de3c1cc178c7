//! Aliases and the room directory.

use axum::extract::State;
use ruma::api::client::alias::{create_alias, delete_alias, get_alias};
use ruma::api::client::directory::{
    get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility,
};
use ruma::api::client::room::{Visibility, aliases};
use ruma::directory::{PublicRoomsChunk, PublicRoomsChunkInit};
use ruma::room::JoinRuleKind;
use ruma::{OwnedServerName, UInt};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::directory::PublicRoom;

/// Largest directory page.
const MAX_PAGE: usize = 500;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(create)
        .ruma(get)
        .ruma(delete)
        .ruma(room_aliases)
        .ruma(get_visibility)
        .ruma(set_visibility)
        .ruma(public_rooms)
        .ruma(public_rooms_filtered)
}

async fn create(
    State(services): State<AppState>,
    request: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    let user = &request.identity()?.user_id;
    services.create_alias(user, &request.body.room_alias, &request.body.room_id)?;
    Ok(create_alias::v3::Response::new())
}

async fn get(
    State(services): State<AppState>,
    request: Ruma<get_alias::v3::Request>,
) -> Result<get_alias::v3::Response> {
    let alias = &request.body.room_alias;
    let room_id = services
        .resolve_alias(alias)?
        .ok_or_else(|| Error::not_found(format!("Alias {alias} not found")))?;
    Ok(get_alias::v3::Response::new(
        room_id,
        vec![services.server_name.clone()],
    ))
}

async fn delete(
    State(services): State<AppState>,
    request: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    let user = &request.identity()?.user_id;
    services.delete_alias(user, &request.body.room_alias)?;
    Ok(delete_alias::v3::Response::new())
}

async fn room_aliases(
    State(services): State<AppState>,
    request: Ruma<aliases::v3::Request>,
) -> Result<aliases::v3::Response> {
    let user = &request.identity()?.user_id;
    let room_id = &request.body.room_id;
    let room = services.rooms.existing_room(room_id)?;
    services.rooms.readable_snapshot(room_id, &room, user)?;
    Ok(aliases::v3::Response::new(services.room_aliases(room_id)?))
}

async fn get_visibility(
    State(services): State<AppState>,
    request: Ruma<get_room_visibility::v3::Request>,
) -> Result<get_room_visibility::v3::Response> {
    services.rooms.existing_room(&request.body.room_id)?;
    let visibility = if services.is_published(&request.body.room_id)? {
        Visibility::Public
    } else {
        Visibility::Private
    };
    Ok(get_room_visibility::v3::Response::new(visibility))
}

async fn set_visibility(
    State(services): State<AppState>,
    request: Ruma<set_room_visibility::v3::Request>,
) -> Result<set_room_visibility::v3::Response> {
    let user = &request.identity()?.user_id;
    let public = match &request.body.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        other => {
            return Err(Error::bad_json(format!(
                "Unknown visibility {}",
                other.as_str()
            )));
        }
    };
    services.set_published(user, &request.body.room_id, public)?;
    Ok(set_room_visibility::v3::Response::new())
}

async fn public_rooms(
    State(services): State<AppState>,
    request: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let body = &request.body;
    let (chunk, next, prev, total) = directory_page(
        &services,
        body.server.as_ref(),
        None,
        body.limit,
        body.since.as_deref(),
    )?;
    let mut response = get_public_rooms::v3::Response::new(chunk);
    (
        response.next_batch,
        response.prev_batch,
        response.total_room_count_estimate,
    ) = (next, prev, total);
    Ok(response)
}

async fn public_rooms_filtered(
    State(services): State<AppState>,
    request: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    request.identity()?;
    let body = &request.body;
    let search = body.filter.generic_search_term.as_deref();
    let page = directory_page(
        &services,
        body.server.as_ref(),
        search,
        body.limit,
        body.since.as_deref(),
    )?;
    let mut response = get_public_rooms_filtered::v3::Response::new();
    (
        response.chunk,
        response.next_batch,
        response.prev_batch,
        response.total_room_count_estimate,
    ) = page;
    Ok(response)
}

type Page = (
    Vec<PublicRoomsChunk>,
    Option<String>,
    Option<String>,
    Option<UInt>,
);

/// One page of the directory. `since` tokens are `p<offset>`.
fn directory_page(
    services: &Services,
    server: Option<&OwnedServerName>,
    search: Option<&str>,
    limit: Option<UInt>,
    since: Option<&str>,
) -> Result<Page> {
    if server.is_some_and(|server| *server != services.server_name) {
        return Err(Error::not_found(
            "Only this server's directory is available",
        ));
    }
    let offset = match since {
        None => 0,
        Some(token) => token
            .strip_prefix('p')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Error::invalid_param(format!("Invalid directory token `{token}`")))?,
    };
    let limit = limit
        .map_or(MAX_PAGE, |l| {
            usize::try_from(u64::from(l)).unwrap_or(MAX_PAGE)
        })
        .clamp(1, MAX_PAGE);
    let rooms = services.public_rooms(search)?;
    let total = rooms.len();
    let chunk = rooms
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(to_chunk)
        .collect();
    let next = (offset + limit < total).then(|| format!("p{}", offset + limit));
    let prev = (offset > 0).then(|| format!("p{}", offset.saturating_sub(limit)));
    Ok((chunk, next, prev, UInt::new(total as u64)))
}

fn to_chunk(room: PublicRoom) -> PublicRoomsChunk {
    let mut chunk: PublicRoomsChunk = PublicRoomsChunkInit {
        num_joined_members: UInt::new(room.joined_members).unwrap_or_default(),
        room_id: room.room_id,
        world_readable: room.world_readable,
        guest_can_join: room.guest_can_join,
    }
    .into();
    chunk.name = room.name;
    chunk.topic = room.topic;
    chunk.canonical_alias = room.canonical_alias;
    chunk.avatar_url = room.avatar_url.map(Into::into);
    chunk.join_rule = JoinRuleKind::from(room.join_rule.as_str());
    chunk.room_type = room.room_type.map(Into::into);
    chunk
}
