//! `/context/{eventId}` (an event with what surrounds it) and `timestamp_to_event`.

use axum::extract::State;
use ruma::api::Direction;
use ruma::api::client::context::get_context;
use ruma::api::client::room::get_event_by_timestamp;
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, UInt};

use crate::api::client::message::{client_event, format_token};
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::rooms::pdu::StoredPdu;

const MAX_CONTEXT: u64 = 100;
/// Timeline events examined per page when searching by timestamp.
const SCAN_PAGE: usize = 500;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(context).ruma(timestamp_to_event)
}

async fn context(
    State(services): State<AppState>,
    request: Ruma<get_context::v3::Request>,
) -> Result<get_context::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (room, current) = services.rooms.open_history(&body.room_id, user)?;
    let event = services
        .rooms
        .visible_event(&body.room_id, &room, user, &body.event_id)?;
    let limit = u64::from(body.limit).min(MAX_CONTEXT) as usize;
    let before_wanted = limit / 2;
    let after_wanted = limit - before_wanted;

    let visible = |pdus: Vec<StoredPdu>, wanted: usize| -> Result<Vec<StoredPdu>> {
        let mut out = Vec::new();
        for pdu in pdus {
            if out.len() >= wanted {
                break;
            }
            if pdu.matches(&body.filter) && services.rooms.can_see(user, &pdu, current.as_ref())? {
                out.push(pdu);
            }
        }
        Ok(out)
    };
    let before = if event.position == 0 || before_wanted == 0 {
        Vec::new()
    } else {
        visible(
            services.rooms.timeline(
                &room,
                Some(event.position - 1),
                false,
                before_wanted * 4 + 10,
            )?,
            before_wanted,
        )?
    };
    let after = if after_wanted == 0 {
        Vec::new()
    } else {
        visible(
            services.rooms.timeline(
                &room,
                Some(event.position + 1),
                true,
                after_wanted * 4 + 10,
            )?,
            after_wanted,
        )?
    };

    let to_raw =
        |pdu: &StoredPdu| client_event(&services, &body.room_id, user, pdu).map(Raw::from_json);
    let last = after.last().unwrap_or(&event);
    let state_snapshot = services.rooms.snapshot_after(&room, last)?;
    let mut response = get_context::v3::Response::new();
    response.start = Some(format_token(
        before.last().map_or(event.position, |pdu| pdu.position),
    ));
    response.end = Some(format_token(last.position + 1));
    response.events_before = before.iter().map(to_raw).collect::<Result<_>>()?;
    response.event = Some(to_raw(&event)?);
    response.events_after = after.iter().map(to_raw).collect::<Result<_>>()?;
    response.state = services
        .rooms
        .full_state_at(state_snapshot)?
        .iter()
        .map(|pdu| client_event(&services, &body.room_id, user, pdu).map(Raw::from_json))
        .collect::<Result<_>>()?;
    Ok(response)
}

async fn timestamp_to_event(
    State(services): State<AppState>,
    request: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<get_event_by_timestamp::v1::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let (room, current) = services.rooms.open_history(&body.room_id, user)?;
    let target = u64::from(body.ts.get());
    let forward = body.dir == Direction::Forward;
    // Walk the timeline in the asked direction from the matching end; stop at the first
    // visible event on the right side of the timestamp.
    let mut cursor = None;
    loop {
        let page = services.rooms.timeline(&room, cursor, forward, SCAN_PAGE)?;
        let Some(last) = page.last() else { break };
        let next = if forward {
            last.position + 1
        } else {
            last.position.saturating_sub(1)
        };
        for pdu in &page {
            let ts = pdu
                .json
                .get("origin_server_ts")
                .and_then(|v| v.as_integer())
                .map_or(0, |n| u64::try_from(i64::from(n)).unwrap_or(0));
            let on_side = if forward { ts >= target } else { ts <= target };
            if on_side && services.rooms.can_see(user, pdu, current.as_ref())? {
                let ts = MilliSecondsSinceUnixEpoch(UInt::new(ts).unwrap_or_default());
                return Ok(get_event_by_timestamp::v1::Response::new(
                    pdu.event_id.clone(),
                    ts,
                ));
            }
        }
        if !forward && last.position == 0 {
            break;
        }
        cursor = Some(next);
    }
    Err(Error::not_found("No event found in that direction"))
}
