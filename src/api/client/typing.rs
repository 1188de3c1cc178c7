//! `PUT /rooms/{roomId}/typing/{userId}`.

use axum::extract::State;
use ruma::api::client::typing::create_typing_event::{self, v3::Typing};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(set_typing)
}

async fn set_typing(
    State(services): State<AppState>,
    request: Ruma<create_typing_event::v3::Request>,
) -> Result<create_typing_event::v3::Response> {
    let caller = &request.identity()?.user_id;
    let body = &request.body;
    if *caller != body.user_id {
        return Err(Error::forbidden("You can only set your own typing state"));
    }
    services.rooms.existing_room(&body.room_id)?;
    services.rooms.require_joined(&body.room_id, caller)?;
    let timeout = match &body.state {
        Typing::Yes(info) => Some(info.timeout),
        _ => None,
    };
    services.set_typing(&body.room_id, caller, timeout)?;
    Ok(create_typing_event::v3::Response::new())
}
