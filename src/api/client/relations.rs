//! `GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]` and
//! `GET /v1/rooms/{roomId}/threads`.

use axum::extract::State;
use ruma::api::Direction;
use ruma::api::client::relations::{
    get_relating_events, get_relating_events_with_rel_type,
    get_relating_events_with_rel_type_and_event_type,
};
use ruma::api::client::threads::get_threads::{self, v1::IncludeThreads};
use ruma::serde::Raw;
use ruma::{EventId, RoomId, UInt, UserId};

use crate::api::client::message::{client_event, format_token, parse_token};
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;
use crate::service::Services;
use crate::service::relations::RelatedPage;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(all)
        .ruma(by_rel_type)
        .ruma(by_rel_and_event_type)
        .ruma(threads)
}

fn limit_of(limit: Option<UInt>) -> usize {
    crate::api::client::page_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
}

/// The shared query of the three `/relations` forms.
struct Query<'a> {
    room_id: &'a RoomId,
    event_id: &'a EventId,
    rel_type: Option<String>,
    event_type: Option<String>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    limit: Option<UInt>,
    dir: Direction,
    recurse: bool,
}

/// The related events as client events, and the `next_batch` token.
fn related<T>(
    services: &Services,
    user: &UserId,
    query: Query<'_>,
) -> Result<(Vec<Raw<T>>, Option<String>, bool)> {
    let forward = query.dir == Direction::Forward;
    let page = services.relations(
        query.room_id,
        user,
        query.event_id,
        query.rel_type.as_deref(),
        query.event_type.as_deref(),
        query.from.map(parse_token).transpose()?,
        query.to.map(parse_token).transpose()?,
        limit_of(query.limit),
        forward,
        query.recurse,
    )?;
    let RelatedPage { events, next } = page;
    let chunk = events
        .iter()
        .map(|pdu| client_event(services, query.room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<_>>()?;
    Ok((chunk, next.map(format_token), query.recurse))
}

async fn all(
    State(services): State<AppState>,
    request: Ruma<get_relating_events::v1::Request>,
) -> Result<get_relating_events::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (chunk, next, recursed) = related(
        &services,
        user,
        Query {
            room_id: &body.room_id,
            event_id: &body.event_id,
            rel_type: None,
            event_type: None,
            from: body.from.as_deref(),
            to: body.to.as_deref(),
            limit: body.limit,
            dir: body.dir,
            recurse: body.recurse,
        },
    )?;
    let mut response = get_relating_events::v1::Response::new(chunk);
    response.next_batch = next;
    response.recursion_depth = recursed.then(|| UInt::from(3u32));
    Ok(response)
}

async fn by_rel_type(
    State(services): State<AppState>,
    request: Ruma<get_relating_events_with_rel_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (chunk, next, recursed) = related(
        &services,
        user,
        Query {
            room_id: &body.room_id,
            event_id: &body.event_id,
            rel_type: Some(body.rel_type.to_string()),
            event_type: None,
            from: body.from.as_deref(),
            to: body.to.as_deref(),
            limit: body.limit,
            dir: body.dir,
            recurse: body.recurse,
        },
    )?;
    let mut response = get_relating_events_with_rel_type::v1::Response::new(chunk);
    response.next_batch = next;
    response.recursion_depth = recursed.then(|| UInt::from(3u32));
    Ok(response)
}

async fn by_rel_and_event_type(
    State(services): State<AppState>,
    request: Ruma<get_relating_events_with_rel_type_and_event_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type_and_event_type::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (chunk, next, recursed) = related(
        &services,
        user,
        Query {
            room_id: &body.room_id,
            event_id: &body.event_id,
            rel_type: Some(body.rel_type.to_string()),
            event_type: Some(body.event_type.to_string()),
            from: body.from.as_deref(),
            to: body.to.as_deref(),
            limit: body.limit,
            dir: body.dir,
            recurse: body.recurse,
        },
    )?;
    let mut response = get_relating_events_with_rel_type_and_event_type::v1::Response::new(chunk);
    response.next_batch = next;
    response.recursion_depth = recursed.then(|| UInt::from(3u32));
    Ok(response)
}

async fn threads(
    State(services): State<AppState>,
    request: Ruma<get_threads::v1::Request>,
) -> Result<get_threads::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let page = services.threads(
        &body.room_id,
        user,
        body.include == IncludeThreads::Participated,
        body.from.as_deref().map(parse_token).transpose()?,
        limit_of(body.limit),
    )?;
    let chunk = page
        .events
        .iter()
        .map(|pdu| client_event(&services, &body.room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<_>>()?;
    let mut response = get_threads::v1::Response::new(chunk);
    response.next_batch = page.next.map(format_token);
    Ok(response)
}
