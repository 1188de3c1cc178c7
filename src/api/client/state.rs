//! Room state: read one state event or all of them, and send state events.

use axum::extract::State;
use ruma::api::client::state::get_state_event_for_key::v3::StateEventFormat;
use ruma::api::client::state::{get_state_event_for_key, get_state_events, send_state_event};
use ruma::serde::Raw;
use serde_json::Value;

use crate::api::client::message::client_event;
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::rooms::{NewEvent, validate_state_content};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(get_one).ruma(get_all).ruma(send)
}

async fn get_one(
    State(services): State<AppState>,
    request: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<get_state_event_for_key::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let room = services.rooms.existing_room(&body.room_id)?;
    let snapshot = services
        .rooms
        .readable_snapshot(&body.room_id, &room, user)?;
    let pdu = services
        .rooms
        .state_event_at(snapshot, &body.event_type, &body.state_key)?
        .ok_or_else(|| {
            Error::not_found(format!(
                "No {} state with key `{}`",
                body.event_type, body.state_key
            ))
        })?;
    let raw = match body.format {
        StateEventFormat::Event => client_event(&services, &body.room_id, user, &pdu)?,
        _ => serde_json::value::to_raw_value(&pdu.content()).map_err(Error::internal)?,
    };
    Ok(get_state_event_for_key::v3::Response::new(raw))
}

async fn get_all(
    State(services): State<AppState>,
    request: Ruma<get_state_events::v3::Request>,
) -> Result<get_state_events::v3::Response> {
    let user = &request.identity()?.user_id;
    let room_id = &request.body.room_id;
    let room = services.rooms.existing_room(room_id)?;
    let snapshot = services.rooms.readable_snapshot(room_id, &room, user)?;
    let events = services
        .rooms
        .full_state_at(snapshot)?
        .iter()
        .map(|pdu| client_event(&services, room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<Vec<_>>>()?;
    Ok(get_state_events::v3::Response::new(events))
}

async fn send(
    State(services): State<AppState>,
    request: Ruma<send_state_event::v3::Request>,
) -> Result<send_state_event::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let content: Value =
        serde_json::from_str(body.body.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
    validate_state_content(&body.event_type, &content)?;
    services.rooms.existing_room(&body.room_id)?;
    if body.event_type == ruma::events::StateEventType::RoomCanonicalAlias {
        services.check_canonical_alias(&body.room_id, &content)?;
    }
    if services.users.is_shadow_banned(user)? {
        services.rooms.require_joined(&body.room_id, user)?;
        let event_id = crate::service::shadow_ban::unsent_event_id()?;
        return Ok(send_state_event::v3::Response::new(event_id));
    }
    let event_id = services
        .append_event(
            &body.room_id,
            user,
            NewEvent::state(body.event_type.clone(), body.state_key.clone(), content),
            None,
        )
        .await?;
    Ok(send_state_event::v3::Response::new(event_id))
}
