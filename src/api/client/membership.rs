//! Membership endpoints: invite, join, leave, forget, kick, ban, unban, members.

use axum::extract::State;
use ruma::OwnedRoomId;
use ruma::api::client::knock::knock_room;
use ruma::api::client::membership::{
    ban_user, forget_room, get_member_events, invite_user, join_room_by_id,
    join_room_by_id_or_alias, joined_members, kick_user, leave_room, unban_user,
};
use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::serde::Raw;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(invite)
        .ruma(join_by_id)
        .ruma(join_by_id_or_alias)
        .ruma(leave)
        .ruma(forget)
        .ruma(kick)
        .ruma(ban)
        .ruma(unban)
        .ruma(members)
        .ruma(joined_members)
        .ruma(knock)
}

async fn invite(
    State(services): State<AppState>,
    request: Ruma<invite_user::v3::Request>,
) -> Result<invite_user::v3::Response> {
    let sender = &request.identity()?.user_id;
    let invite_user::v3::InvitationRecipient::UserId(recipient) = &request.body.recipient else {
        return Err(Error::forbidden("Third-party invites are not supported"));
    };
    services
        .invite(
            sender,
            &request.body.room_id,
            &recipient.user_id,
            recipient.reason.clone(),
            false,
        )
        .await?;
    Ok(invite_user::v3::Response::new())
}

async fn join_by_id(
    State(services): State<AppState>,
    request: Ruma<join_room_by_id::v3::Request>,
) -> Result<join_room_by_id::v3::Response> {
    let user = &request.identity()?.user_id;
    services.join_room(user, &request.body.room_id).await?;
    Ok(join_room_by_id::v3::Response::new(
        request.body.room_id.clone(),
    ))
}

async fn join_by_id_or_alias(
    State(services): State<AppState>,
    request: Ruma<join_room_by_id_or_alias::v3::Request>,
) -> Result<join_room_by_id_or_alias::v3::Response> {
    let user = &request.identity()?.user_id;
    let room_id = resolve_room(&services, &request.body.room_id_or_alias)?;
    services.join_room(user, &room_id).await?;
    Ok(join_room_by_id_or_alias::v3::Response::new(room_id))
}

async fn knock(
    State(services): State<AppState>,
    request: Ruma<knock_room::v3::Request>,
) -> Result<knock_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let room_id = resolve_room(&services, &request.body.room_id_or_alias)?;
    services
        .knock(user, &room_id, request.body.reason.clone())
        .await?;
    Ok(knock_room::v3::Response::new(room_id))
}

/// A room id as given, or the room a local alias points at.
fn resolve_room(
    services: &crate::service::Services,
    target: &ruma::RoomOrAliasId,
) -> Result<OwnedRoomId> {
    match OwnedRoomId::try_from(target.as_str()) {
        Ok(room_id) => Ok(room_id),
        Err(_) => {
            let alias = ruma::OwnedRoomAliasId::try_from(target.as_str())
                .map_err(|e| Error::invalid_param(e.to_string()))?;
            services
                .resolve_alias(&alias)?
                .ok_or_else(|| Error::not_found(format!("Alias {alias} not found")))
        }
    }
}

async fn leave(
    State(services): State<AppState>,
    request: Ruma<leave_room::v3::Request>,
) -> Result<leave_room::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services
        .set_membership(
            user,
            &body.room_id,
            user,
            MembershipState::Leave,
            body.reason.clone(),
        )
        .await?;
    Ok(leave_room::v3::Response::new())
}

async fn forget(
    State(services): State<AppState>,
    request: Ruma<forget_room::v3::Request>,
) -> Result<forget_room::v3::Response> {
    let user = &request.identity()?.user_id;
    services.rooms.existing_room(&request.body.room_id)?;
    services.forget(user, &request.body.room_id)?;
    Ok(forget_room::v3::Response::new())
}

async fn kick(
    State(services): State<AppState>,
    request: Ruma<kick_user::v3::Request>,
) -> Result<kick_user::v3::Response> {
    let sender = &request.identity()?.user_id;
    let body = &request.body;
    services
        .kick(sender, &body.room_id, &body.user_id, body.reason.clone())
        .await?;
    Ok(kick_user::v3::Response::new())
}

async fn ban(
    State(services): State<AppState>,
    request: Ruma<ban_user::v3::Request>,
) -> Result<ban_user::v3::Response> {
    let sender = &request.identity()?.user_id;
    let body = &request.body;
    services
        .set_membership(
            sender,
            &body.room_id,
            &body.user_id,
            MembershipState::Ban,
            body.reason.clone(),
        )
        .await?;
    Ok(ban_user::v3::Response::new())
}

async fn unban(
    State(services): State<AppState>,
    request: Ruma<unban_user::v3::Request>,
) -> Result<unban_user::v3::Response> {
    let sender = &request.identity()?.user_id;
    let body = &request.body;
    services
        .unban(sender, &body.room_id, &body.user_id, body.reason.clone())
        .await?;
    Ok(unban_user::v3::Response::new())
}

async fn members(
    State(services): State<AppState>,
    request: Ruma<get_member_events::v3::Request>,
) -> Result<get_member_events::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let room = services.rooms.existing_room(&body.room_id)?;
    let mut snapshot = services
        .rooms
        .readable_snapshot(&body.room_id, &room, user)?;
    if let Some(at) = &body.at {
        let position = crate::api::client::message::parse_token(at)?;
        // The state at a token is the state before the first event at or after it.
        let next = services.rooms.timeline(&room, Some(position), true, 1)?;
        let at_snapshot = next
            .first()
            .map(|pdu| pdu.state_before)
            .unwrap_or(room.snapshot);
        // Never more than the user could read anyway.
        if snapshot == room.snapshot {
            snapshot = at_snapshot;
        }
    }
    let mut chunk = Vec::new();
    for pdu in services.rooms.full_state_at(snapshot)? {
        if pdu.json.get("type").and_then(|v| v.as_str())
            != Some(StateEventType::RoomMember.to_string().as_str())
        {
            continue;
        }
        let membership = pdu
            .content()
            .get("membership")
            .and_then(|v| v.as_str())
            .map(MembershipState::from);
        if body.membership.is_some() && membership != body.membership {
            continue;
        }
        if body.not_membership.is_some() && membership == body.not_membership {
            continue;
        }
        let event = pdu.client_event(&body.room_id, Some(user), None);
        chunk.push(Raw::from_json(
            serde_json::value::to_raw_value(&event).map_err(Error::internal)?,
        ));
    }
    Ok(get_member_events::v3::Response::new(chunk))
}

async fn joined_members(
    State(services): State<AppState>,
    request: Ruma<joined_members::v3::Request>,
) -> Result<joined_members::v3::Response> {
    let user = &request.identity()?.user_id;
    let room_id = &request.body.room_id;
    let room = services.rooms.existing_room(room_id)?;
    let snapshot = services.rooms.readable_snapshot(room_id, &room, user)?;
    let mut joined = std::collections::BTreeMap::new();
    for pdu in services.rooms.full_state_at(snapshot)? {
        if pdu.json.get("type").and_then(|v| v.as_str()) != Some("m.room.member") {
            continue;
        }
        let content = pdu.content();
        if content.get("membership").and_then(|v| v.as_str()) != Some("join") {
            continue;
        }
        let Some(member) = pdu
            .json
            .get("state_key")
            .and_then(|v| v.as_str())
            .and_then(|s| ruma::OwnedUserId::try_from(s).ok())
        else {
            continue;
        };
        let mut info = joined_members::v3::RoomMember::new();
        info.display_name = content
            .get("displayname")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        info.avatar_url = content
            .get("avatar_url")
            .and_then(|v| v.as_str())
            .map(Into::into);
        joined.insert(member, info);
    }
    Ok(joined_members::v3::Response::new(joined))
}
