//! `createRoom` and `joined_rooms`.

use axum::extract::State;
use ruma::api::client::membership::joined_rooms;
use ruma::api::client::room::create_room::v3::RoomPreset;
use ruma::api::client::room::{Visibility, create_room, upgrade_room};
use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::rooms::create::{CreateRoom, Preset};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(create_room).ruma(joined_rooms).ruma(upgrade)
}

async fn create_room(
    State(services): State<AppState>,
    request: Ruma<create_room::v3::Request>,
) -> Result<create_room::v3::Response> {
    let creator = request.identity()?.user_id.clone();
    let body = request.body;
    let preset = match body.preset {
        None => None,
        Some(RoomPreset::PrivateChat) => Some(Preset::PrivateChat),
        Some(RoomPreset::TrustedPrivateChat) => Some(Preset::TrustedPrivateChat),
        Some(RoomPreset::PublicChat) => Some(Preset::PublicChat),
        Some(other) => {
            return Err(Error::bad_json(format!(
                "Unknown preset {}",
                other.as_str()
            )));
        }
    };
    let mut initial_state = Vec::with_capacity(body.initial_state.len());
    for event in &body.initial_state {
        let event: serde_json::Value = event
            .deserialize_as()
            .map_err(|e| Error::bad_json(format!("Invalid initial_state: {e}")))?;
        let kind = event
            .get("type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::bad_json("initial_state event without type"))?;
        let state_key = event
            .get("state_key")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let content = event
            .get("content")
            .cloned()
            .ok_or_else(|| Error::bad_json("initial_state event without content"))?;
        initial_state.push((StateEventType::from(kind), state_key, content));
    }
    let parse =
        |raw: Option<Box<serde_json::value::RawValue>>| -> Result<Option<serde_json::Value>> {
            raw.map(|raw| {
                serde_json::from_str(raw.get()).map_err(|e| Error::bad_json(e.to_string()))
            })
            .transpose()
        };
    let room_id = services
        .create_room(
            &creator,
            CreateRoom {
                version: body.room_version,
                creation_content: parse(body.creation_content.map(|raw| raw.into_json()))?,
                preset,
                public: body.visibility == Visibility::Public,
                invite: body.invite,
                is_direct: body.is_direct,
                name: body.name,
                topic: body.topic,
                initial_state,
                power_level_content_override: parse(
                    body.power_level_content_override.map(|raw| raw.into_json()),
                )?,
                alias_name: body.room_alias_name,
            },
        )
        .await?;
    Ok(create_room::v3::Response::new(room_id))
}

async fn joined_rooms(
    State(services): State<AppState>,
    request: Ruma<joined_rooms::v3::Request>,
) -> Result<joined_rooms::v3::Response> {
    let user = &request.identity()?.user_id;
    let rooms = services
        .rooms
        .rooms_of(user)?
        .into_iter()
        .filter(|(_, record)| record.membership == MembershipState::Join)
        .map(|(room_id, _)| room_id)
        .collect();
    Ok(joined_rooms::v3::Response::new(rooms))
}

async fn upgrade(
    State(services): State<AppState>,
    request: Ruma<upgrade_room::v3::Request>,
) -> Result<upgrade_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let new_room = services
        .upgrade_room(user, &body.room_id, body.new_version.clone())
        .await?;
    Ok(upgrade_room::v3::Response::new(new_room))
}
