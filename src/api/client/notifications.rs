//! `GET /notifications`: the events that notified the user (by their push rules), newest first.

use axum::extract::State;
use ruma::api::client::push::get_notifications;
use ruma::push::{Action, Tweak};
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, UInt};

use crate::api::client::message::client_event;
use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(notifications)
}

async fn notifications(
    State(services): State<AppState>,
    request: Ruma<get_notifications::v3::Request>,
) -> Result<get_notifications::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let from = body
        .from
        .as_deref()
        .map(|token| {
            token
                .parse::<u64>()
                .map_err(|_| Error::invalid_param(format!("Invalid from token `{token}`")))
        })
        .transpose()?;
    let limit = crate::api::client::page_limit(body.limit, DEFAULT_LIMIT, MAX_LIMIT);
    let only_highlight = body.only.as_deref() == Some("highlight");
    let (found, next) = services.notifications(user, from, limit, only_highlight)?;
    let mut list = Vec::with_capacity(found.len());
    for crate::service::notifications::Notified {
        room_id,
        pdu,
        highlight,
        read,
    } in found
    {
        // The stored outcome is "notify" with or without a highlight.
        let mut actions = vec![Action::Notify];
        if highlight {
            actions.push(Action::SetTweak(Tweak::Highlight(true.into())));
        }
        let ts = pdu
            .json
            .get("origin_server_ts")
            .and_then(|ts| serde_json::to_value(ts).ok())
            .and_then(|ts| ts.as_u64())
            .and_then(UInt::new)
            .unwrap_or_default();
        let event = Raw::from_json(client_event(&services, &room_id, user, &pdu)?);
        list.push(get_notifications::v3::Notification::new(
            actions,
            event,
            read,
            room_id,
            MilliSecondsSinceUnixEpoch(ts),
        ));
    }
    let mut response = get_notifications::v3::Response::new(list);
    response.next_token = next.map(|position| position.to_string());
    Ok(response)
}
