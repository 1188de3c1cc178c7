//! Membership changes by local users: join, invite, leave, kick, ban, unban, forget. Who may do
//! what is decided by the room version's auth rules (power levels, join rules, bans); these
//! functions only build the right member event.

use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::{RoomId, UserId};
use serde_json::json;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::NewEvent;
use crate::storage::{Cf, Key};

impl Services {
    /// Appends `sender`'s change of `target`'s membership, with an optional reason.
    async fn append_member(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        mut content: serde_json::Value,
        reason: Option<String>,
    ) -> Result<()> {
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        let event = NewEvent::state(StateEventType::RoomMember, target.as_str(), content);
        self.append_event(room_id, sender, event, None).await?;
        Ok(())
    }

    /// Joins a local room. Joining a room one is already in changes nothing.
    pub async fn join_room(&self, user: &UserId, room_id: &RoomId) -> Result<()> {
        // Checked first: a blocked room may have been purged, and the answer is "blocked".
        self.require_not_blocked(room_id)?;
        self.rooms.existing_room(room_id)?;
        if self.rooms.current_membership(room_id, user)? == Some(MembershipState::Join) {
            return Ok(());
        }
        let content = self.member_content(user, MembershipState::Join)?;
        self.append_member(room_id, user, user, content, None).await
    }

    pub async fn invite(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: &UserId,
        reason: Option<String>,
        is_direct: bool,
    ) -> Result<()> {
        self.rooms.existing_room(room_id)?;
        if !self.users.is_local(target) {
            return Err(Error::forbidden(format!(
                "Cannot invite {target}: federation is not available yet"
            )));
        }
        if !self.users.exists(target)? {
            return Err(Error::not_found(format!("Unknown user {target}")));
        }
        self.require_not_blocked(room_id)?;
        if self.users.is_shadow_banned(sender)? {
            return Ok(());
        }
        let mut content = self.member_content(target, MembershipState::Invite)?;
        if is_direct {
            content["is_direct"] = json!(true);
        }
        self.append_member(room_id, sender, target, content, reason)
            .await
    }

    /// Knocks on a room whose join rule allows it (the auth rules check that).
    pub async fn knock(
        &self,
        user: &UserId,
        room_id: &RoomId,
        reason: Option<String>,
    ) -> Result<()> {
        self.rooms.existing_room(room_id)?;
        self.require_not_blocked(room_id)?;
        let content = self.member_content(user, MembershipState::Knock)?;
        self.append_member(room_id, user, user, content, reason)
            .await
    }

    /// Sets `target`'s membership to `membership` (leave, ban) as `sender`: leaving, rejecting
    /// an invite, kicking, banning and unbanning are all this.
    pub async fn set_membership(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: &UserId,
        membership: MembershipState,
        reason: Option<String>,
    ) -> Result<()> {
        self.rooms.existing_room(room_id)?;
        self.append_member(
            room_id,
            sender,
            target,
            json!({"membership": membership}),
            reason,
        )
        .await
    }

    /// Unbans: only a banned user can be unbanned (otherwise this would kick them).
    pub async fn unban(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        let banned = self
            .rooms
            .membership(room_id, target)?
            .is_some_and(|m| m.membership == MembershipState::Ban);
        if !banned {
            return Err(Error::forbidden(format!(
                "{target} is not banned from {room_id}"
            )));
        }
        self.set_membership(sender, room_id, target, MembershipState::Leave, reason)
            .await
    }

    /// Kicks: only a joined, invited or knocking user can be kicked.
    pub async fn kick(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        let current = self
            .rooms
            .membership(room_id, target)?
            .map(|m| m.membership);
        if !matches!(
            current,
            Some(MembershipState::Join | MembershipState::Invite | MembershipState::Knock)
        ) {
            return Err(Error::forbidden(format!("{target} is not in {room_id}")));
        }
        self.set_membership(sender, room_id, target, MembershipState::Leave, reason)
            .await
    }

    /// Forgets a room the user has left: it no longer appears in their room list.
    pub fn forget(&self, user: &UserId, room_id: &RoomId) -> Result<()> {
        let current = self.rooms.membership(room_id, user)?;
        match current.map(|m| m.membership) {
            None => Ok(()),
            Some(MembershipState::Join | MembershipState::Invite | MembershipState::Knock) => {
                Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    ruma::api::error::ErrorKind::Unknown,
                    "Leave the room before forgetting it",
                ))
            }
            Some(_) => {
                self.db
                    .table(Cf::UserRooms)
                    .delete(Key::new().str(user.as_str()).bytes(room_id.as_bytes()))?;
                Ok(())
            }
        }
    }
}
