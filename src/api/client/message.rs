//! Messages: send (idempotent per device and transaction id), redact, fetch one event, and
//! page through history with `/messages`.

use axum::extract::State;
use ruma::api::Direction;
use ruma::api::client::message::{get_message_events, send_message_event};
use ruma::api::client::redact::redact_event;
use ruma::api::client::room::get_room_event;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::serde::Raw;
use ruma::{OwnedEventId, RoomId, UserId};
use serde_json::{Value, json};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::NewEvent;
use crate::service::rooms::pdu::{StoredPdu, Transaction};
use crate::service::shadow_ban::unsent_event_id;

/// Most events one `/messages` page returns, whatever the client asks for.
const MAX_PAGE: usize = 1000;
/// Events examined per page at most, so a long run of invisible history cannot stall a request.
const MAX_SCAN: usize = 5000;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(send)
        .ruma(redact)
        .ruma(get_event)
        .ruma(messages)
}

async fn send(
    State(services): State<AppState>,
    request: Ruma<send_message_event::v3::Request>,
) -> Result<send_message_event::v3::Response> {
    let identity = request.identity()?;
    let body = &request.body;
    let content: Value =
        serde_json::from_str(body.body.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
    let kind = TimelineEventType::from(body.event_type.to_string());
    let transaction = Transaction {
        device_id: identity.device_id.to_string(),
        txn_id: body.txn_id.to_string(),
    };
    let event_id = send_once(
        &services,
        &body.room_id,
        &identity.user_id,
        NewEvent::message(kind, content),
        transaction,
    )
    .await?;
    Ok(send_message_event::v3::Response::new(event_id))
}

/// Appends an event unless this device already sent one with the same transaction id, in which
/// case the earlier event's id is the answer (clients retry sends after network errors).
async fn send_once(
    services: &Services,
    room_id: &RoomId,
    sender: &UserId,
    new: NewEvent,
    transaction: Transaction,
) -> Result<OwnedEventId> {
    if let Some(event_id) = services.rooms.transaction_event(sender, &transaction)? {
        return Ok(event_id);
    }
    let room = services.rooms.existing_room(room_id)?;
    services.rooms.require_joined(room_id, sender)?;
    services.check_relation(&room, sender, &new.kind.to_string(), &new.content)?;
    if services.users.is_shadow_banned(sender)? {
        return unsent_event_id();
    }
    // `append` checks the transaction id again under the room's lock, so two racing retries
    // still make one event.
    services
        .append_event(room_id, sender, new, Some(transaction))
        .await
}

async fn redact(
    State(services): State<AppState>,
    request: Ruma<redact_event::v3::Request>,
) -> Result<redact_event::v3::Response> {
    let identity = request.identity()?;
    let body = &request.body;
    let room = services.rooms.existing_room(&body.room_id)?;
    services
        .rooms
        .require_joined(&body.room_id, &identity.user_id)?;
    let target = services
        .rooms
        .pdu_in_room(&room, &body.event_id)?
        .ok_or_else(|| Error::not_found(format!("Unknown event {}", body.event_id)))?;
    if !services
        .rooms
        .may_redact(&room, &identity.user_id, &target)?
    {
        return Err(Error::forbidden("You may not redact this event"));
    }
    if services.users.is_shadow_banned(&identity.user_id)? {
        return Ok(redact_event::v3::Response::new(unsent_event_id()?));
    }
    let mut content = json!({});
    if let Some(reason) = &body.reason {
        content["reason"] = json!(reason);
    }
    let new = NewEvent {
        kind: TimelineEventType::RoomRedaction,
        content,
        state_key: None,
        redacts: Some(body.event_id.clone()),
    };
    let transaction = Transaction {
        device_id: identity.device_id.to_string(),
        txn_id: body.txn_id.to_string(),
    };
    let event_id = send_once(
        &services,
        &body.room_id,
        &identity.user_id,
        new,
        transaction,
    )
    .await?;
    services
        .rooms
        .apply_redaction(&room, &body.event_id, &event_id)?;
    Ok(redact_event::v3::Response::new(event_id))
}

async fn get_event(
    State(services): State<AppState>,
    request: Ruma<get_room_event::v3::Request>,
) -> Result<get_room_event::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let room = services.rooms.existing_room(&body.room_id)?;
    let pdu = services
        .rooms
        .visible_event(&body.room_id, &room, user, &body.event_id)?;
    let event = client_event(&services, &body.room_id, user, &pdu)?;
    Ok(get_room_event::v3::Response::new(Raw::from_json(event)))
}

async fn messages(
    State(services): State<AppState>,
    request: Ruma<get_message_events::v3::Request>,
) -> Result<get_message_events::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (room, current) = services.rooms.open_history(&body.room_id, user)?;
    let ignored = services.account_data.ignored_users(user)?;
    let forward = body.dir == Direction::Forward;
    let from = body.from.as_deref().map(parse_token).transpose()?;
    let to = body.to.as_deref().map(parse_token).transpose()?;
    let limit = usize::try_from(u64::from(body.limit))
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE);

    // Tokens are boundaries: backwards from `p` reads positions below `p`, forwards from `p`
    // reads `p` and above.
    let mut cursor = match (from, forward) {
        (Some(p), true) => Some(p),
        (Some(p), false) => Some(p.saturating_sub(1)),
        (None, true) => None,
        (None, false) => None,
    };
    let start = from.unwrap_or(if forward {
        0
    } else {
        services.rooms.current_position() + 1
    });
    let mut chunk = Vec::new();
    // Lazy-loading: each sender's member event as of their first event in the chunk.
    let mut senders: std::collections::BTreeMap<String, u64> = Default::default();
    let mut scanned = 0;
    let mut end = None;
    'pages: while chunk.len() < limit && scanned < MAX_SCAN {
        if !forward && from == Some(0) {
            break;
        }
        let page = services
            .rooms
            .timeline(&room, cursor, forward, limit.min(100))?;
        if page.is_empty() {
            break;
        }
        for pdu in &page {
            scanned += 1;
            if let Some(to) = to
                && ((forward && pdu.position >= to) || (!forward && pdu.position < to))
            {
                break 'pages;
            }
            end = Some(if forward {
                pdu.position + 1
            } else {
                pdu.position
            });
            let from_ignored = pdu
                .json
                .get("sender")
                .and_then(|s| s.as_str())
                .is_some_and(|s| ignored.contains(s));
            if !from_ignored
                && pdu.matches(&body.filter)
                && services.rooms.can_see(user, pdu, current.as_ref())?
            {
                chunk.push(Raw::from_json(client_event(
                    &services,
                    &body.room_id,
                    user,
                    pdu,
                )?));
                if let Some(sender) = pdu.json.get("sender").and_then(|s| s.as_str()) {
                    senders.entry(sender.to_owned()).or_insert(pdu.state_before);
                }
                if chunk.len() >= limit {
                    break 'pages;
                }
            }
        }
        let Some(last) = page.last() else { break };
        cursor = if forward {
            Some(last.position + 1)
        } else if last.position == 0 {
            break;
        } else {
            Some(last.position - 1)
        };
    }
    let mut response = get_message_events::v3::Response::new();
    if !body.filter.lazy_load_options.is_disabled() {
        for (sender, snapshot) in senders {
            if let Some(member) =
                services
                    .rooms
                    .state_event_at(snapshot, &StateEventType::RoomMember, &sender)?
            {
                response.state.push(Raw::from_json(client_event(
                    &services,
                    &body.room_id,
                    user,
                    &member,
                )?));
            }
        }
    }
    response.start = format_token(start);
    response.end = end.map(format_token);
    response.chunk = chunk;
    Ok(response)
}

/// The client form of an event, with `prev_content` for state events that replaced others and
/// the aggregations of events relating to it (`unsigned.m.relations`).
pub fn client_event(
    services: &Services,
    room_id: &RoomId,
    viewer: &UserId,
    pdu: &StoredPdu,
) -> Result<Box<serde_json::value::RawValue>> {
    let prev_content = match &pdu.replaces_state {
        Some(previous) => services.rooms.pdu(previous)?.map(|p| p.content()),
        None => None,
    };
    let mut event = pdu.client_event(room_id, Some(viewer), prev_content);
    if let Some(bundle) = services.bundled_relations(room_id, pdu, Some(viewer))? {
        event["unsigned"]["m.relations"] = bundle;
    }
    serde_json::value::to_raw_value(&event).map_err(Error::internal)
}

/// Pagination tokens are `t<position>`; sync tokens (`s<position>`) are accepted too.
pub fn parse_token(token: &str) -> Result<u64> {
    token
        .strip_prefix('t')
        .or_else(|| token.strip_prefix('s'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::invalid_param(format!("Invalid pagination token `{token}`")))
}

pub fn format_token(position: u64) -> String {
    format!("t{position}")
}
