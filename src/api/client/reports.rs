//! Reporting abuse: `POST /rooms/{roomId}/report/{eventId}`, `POST /rooms/{roomId}/report`,
//! `POST /users/{userId}/report`.

use axum::extract::State;
use ruma::api::client::reporting::report_user;
use ruma::api::client::room::{report_content, report_room};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(event).ruma(room).ruma(user)
}

async fn event(
    State(services): State<AppState>,
    request: Ruma<report_content::v3::Request>,
) -> Result<report_content::v3::Response> {
    let reporter = &request.identity()?.user_id;
    let body = &request.body;
    services.report_event(reporter, &body.room_id, &body.event_id, body.reason.clone())?;
    Ok(report_content::v3::Response::new())
}

async fn room(
    State(services): State<AppState>,
    request: Ruma<report_room::v3::Request>,
) -> Result<report_room::v3::Response> {
    let reporter = &request.identity()?.user_id;
    let body = &request.body;
    services.report_room(reporter, &body.room_id, body.reason.clone())?;
    Ok(report_room::v3::Response::new())
}

async fn user(
    State(services): State<AppState>,
    request: Ruma<report_user::v3::Request>,
) -> Result<report_user::v3::Response> {
    let reporter = &request.identity()?.user_id;
    let body = &request.body;
    services.report_user(reporter, &body.user_id, body.reason.clone())?;
    Ok(report_user::v3::Response::new())
}
