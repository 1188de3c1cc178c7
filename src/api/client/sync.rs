//! `GET /v3/sync`.

use axum::extract::State;
use ruma::api::client::filter::EventFormat;
use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::api::client::sync::sync_events::v3::{
    self, Filter, InviteState, InvitedRoom, JoinedRoom, KnockState, KnockedRoom, LeftRoom,
    RoomSummary, State as RoomState, StateEvents, Timeline,
};
use ruma::events::AnySyncTimelineEvent;
use ruma::serde::Raw;
use ruma::{RoomId, UInt, UserId};
use serde_json::{Value, json};
use std::time::Duration;

use crate::api::client::message::{client_event, format_token};
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::pdu::StoredPdu;
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
    let shape = Shape {
        federation: filter.event_format == EventFormat::Federation,
        fields: filter.event_fields.clone(),
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
        joined.timeline = timeline(&services, &room_id, &user, &update, &shape)?;
        joined.state = state(
            &services,
            &room_id,
            &user,
            &update,
            &shape,
            body.use_state_after,
        )?;
        joined.account_data.events = account_data(&update.account_data)?;
        let (notifications, highlights) = update.unread.room;
        joined.unread_notifications.notification_count = UInt::new(notifications);
        joined.unread_notifications.highlight_count = UInt::new(highlights);
        for (thread, (notifications, highlights)) in &update.unread.threads {
            let Ok(root) = ruma::OwnedEventId::try_from(thread.as_str()) else {
                continue;
            };
            let mut counts = UnreadNotificationsCount::new();
            counts.notification_count = UInt::new(*notifications);
            counts.highlight_count = UInt::new(*highlights);
            joined.unread_thread_notifications.insert(root, counts);
        }
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
        left.timeline = timeline(&services, &room_id, &user, &update, &shape)?;
        left.state = state(
            &services,
            &room_id,
            &user,
            &update,
            &shape,
            body.use_state_after,
        )?;
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
    response.device_lists.changed = result.device_lists.0;
    response.device_lists.left = result.device_lists.1;
    response.device_one_time_keys_count = result
        .one_time_key_counts
        .into_iter()
        .map(|(algorithm, count)| {
            (
                ruma::OneTimeKeyAlgorithm::from(algorithm.as_str()),
                UInt::new(count).unwrap_or_default(),
            )
        })
        .collect();
    response.device_unused_fallback_key_types = Some(
        result
            .unused_fallback_key_types
            .iter()
            .map(|algorithm| ruma::OneTimeKeyAlgorithm::from(algorithm.as_str()))
            .collect(),
    );
    Ok(response)
}

/// `s<stream>_<typing>_<presence>` from an earlier sync. Shorter forms (`s<stream>`,
/// `s<stream>_<typing>`) and `t<stream>` pagination tokens are accepted, missing parts as 0.
pub fn parse_since(token: &str) -> Result<(u64, u64, u64)> {
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

/// How the filter asks for events: `event_format` and `event_fields`.
struct Shape {
    federation: bool,
    fields: Option<Vec<String>>,
}

impl Shape {
    fn render(
        &self,
        services: &Services,
        room_id: &RoomId,
        user: &UserId,
        pdu: &StoredPdu,
    ) -> Result<Raw<AnySyncTimelineEvent>> {
        let raw = if self.federation {
            serde_json::value::to_raw_value(&pdu.json).map_err(Error::internal)?
        } else {
            client_event(services, room_id, user, pdu)?
        };
        let Some(fields) = &self.fields else {
            return Ok(Raw::from_json(raw));
        };
        let event: Value = serde_json::from_str(raw.get()).map_err(Error::internal)?;
        let kept = only_fields(&event, fields);
        Ok(Raw::from_json(
            serde_json::value::to_raw_value(&kept).map_err(Error::internal)?,
        ))
    }
}

/// `event_fields`: a copy of `event` with only the named fields. A field is a dotted path
/// (`content.body`); `\.` is a literal dot in a key.
fn only_fields(event: &Value, fields: &[String]) -> Value {
    let mut kept = json!({});
    for field in fields {
        let path = split_path(field);
        let mut source = event;
        let mut found = true;
        for key in &path {
            match source.get(key) {
                Some(value) => source = value,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found || path.is_empty() {
            continue;
        }
        let mut target = &mut kept;
        for key in &path[..path.len() - 1] {
            target = &mut target[key.as_str()];
            if !target.is_object() {
                *target = json!({});
            }
        }
        target[path[path.len() - 1].as_str()] = source.clone();
    }
    kept
}

fn split_path(field: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => parts.last_mut().map(|p| p.push(next)).unwrap_or_default(),
                None => parts.last_mut().map(|p| p.push(c)).unwrap_or_default(),
            },
            '.' => parts.push(String::new()),
            _ => parts.last_mut().map(|p| p.push(c)).unwrap_or_default(),
        }
    }
    parts
}

fn timeline(
    services: &Services,
    room_id: &RoomId,
    user: &UserId,
    update: &RoomUpdate,
    shape: &Shape,
) -> Result<Timeline> {
    let mut timeline = Timeline::new();
    timeline.limited = update.limited;
    timeline.prev_batch = Some(format_token(update.prev_batch));
    timeline.events = update
        .timeline
        .iter()
        .map(|pdu| shape.render(services, room_id, user, pdu))
        .collect::<Result<_>>()?;
    Ok(timeline)
}

fn state(
    services: &Services,
    room_id: &RoomId,
    user: &UserId,
    update: &RoomUpdate,
    shape: &Shape,
    after: bool,
) -> Result<RoomState> {
    let mut events = StateEvents::new();
    events.events = update
        .state
        .iter()
        .map(|pdu| {
            shape
                .render(services, room_id, user, pdu)
                .map(Raw::cast_unchecked)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields_keep_only_named_paths() {
        let event = json!({
            "type": "m.room.message",
            "sender": "@a:x",
            "content": {"body": "hi", "msgtype": "m.text", "m.key": 1},
        });
        let fields = [
            "type".to_owned(),
            "content.body".to_owned(),
            "content.m\\.key".to_owned(),
            "content.missing".to_owned(),
        ];
        assert_eq!(
            only_fields(&event, &fields),
            json!({"type": "m.room.message", "content": {"body": "hi", "m.key": 1}})
        );
    }
}
