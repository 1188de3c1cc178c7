//! Room upgrades: a new room of a newer version that continues an old one. The old room gets
//! a tombstone pointing at the new one and is muted; state, bans and local aliases move over.

use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, RoomId, RoomVersionId, UserId};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::create::CREATABLE_VERSIONS;
use crate::service::rooms::{NewEvent, rules_of};

/// State that carries over to the new room.
const TRANSFERABLE: &[StateEventType] = &[
    StateEventType::RoomServerAcl,
    StateEventType::RoomEncryption,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomTopic,
    StateEventType::RoomGuestAccess,
    StateEventType::RoomHistoryVisibility,
    StateEventType::RoomJoinRules,
];

impl Services {
    pub async fn upgrade_room(
        &self,
        user: &UserId,
        old_room_id: &RoomId,
        new_version: RoomVersionId,
    ) -> Result<OwnedRoomId> {
        if !CREATABLE_VERSIONS.contains(&new_version) {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::UnsupportedRoomVersion,
                format!("Cannot upgrade to room version {new_version}"),
            ));
        }
        let old = self.rooms.existing_room(old_room_id)?;
        self.rooms.require_joined(old_room_id, user)?;
        if !self
            .rooms
            .power_levels(&old)?
            .user_can_send_state(user, StateEventType::RoomTombstone)
        {
            return Err(Error::forbidden("You may not upgrade this room"));
        }
        let state_content = |kind: &StateEventType| -> Result<Option<Value>> {
            Ok(self
                .rooms
                .state_event_at(old.snapshot, kind, "")?
                .map(|pdu| pdu.content()))
        };
        let new_rules = rules_of(&new_version)?;

        let old_create = state_content(&StateEventType::RoomCreate)?.unwrap_or_else(|| json!({}));
        let last_event = self
            .rooms
            .timeline(&old, None, false, 1)?
            .first()
            .map(|pdu| pdu.event_id.clone());
        let mut creation = json!({"predecessor": {"room_id": old_room_id, "event_id": last_event}});
        if let Some(kind) = old_create.get("type") {
            creation["type"] = kind.clone();
        }
        let (new_room_id, _) = self.rooms.create(user, new_version.clone(), creation)?;
        let send_new = |new: NewEvent| self.append_event(&new_room_id, user, new, None);
        send_new(NewEvent::state(
            StateEventType::RoomMember,
            user.as_str(),
            self.member_content(user, MembershipState::Join)?,
        ))
        .await?;

        // The old power levels, with the upgrader able to set everything while the state is copied.
        let mut power =
            state_content(&StateEventType::RoomPowerLevels)?.unwrap_or_else(|| json!({}));
        if !power.get("users").is_some_and(Value::is_object) {
            power["users"] = json!({});
        }
        let restore = power.clone();
        if new_rules.authorization.explicitly_privilege_room_creators {
            if let Some(users) = power["users"].as_object_mut() {
                users.remove(user.as_str());
            }
            let tombstone_level = power["state_default"].as_i64().unwrap_or(50).max(100) + 50;
            power["events"]["m.room.tombstone"] = json!(tombstone_level);
        } else {
            power["users"][user.as_str()] = json!(i64::MAX >> 11);
        }
        send_new(NewEvent::state(
            StateEventType::RoomPowerLevels,
            "",
            power.clone(),
        ))
        .await?;
        for kind in TRANSFERABLE {
            if let Some(content) = state_content(kind)? {
                send_new(NewEvent::state(kind.clone(), "", content)).await?;
            }
        }
        for (member, record) in self.rooms.members_of(old_room_id)? {
            if record.membership == MembershipState::Ban {
                send_new(NewEvent::state(
                    StateEventType::RoomMember,
                    member.as_str(),
                    json!({"membership": "ban"}),
                ))
                .await?;
            }
        }
        if !new_rules.authorization.explicitly_privilege_room_creators {
            let mut restored = restore.clone();
            if restore["users"].get(user.as_str()).is_none() {
                // The upgrader keeps the level they had (the default, if none was listed).
                restored["users"][user.as_str()] =
                    restore.get("users_default").cloned().unwrap_or(json!(0));
            }
            send_new(NewEvent::state(
                StateEventType::RoomPowerLevels,
                "",
                restored,
            ))
            .await?;
        }

        // Local aliases and the canonical alias move to the new room.
        for alias in self.room_aliases(old_room_id)? {
            self.move_alias(&alias, &new_room_id)?;
        }
        if let Some(canonical) = state_content(&StateEventType::RoomCanonicalAlias)? {
            send_new(NewEvent::state(
                StateEventType::RoomCanonicalAlias,
                "",
                canonical,
            ))
            .await?;
        }
        if self.is_published(old_room_id)? {
            self.db
                .table(crate::storage::Cf::PublicRooms)
                .delete(old_room_id.as_str())?;
            self.db
                .table(crate::storage::Cf::PublicRooms)
                .put(new_room_id.as_str(), [])?;
        }

        let send_old = |new: NewEvent| self.append_event(old_room_id, user, new, None);
        send_old(NewEvent::state(
            StateEventType::RoomTombstone,
            "",
            json!({"body": "This room has been replaced", "replacement_room": new_room_id}),
        ))
        .await?;
        // Mute the old room so conversation continues in the new one.
        let mut old_power = restore;
        let muted_level = old_power
            .get("users_default")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .saturating_add(1)
            .max(50);
        old_power["events_default"] = json!(muted_level);
        old_power["invite"] = json!(muted_level);
        if let Err(err) = send_old(NewEvent::state(
            StateEventType::RoomPowerLevels,
            "",
            old_power,
        ))
        .await
        {
            tracing::warn!(%err, room = %old_room_id, "could not restrict the old room after upgrading");
        }
        tracing::info!(old = %old_room_id, new = %new_room_id, version = %new_version, "room upgraded");
        Ok(new_room_id)
    }
}
