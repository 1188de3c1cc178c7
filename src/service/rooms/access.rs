//! Who may read what: history visibility for events and state, and the room's power levels
//! for checks the auth rules leave to the server (redacting other people's events).

use ruma::events::room::history_visibility::HistoryVisibility;
use ruma::events::room::member::MembershipState;
use ruma::events::room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::rooms::pdu::StoredPdu;
use crate::service::rooms::{RoomRecord, Rooms, rules_of};

impl Rooms {
    fn membership_at(&self, snapshot: u64, user: &UserId) -> Result<Option<MembershipState>> {
        Ok(self
            .state_event_at(snapshot, &StateEventType::RoomMember, user.as_str())?
            .and_then(|pdu| {
                pdu.content()
                    .get("membership")
                    .and_then(Value::as_str)
                    .map(MembershipState::from)
            }))
    }

    fn history_visibility_at(&self, snapshot: u64) -> Result<HistoryVisibility> {
        Ok(self
            .state_event_at(snapshot, &StateEventType::RoomHistoryVisibility, "")?
            .and_then(|pdu| {
                pdu.content()
                    .get("history_visibility")
                    .and_then(Value::as_str)
                    .map(HistoryVisibility::from)
            })
            .unwrap_or(HistoryVisibility::Shared))
    }

    /// Whether `user` may see `pdu`, by the history visibility in force when it was sent.
    pub fn can_see(
        &self,
        user: &UserId,
        pdu: &StoredPdu,
        current: Option<&MembershipState>,
    ) -> Result<bool> {
        // A user sees their own membership events: a join counts as joined, and a leave, kick
        // or ban is judged by the membership they had just before it.
        let own_join = pdu.kind_is("m.room.member")
            && pdu.json.get("state_key").and_then(|v| v.as_str()) == Some(user.as_str())
            && pdu.content().get("membership").and_then(Value::as_str) == Some("join");
        let membership = if own_join {
            Some(MembershipState::Join)
        } else {
            self.membership_at(pdu.state_before, user)?
        };
        Ok(match self.history_visibility_at(pdu.state_before)? {
            HistoryVisibility::WorldReadable => true,
            HistoryVisibility::Shared => {
                membership == Some(MembershipState::Join) || current == Some(&MembershipState::Join)
            }
            HistoryVisibility::Invited => {
                matches!(
                    membership,
                    Some(MembershipState::Join | MembershipState::Invite)
                )
            }
            _ => membership == Some(MembershipState::Join),
        })
    }

    /// The user's current membership in a room, if any.
    pub fn current_membership(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<Option<MembershipState>> {
        Ok(self
            .membership(room_id, user)?
            .map(|record| record.membership))
    }

    /// An event of the room that `user` may see; `M_NOT_FOUND` otherwise (whether it exists or
    /// not, so that hidden history does not leak).
    pub fn visible_event(
        &self,
        room_id: &RoomId,
        room: &RoomRecord,
        user: &UserId,
        event_id: &ruma::EventId,
    ) -> Result<StoredPdu> {
        let not_found = || Error::not_found(format!("Event {event_id} not found"));
        let pdu = self.pdu_in_room(room, event_id)?.ok_or_else(not_found)?;
        let current = self.current_membership(room_id, user)?;
        if self.can_see(user, &pdu, current.as_ref())? {
            Ok(pdu)
        } else {
            Err(not_found())
        }
    }

    /// The state snapshot `user` may read: the current state while joined, the state when they
    /// left (or were banned), the current state of a world-readable room; otherwise forbidden.
    pub fn readable_snapshot(
        &self,
        room_id: &RoomId,
        room: &RoomRecord,
        user: &UserId,
    ) -> Result<u64> {
        if let Some(record) = self.membership(room_id, user)? {
            match record.membership {
                MembershipState::Join => return Ok(room.snapshot),
                MembershipState::Leave | MembershipState::Ban => {
                    if let Some(pdu) = self.pdu(&record.event_id)? {
                        return self.snapshot_after(room, &pdu);
                    }
                }
                _ => {}
            }
        }
        if self.history_visibility_at(room.snapshot)? == HistoryVisibility::WorldReadable {
            return Ok(room.snapshot);
        }
        Err(Error::forbidden(format!(
            "You are not allowed to view {room_id}"
        )))
    }

    /// Forbidden for someone who was never in the room, unless it is world-readable: history
    /// endpoints answer outsiders with 403, members (past and present) with what they may see.
    pub fn require_history_access(
        &self,
        room_id: &RoomId,
        room: &RoomRecord,
        user: &UserId,
    ) -> Result<()> {
        if self.membership(room_id, user)?.is_some()
            || self.history_visibility_at(room.snapshot)? == HistoryVisibility::WorldReadable
        {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "You are not a member of {room_id}"
            )))
        }
    }

    /// The room and the user's current membership, for reading its history: `M_NOT_FOUND` for
    /// an unknown room, 403 for someone never in it (unless world-readable).
    pub fn open_history(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(RoomRecord, Option<MembershipState>)> {
        let room = self.existing_room(room_id)?;
        self.require_history_access(room_id, &room, user)?;
        let current = self.current_membership(room_id, user)?;
        Ok((room, current))
    }

    /// Forbidden unless `user` is joined to the room.
    pub fn require_joined(&self, room_id: &RoomId, user: &UserId) -> Result<()> {
        match self.membership(room_id, user)? {
            Some(record) if record.membership == MembershipState::Join => Ok(()),
            _ => Err(Error::forbidden(format!(
                "You are not a member of {room_id}"
            ))),
        }
    }

    /// The room's current power levels, with the creators of room versions that privilege them.
    pub fn power_levels(&self, room: &RoomRecord) -> Result<RoomPowerLevels> {
        let rules = rules_of(&room.version)?;
        let content: Option<RoomPowerLevelsEventContent> = self
            .state_event_at(room.snapshot, &StateEventType::RoomPowerLevels, "")?
            .map(|pdu| serde_json::from_value(pdu.content()))
            .transpose()
            .map_err(Error::internal)?;
        let mut creators: Vec<OwnedUserId> = Vec::new();
        if rules.authorization.explicitly_privilege_room_creators
            && let Some(create) =
                self.state_event_at(room.snapshot, &StateEventType::RoomCreate, "")?
        {
            if let Some(sender) = create.json.get("sender").and_then(|v| v.as_str())
                && let Ok(sender) = OwnedUserId::try_from(sender)
            {
                creators.push(sender);
            }
            if let Some(Value::Array(extra)) = create.content().get("additional_creators") {
                creators.extend(
                    extra
                        .iter()
                        .filter_map(|v| v.as_str())
                        .filter_map(|s| OwnedUserId::try_from(s).ok()),
                );
            }
        }
        Ok(RoomPowerLevels::new(
            content.into(),
            &rules.authorization,
            creators,
        ))
    }

    /// Whether `user` may redact `target` (their own event, or anyone's with the redact level).
    pub fn may_redact(&self, room: &RoomRecord, user: &UserId, target: &StoredPdu) -> Result<bool> {
        let power = self.power_levels(room)?;
        let own = target.json.get("sender").and_then(|v| v.as_str()) == Some(user.as_str());
        let redaction_allowed =
            power.user_can_send_message(user, TimelineEventType::RoomRedaction.to_string().into());
        Ok(redaction_allowed && (own || power.user_can_redact_event_of_other(user)))
    }
}
