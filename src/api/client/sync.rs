//! `GET /v3/sync`.

use axum::extract::State;
use ruma::api::client::sync::sync_events::v3::{
    self, Filter, InviteState, InvitedRoom, JoinedRoom, KnockState, KnockedRoom, LeftRoom,
    RoomSummary, State as RoomState, StateEvents, Timeline,
};
use ruma::serde::Raw;
use ruma::{RoomId, UInt, UserId};
use serde_json::{Value, json};
use std::time::Duration;

use crate::api::client::message::{client_event, format_token};
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::sync::{RoomUpdate, SyncRequest};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(sync)
}

async fn sync(
    State(services): State<AppState>,
    request: Ruma<v3::Request>,
) -> Result<v3::Response> {
    let identity = request.identity()?.clone();
    let user = identity.user_id.clone();
    let body = request.body;
    let (since, since_typing, since_presence) =
        match body.since.as_deref().map(parse_since).transpose()? {
            Some((since, typing, presence)) => (Some(since), typing, presence),
            None => (None, 0, 0),
        };
    let filter = match body.filter {
        None => Default::default(),
        Some(Filter::FilterDefinition(definition)) => definition,
        Some(Filter::FilterId(id)) if id.trim_start().starts_with('{') => {
            return Err(Error::bad_json("The filter is not valid JSON"));
        }
        Some(Filter::FilterId(id)) => services.filters.get(&user, &id)?,
        Some(_) => return Err(Error::bad_json("Unsupported filter")),
    };
    let result = services
        .sync(
            &user,
            SyncRequest {
                device: identity.device_id.clone(),
                since,
                since_typing,
                since_presence,
                set_presence: body.set_presence.clone(),
                full_state: body.full_state,
                timeout: body.timeout.unwrap_or(Duration::ZERO),
                filter,
                state_after: body.use_state_after,
            },
        )
        .await?;

    let mut response = v3::Response::new(format!(
        "s{}_{}_{}",
        result.next_batch, result.next_typing, result.next_presence
    ));
    response.presence.events = raw_list(&result.presence)?;
    for (room_id, update) in result.joined {
        let mut joined = JoinedRoom::new();
        joined.timeline = timeline(&services, &room_id, &user, &update)?;
        joined.state = state(&services, &room_id, &user, &update, body.use_state_after)?;
        joined.account_data.events = account_data(&update.account_data)?;
        joined.unread_notifications.notification_count = UInt::new(update.unread.0);
        joined.unread_notifications.highlight_count = UInt::new(update.unread.1);
        let mut ephemeral = Vec::new();
        if let Some(typing) = &update.typing {
            ephemeral.push(json!({"type": "m.typing", "content": {"user_ids": typing}}));
        }
        if let Some(receipts) = &update.receipts {
            ephemeral.push(json!({"type": "m.receipt", "content": receipts}));
        }
        joined.ephemeral.events = raw_list(&ephemeral)?;
        if let Some((joined_count, invited_count, heroes)) = update.summary {
            let mut summary = RoomSummary::new();
            summary.joined_member_count = UInt::new(joined_count);
            summary.invited_member_count = UInt::new(invited_count);
            summary.heroes = heroes;
            joined.summary = summary;
        }
        response.rooms.join.insert(room_id, joined);
    }
    for (room_id, update) in result.left {
        let mut left = LeftRoom::new();
        left.timeline = timeline(&services, &room_id, &user, &update)?;
        left.state = state(&services, &room_id, &user, &update, body.use_state_after)?;
        response.rooms.leave.insert(room_id, left);
    }
    for (room_id, events) in result.invited {
        let mut invite_state = InviteState::new();
        invite_state.events = raw_list(&events)?;
        response
            .rooms
            .invite
            .insert(room_id, InvitedRoom::from(invite_state));
    }
    for (room_id, events) in result.knocked {
        let mut knock_state = KnockState::new();
        knock_state.events = raw_list(&events)?;
        response
            .rooms
            .knock
            .insert(room_id, KnockedRoom::from(knock_state));
    }
    response.account_data.events = account_data(&result.account_data)?;
    response.to_device.events = raw_list(&result.to_device)?;
    Ok(response)
}

/// `s<stream>_<typing>_<presence>` from an earlier sync. Shorter forms (`s<stream>`,
/// `s<stream>_<typing>`) and `t<stream>` pagination tokens are accepted, missing parts as 0.
fn parse_since(token: &str) -> Result<(u64, u64, u64)> {
    let invalid = || Error::invalid_param(format!("Invalid since token `{token}`"));
    let rest = token
        .strip_prefix('s')
        .or_else(|| token.strip_prefix('t'))
        .ok_or_else(invalid)?;
    let mut parts = rest
        .split('_')
        .map(|part| part.parse::<u64>().map_err(|_| invalid()));
    let stream = parts.next().ok_or_else(invalid)??;
    let typing = parts.next().transpose()?.unwrap_or(0);
    let presence = parts.next().transpose()?.unwrap_or(0);
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok((stream, typing, presence))
}

fn timeline(
    services: &Services,
    room_id: &RoomId,
    user: &UserId,
    update: &RoomUpdate,
) -> Result<Timeline> {
    let mut timeline = Timeline::new();
    timeline.limited = update.limited;
    timeline.prev_batch = Some(format_token(update.prev_batch));
    timeline.events = update
        .timeline
        .iter()
        .map(|pdu| client_event(services, room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<_>>()?;
    Ok(timeline)
}

fn state(
    services: &Services,
    room_id: &RoomId,
    user: &UserId,
    update: &RoomUpdate,
    after: bool,
) -> Result<RoomState> {
    let mut events = StateEvents::new();
    events.events = update
        .state
        .iter()
        .map(|pdu| client_event(services, room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<_>>()?;
    Ok(if after {
        RoomState::After(events)
    } else {
        RoomState::Before(events)
    })
}

fn account_data<T>(entries: &[(String, Value)]) -> Result<Vec<Raw<T>>> {
    raw_list(
        &entries
            .iter()
            .map(|(kind, content)| json!({"type": kind, "content": content}))
            .collect::<Vec<_>>(),
    )
}

fn raw_list<T>(values: &[Value]) -> Result<Vec<Raw<T>>> {
    values
        .iter()
        .map(|value| {
            serde_json::value::to_raw_value(value)
                .map(Raw::from_json)
                .map_err(Error::internal)
        })
        .collect()
}
