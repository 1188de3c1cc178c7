//! `GET|PUT /presence/{userId}/status`.

use axum::extract::State;
use ruma::api::client::presence::{get_presence, set_presence};
use ruma::presence::PresenceState;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(set).ruma(get)
}

async fn set(
    State(services): State<AppState>,
    request: Ruma<set_presence::v3::Request>,
) -> Result<set_presence::v3::Response> {
    let caller = &request.identity()?.user_id;
    let body = &request.body;
    if *caller != body.user_id {
        return Err(Error::forbidden("You can only set your own presence"));
    }
    if !matches!(
        body.presence,
        PresenceState::Online | PresenceState::Offline | PresenceState::Unavailable
    ) {
        return Err(Error::bad_json(format!(
            "Unknown presence `{}`",
            body.presence.as_str()
        )));
    }
    services.set_presence(caller, body.presence.clone(), Some(body.status_msg.clone()))?;
    Ok(set_presence::v3::Response::new())
}

async fn get(
    State(services): State<AppState>,
    request: Ruma<get_presence::v3::Request>,
) -> Result<get_presence::v3::Response> {
    let caller = &request.identity()?.user_id;
    let target = &request.body.user_id;
    if !services.users.exists(target)? {
        return Err(Error::not_found(format!("Unknown user {target}")));
    }
    // Someone's presence is visible to themselves and to people who share a room with them.
    if !services.rooms.share_a_room(caller, target)? {
        return Err(Error::forbidden("You do not share a room with this user"));
    }
    let Some(presence) = services.presence.get(target)? else {
        return Ok(get_presence::v3::Response::new(PresenceState::Offline));
    };
    let mut response = get_presence::v3::Response::new(presence.effective_state());
    response.status_msg = presence.status_msg.clone();
    response.currently_active = Some(presence.currently_active());
    response.last_active_ago = Some(presence.last_active_ago());
    Ok(response)
}
