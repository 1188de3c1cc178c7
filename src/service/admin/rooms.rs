//! The admin's view of rooms: everything a room listing shows about each one, and the blocks
//! admins put on rooms (nobody on this server may join, be invited to or knock on a blocked room).

use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::users::now_ms;
use crate::storage::Cf;

/// One room as the Synapse admin API describes it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomDetails {
    pub room_id: OwnedRoomId,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub avatar: Option<String>,
    pub canonical_alias: Option<String>,
    pub joined_members: u64,
    pub joined_local_members: u64,
    pub invited_members: u64,
    pub version: String,
    pub creator: Option<String>,
    pub encryption: Option<String>,
    /// Federation is not available yet, but the room says whether it could federate.
    pub federatable: bool,
    pub public: bool,
    pub join_rules: Option<String>,
    pub guest_access: Option<String>,
    pub history_visibility: Option<String>,
    pub state_events: u64,
    pub room_type: Option<String>,
    pub blocked: bool,
}

/// What admins decided about a room, kept even after its data is purged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Moderation {
    /// Nobody on this server may join, be invited to or knock on the room.
    pub blocked: bool,
    /// The admin who blocked it (none when it was blocked from the command line).
    pub blocked_by: Option<OwnedUserId>,
    /// When the room was deleted, if it was.
    pub deleted_ms: Option<u64>,
}

impl Services {
    /// Every room this server holds, in room id order.
    pub fn room_ids(&self) -> Result<Vec<OwnedRoomId>> {
        Ok(self
            .db
            .table(Cf::Rooms)
            .scan_prefix([])?
            .into_iter()
            .filter_map(|(key, _)| {
                std::str::from_utf8(&key)
                    .ok()
                    .and_then(|id| RoomId::parse(id).ok())
            })
            .collect())
    }

    pub fn room_details(&self, room_id: &RoomId) -> Result<Option<RoomDetails>> {
        let Some(room) = self.rooms.room(room_id)? else {
            return Ok(None);
        };
        let state = self.rooms.full_state_at(room.snapshot)?;
        let field = |kind: &str, name: &str| -> Option<String> {
            state
                .iter()
                .find(|pdu| {
                    pdu.kind_is(kind)
                        && pdu.json.get("state_key").and_then(|k| k.as_str()) == Some("")
                })
                .and_then(|pdu| {
                    pdu.content()
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        };
        let create = state.iter().find(|pdu| pdu.kind_is("m.room.create"));
        let creator = create.and_then(|pdu| {
            let content = pdu.content();
            content
                .get("creator")
                .and_then(Value::as_str)
                .or_else(|| pdu.json.get("sender").and_then(|s| s.as_str()))
                .map(str::to_owned)
        });
        let federatable = create.is_none_or(|pdu| {
            pdu.content().get("m.federate").and_then(Value::as_bool) != Some(false)
        });
        let members = self.rooms.members_of(room_id)?;
        let count = |membership: MembershipState| {
            members
                .iter()
                .filter(|(_, m)| m.membership == membership)
                .count() as u64
        };
        let joined = count(MembershipState::Join);
        Ok(Some(RoomDetails {
            room_id: room_id.to_owned(),
            name: field("m.room.name", "name"),
            topic: field("m.room.topic", "topic"),
            avatar: field("m.room.avatar", "url"),
            canonical_alias: field("m.room.canonical_alias", "alias"),
            joined_members: joined,
            // Every member is local until federation lands.
            joined_local_members: joined,
            invited_members: count(MembershipState::Invite),
            version: room.version.to_string(),
            creator,
            encryption: field("m.room.encryption", "algorithm"),
            federatable,
            public: self.is_published(room_id)?,
            join_rules: field("m.room.join_rules", "join_rule"),
            guest_access: field("m.room.guest_access", "guest_access"),
            history_visibility: field("m.room.history_visibility", "history_visibility"),
            state_events: state.len() as u64,
            room_type: create.and_then(|pdu| {
                pdu.content()
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            blocked: self.room_moderation(room_id)?.blocked,
        }))
    }

    /// One string field of a current state event with an empty state key (a room's name,
    /// alias, avatar), without reading the rest of its state.
    pub fn state_field(&self, room_id: &RoomId, kind: &str, field: &str) -> Result<Option<String>> {
        let Some(room) = self.rooms.room(room_id)? else {
            return Ok(None);
        };
        Ok(self
            .rooms
            .state_event_at(room.snapshot, &kind.into(), "")?
            .and_then(|pdu| {
                pdu.content()
                    .get(field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }))
    }

    pub fn room_moderation(&self, room_id: &RoomId) -> Result<Moderation> {
        Ok(self
            .db
            .table(Cf::RoomModeration)
            .get_json(room_id.as_str())?
            .unwrap_or_default())
    }

    fn change_moderation(
        &self,
        room_id: &RoomId,
        change: impl FnOnce(&mut Moderation),
    ) -> Result<()> {
        let mut moderation = self.room_moderation(room_id)?;
        change(&mut moderation);
        self.db
            .table(Cf::RoomModeration)
            .put_json(room_id.as_str(), &moderation)?;
        Ok(())
    }

    /// Blocks or unblocks a room. Blocking works for rooms this server does not know too, so
    /// a room can be blocked before anyone here joins it.
    pub fn set_room_blocked(
        &self,
        room_id: &RoomId,
        blocked: bool,
        by: Option<&UserId>,
    ) -> Result<()> {
        self.change_moderation(room_id, |m| {
            m.blocked = blocked;
            m.blocked_by = by.filter(|_| blocked).map(UserId::to_owned);
        })?;
        tracing::info!(room = %room_id, blocked, by = ?by, "room block changed");
        Ok(())
    }

    pub(crate) fn mark_room_deleted(&self, room_id: &RoomId) -> Result<()> {
        self.change_moderation(room_id, |m| m.deleted_ms = Some(now_ms()))
    }

    /// 403 for joins, invites and knocks into a room an admin blocked.
    pub fn require_not_blocked(&self, room_id: &RoomId) -> Result<()> {
        if self.room_moderation(room_id)?.blocked {
            return Err(Error::forbidden(
                "This room has been blocked on this server",
            ));
        }
        Ok(())
    }

    /// A room's current state, every event of it (the admin API shows it whole).
    pub fn current_state(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<crate::service::rooms::pdu::StoredPdu>> {
        let room = self.rooms.existing_room(room_id)?;
        self.rooms.full_state_at(room.snapshot)
    }
}

impl Services {
    /// The `mxc://` URIs a room's events mention (files, images, thumbnails, avatars),
    /// deduplicated, in the order they first appear.
    pub fn media_in_room(&self, room_id: &RoomId) -> Result<Vec<String>> {
        let room = self.rooms.existing_room(room_id)?;
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = None;
        loop {
            let events = self.rooms.timeline(&room, cursor, true, 500)?;
            let Some(last) = events.last() else { break };
            cursor = Some(last.position + 1);
            for pdu in &events {
                collect_mxc(&pdu.content(), &mut |uri| {
                    if seen.insert(uri.to_owned()) {
                        found.push(uri.to_owned());
                    }
                });
            }
        }
        Ok(found)
    }

    /// Media ids used as avatars (of users and of rooms), which bulk deletion keeps unless told
    /// otherwise.
    pub fn avatar_media_ids(&self) -> Result<std::collections::HashSet<String>> {
        let mut urls: Vec<String> = self
            .users
            .all()?
            .into_iter()
            .filter_map(|(_, account)| account.avatar_url)
            .collect();
        for room_id in self.room_ids()? {
            urls.extend(self.state_field(&room_id, "m.room.avatar", "url")?);
        }
        Ok(urls
            .iter()
            .filter_map(|url| self.local_media_id(url))
            .collect())
    }

    /// The media id of an `mxc://` URI naming media on this server.
    pub fn local_media_id(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix("mxc://")?;
        let (server, id) = rest.split_once('/')?;
        (server == self.server_name.as_str()).then(|| id.to_owned())
    }
}

/// Calls `found` for every string in `value` that is an `mxc://` URI.
fn collect_mxc(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) if s.starts_with("mxc://") => found(s),
        Value::Array(items) => items.iter().for_each(|v| collect_mxc(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_mxc(v, found)),
        _ => {}
    }
}
