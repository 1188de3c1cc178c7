//! Receipts and read markers: `POST /rooms/{roomId}/receipt/{type}/{eventId}` and
//! `POST /rooms/{roomId}/read_markers`.

use axum::extract::State;
use ruma::api::client::read_marker::set_read_marker;
use ruma::api::client::receipt::create_receipt::{self, v3::ReceiptType};
use ruma::events::receipt::ReceiptThread;
use ruma::{EventId, RoomId, UserId};
use serde_json::json;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::receipts::{READ, READ_PRIVATE};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(receipt).ruma(read_markers)
}

/// The receipt's target must be an event of the room the user may see, and the user must be in it.
fn check(services: &Services, room_id: &RoomId, user: &UserId, event_id: &EventId) -> Result<()> {
    services.rooms.require_joined(room_id, user)?;
    let room = services.rooms.existing_room(room_id)?;
    services
        .rooms
        .visible_event(room_id, &room, user, event_id)
        .map(drop)
}

fn fully_read(
    services: &Services,
    room_id: &RoomId,
    user: &UserId,
    event_id: &EventId,
) -> Result<()> {
    services.account_data.store(
        user,
        Some(room_id),
        "m.fully_read",
        json!({"event_id": event_id}),
    )
}

async fn receipt(
    State(services): State<AppState>,
    request: Ruma<create_receipt::v3::Request>,
) -> Result<create_receipt::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services.rooms.existing_room(&body.room_id)?;
    check(&services, &body.room_id, user, &body.event_id)?;
    let thread = match &body.thread {
        ReceiptThread::Unthreaded => String::new(),
        ReceiptThread::Main => "main".to_owned(),
        ReceiptThread::Thread(root) => root.to_string(),
        other => return Err(Error::invalid_param(format!("Unknown thread_id {other:?}"))),
    };
    match &body.receipt_type {
        ReceiptType::Read => {
            services.set_receipt(&body.room_id, user, READ, &thread, &body.event_id)?
        }
        ReceiptType::ReadPrivate => {
            services.set_receipt(&body.room_id, user, READ_PRIVATE, &thread, &body.event_id)?
        }
        ReceiptType::FullyRead => {
            if !thread.is_empty() {
                return Err(Error::invalid_param("m.fully_read cannot be threaded"));
            }
            fully_read(&services, &body.room_id, user, &body.event_id)?
        }
        other => {
            return Err(Error::invalid_param(format!(
                "Unknown receipt type {}",
                other.as_str()
            )));
        }
    }
    Ok(create_receipt::v3::Response::new())
}

async fn read_markers(
    State(services): State<AppState>,
    request: Ruma<set_read_marker::v3::Request>,
) -> Result<set_read_marker::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services.rooms.existing_room(&body.room_id)?;
    let markers = [
        (&body.fully_read, None),
        (&body.read_receipt, Some(READ)),
        (&body.private_read_receipt, Some(READ_PRIVATE)),
    ];
    for (event_id, _) in &markers {
        if let Some(event_id) = event_id {
            check(&services, &body.room_id, user, event_id)?;
        }
    }
    for (event_id, kind) in markers {
        match (event_id, kind) {
            (Some(event_id), None) => fully_read(&services, &body.room_id, user, event_id)?,
            (Some(event_id), Some(kind)) => {
                services.set_receipt(&body.room_id, user, kind, "", event_id)?
            }
            (None, _) => {}
        }
    }
    Ok(set_read_marker::v3::Response::new())
}
