//! `POST /search`: room events by words of their body, name or topic.

use axum::extract::State;
use ruma::api::client::search::search_events::{
    self,
    v3::{GroupingKey, OrderBy, SearchKeys},
};
use ruma::events::StateEventType;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::api::client::message::{client_event, format_token};
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::search::{FIELDS, SearchQuery, parse_batch};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
const MAX_CONTEXT: usize = 20;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(search)
}

async fn search(
    State(services): State<AppState>,
    request: Ruma<search_events::v3::Request>,
) -> Result<search_events::v3::Response> {
    let user = request.identity()?.user_id.clone();
    let body = &request.body;
    let Some(criteria) = &body.search_categories.room_events else {
        return categories(json!({}));
    };
    let by_rank = match &criteria.order_by {
        None | Some(OrderBy::Rank) => true,
        Some(OrderBy::Recent) => false,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "Unknown order_by `{}`",
                other.as_str()
            )));
        }
    };
    let fields = match &criteria.keys {
        None => FIELDS.iter().map(|(_, _, field)| *field).collect(),
        Some(keys) => {
            let mut fields = Vec::new();
            for key in keys {
                fields.push(match key {
                    SearchKeys::ContentBody => "content.body",
                    SearchKeys::ContentName => "content.name",
                    SearchKeys::ContentTopic => "content.topic",
                    other => {
                        return Err(Error::invalid_param(format!(
                            "Unknown search key `{}`",
                            other.as_str()
                        )));
                    }
                });
            }
            fields
        }
    };
    let filter = &criteria.filter;
    let rooms = services
        .rooms
        .joined_room_ids(&user)?
        .into_iter()
        .filter(|room| {
            filter
                .rooms
                .as_ref()
                .is_none_or(|rooms| rooms.contains(room))
        })
        .filter(|room| !filter.not_rooms.contains(room))
        .collect();
    let offset = body
        .next_batch
        .as_deref()
        .map(parse_batch)
        .transpose()?
        .unwrap_or(0);
    let limit = crate::api::client::page_limit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT);
    // One more than the page, to know whether another page follows.
    let (hits, estimate, words) = services.search(
        &user,
        SearchQuery {
            term: &criteria.search_term,
            fields,
            rooms,
            by_rank,
        },
        offset + limit + 1,
        |pdu| pdu.matches(filter),
    )?;
    let more = hits.len() > offset + limit;
    let page: Vec<_> = hits.iter().skip(offset).take(limit).collect();
    // The spec's `count` is an estimate: matches in the index, before visibility and filters.
    let count = estimate.max(offset + page.len());
    let next_batch = more.then(|| format!("o{}", offset + page.len()));

    let context = &criteria.event_context;
    let before = usize::try_from(u64::from(context.before_limit))
        .unwrap_or(0)
        .min(MAX_CONTEXT);
    let after = usize::try_from(u64::from(context.after_limit))
        .unwrap_or(0)
        .min(MAX_CONTEXT);
    let mut results = Vec::new();
    for hit in &page {
        let event: Value =
            serde_json::from_str(client_event(&services, &hit.room_id, &user, &hit.pdu)?.get())
                .map_err(Error::internal)?;
        let mut result = json!({"rank": hit.rank, "result": event});
        if before > 0 || after > 0 || context.include_profile {
            result["context"] = event_context(
                &services,
                &user,
                hit,
                before,
                after,
                context.include_profile,
            )?;
        }
        results.push(result);
    }

    let mut groups = Map::new();
    for grouping in &criteria.groupings.group_by {
        let (name, key_of): (&str, fn(&crate::service::search::Hit) -> String) = match grouping.key
        {
            Some(GroupingKey::RoomId) => ("room_id", |hit| hit.room_id.to_string()),
            Some(GroupingKey::Sender) => ("sender", |hit| {
                hit.pdu
                    .json
                    .get("sender")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned()
            }),
            _ => continue,
        };
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for hit in &page {
            by_key
                .entry(key_of(hit))
                .or_default()
                .push(hit.pdu.event_id.to_string());
        }
        let mut group = Map::new();
        for (order, (key, results)) in by_key.into_iter().enumerate() {
            group.insert(key, json!({"results": results, "order": order}));
        }
        groups.insert(name.to_owned(), Value::Object(group));
    }

    let mut state = Map::new();
    if criteria.include_state == Some(true) {
        for hit in &page {
            let room_id = hit.room_id.to_string();
            if state.contains_key(&room_id) {
                continue;
            }
            let room = services.rooms.existing_room(&hit.room_id)?;
            let mut events = Vec::new();
            for pdu in services.rooms.full_state_at(room.snapshot)? {
                let event: Value =
                    serde_json::from_str(client_event(&services, &hit.room_id, &user, &pdu)?.get())
                        .map_err(Error::internal)?;
                events.push(event);
            }
            state.insert(room_id, Value::Array(events));
        }
    }

    let mut room_events = json!({
        "count": count,
        "results": results,
        "highlights": words,
        "groups": groups,
    });
    if let Some(next) = next_batch {
        room_events["next_batch"] = json!(next);
    }
    if !state.is_empty() {
        room_events["state"] = Value::Object(state);
    }
    categories(json!({ "room_events": room_events }))
}

fn categories(value: Value) -> Result<search_events::v3::Response> {
    let categories = serde_json::from_value(value).map_err(Error::internal)?;
    Ok(search_events::v3::Response::new(categories))
}

/// Events around a hit the searcher may see, and the senders' profiles when asked for.
fn event_context(
    services: &Services,
    user: &ruma::UserId,
    hit: &crate::service::search::Hit,
    before: usize,
    after: usize,
    include_profile: bool,
) -> Result<Value> {
    let room = services.rooms.existing_room(&hit.room_id)?;
    let current = services.rooms.current_membership(&hit.room_id, user)?;
    let position = hit.pdu.position;
    let around = |from: Option<u64>,
                  forward: bool,
                  limit: usize|
     -> Result<Vec<crate::service::rooms::pdu::StoredPdu>> {
        let Some(from) = from else {
            return Ok(Vec::new());
        };
        let mut seen = Vec::new();
        for pdu in services.rooms.timeline(&room, Some(from), forward, limit)? {
            if services.rooms.can_see(user, &pdu, current.as_ref())? {
                seen.push(pdu);
            }
        }
        Ok(seen)
    };
    let events_before = around(position.checked_sub(1), false, before)?;
    let events_after = around(Some(position + 1), true, after)?;
    let render = |pdus: &[crate::service::rooms::pdu::StoredPdu]| -> Result<Vec<Value>> {
        pdus.iter()
            .map(|pdu| {
                serde_json::from_str(client_event(services, &hit.room_id, user, pdu)?.get())
                    .map_err(Error::internal)
            })
            .collect()
    };
    let mut context = json!({
        "events_before": render(&events_before)?,
        "events_after": render(&events_after)?,
        "start": format_token(events_before.last().map_or(position, |pdu| pdu.position)),
        "end": format_token(events_after.last().map_or(position + 1, |pdu| pdu.position + 1)),
    });
    if include_profile {
        let mut profiles = Map::new();
        for pdu in events_before
            .iter()
            .chain(std::iter::once(&hit.pdu))
            .chain(&events_after)
        {
            let Some(sender) = pdu.json.get("sender").and_then(|s| s.as_str()) else {
                continue;
            };
            if let Some(member) = services.rooms.state_event_at(
                pdu.state_before,
                &StateEventType::RoomMember,
                sender,
            )? {
                let content = member.content();
                let mut profile = Map::new();
                for key in ["displayname", "avatar_url"] {
                    if let Some(value) = content.get(key).filter(|v| v.is_string()) {
                        profile.insert(key.to_owned(), value.clone());
                    }
                }
                profiles.insert(sender.to_owned(), Value::Object(profile));
            }
        }
        context["profile_info"] = Value::Object(profiles);
    }
    Ok(context)
}
