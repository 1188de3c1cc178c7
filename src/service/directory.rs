//! Room aliases (`#name:server` → room id) and the public room directory.

use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomAliasId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::storage::{Cf, Key};

#[derive(Debug, Serialize, Deserialize)]
struct AliasRecord {
    room_id: OwnedRoomId,
    creator: OwnedUserId,
}

/// One room as the directory shows it.
#[derive(Debug, Clone)]
pub struct PublicRoom {
    pub room_id: OwnedRoomId,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub canonical_alias: Option<OwnedRoomAliasId>,
    pub avatar_url: Option<String>,
    pub joined_members: u64,
    pub world_readable: bool,
    pub guest_can_join: bool,
    pub join_rule: String,
    pub room_type: Option<String>,
}

impl Services {
    fn require_local_alias(&self, alias: &RoomAliasId) -> Result<()> {
        if alias.server_name() != self.server_name {
            return Err(Error::invalid_param(format!(
                "{alias} is not an alias on this server"
            )));
        }
        Ok(())
    }

    pub fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<OwnedRoomId>> {
        Ok(self
            .db
            .table(Cf::Aliases)
            .get_json::<AliasRecord>(alias.as_str())?
            .map(|record| record.room_id))
    }

    /// Points a new local alias at a room the user is in.
    pub fn create_alias(&self, user: &UserId, alias: &RoomAliasId, room_id: &RoomId) -> Result<()> {
        self.require_local_alias(alias)?;
        self.rooms.existing_room(room_id)?;
        self.rooms.require_joined(room_id, user)?;
        if self.resolve_alias(alias)?.is_some() {
            return Err(Error::new(
                http::StatusCode::CONFLICT,
                ruma::api::error::ErrorKind::Unknown,
                format!("Alias {alias} already exists"),
            ));
        }
        let mut batch = self.db.batch();
        batch.put_json(
            Cf::Aliases,
            alias.as_str(),
            &AliasRecord {
                room_id: room_id.to_owned(),
                creator: user.to_owned(),
            },
        )?;
        batch.put(
            Cf::RoomAliases,
            Key::new().str(room_id.as_str()).bytes(alias.as_bytes()),
            [],
        );
        batch.commit()?;
        Ok(())
    }

    /// Removes an alias: its creator, a server admin, or someone who may set the room's
    /// canonical alias may.
    pub fn delete_alias(&self, user: &UserId, alias: &RoomAliasId) -> Result<()> {
        self.require_local_alias(alias)?;
        let record: AliasRecord = self
            .db
            .table(Cf::Aliases)
            .get_json(alias.as_str())?
            .ok_or_else(|| Error::not_found(format!("Alias {alias} not found")))?;
        let allowed = record.creator == user
            || self.users.is_admin(user)?
            || self.rooms.room(&record.room_id)?.is_some_and(|room| {
                self.rooms.power_levels(&room).is_ok_and(|power| {
                    power.user_can_send_state(user, StateEventType::RoomCanonicalAlias)
                })
            });
        if !allowed {
            return Err(Error::forbidden("You may not remove this alias"));
        }
        let mut batch = self.db.batch();
        batch.delete(Cf::Aliases, alias.as_str());
        batch.delete(
            Cf::RoomAliases,
            Key::new()
                .str(record.room_id.as_str())
                .bytes(alias.as_bytes()),
        );
        batch.commit()?;
        Ok(())
    }

    /// Points an existing alias at another room (used when a room is upgraded).
    pub fn move_alias(&self, alias: &RoomAliasId, room_id: &RoomId) -> Result<()> {
        let Some(mut record) = self
            .db
            .table(Cf::Aliases)
            .get_json::<AliasRecord>(alias.as_str())?
        else {
            return Ok(());
        };
        let mut batch = self.db.batch();
        batch.delete(
            Cf::RoomAliases,
            Key::new()
                .str(record.room_id.as_str())
                .bytes(alias.as_bytes()),
        );
        record.room_id = room_id.to_owned();
        batch.put(
            Cf::RoomAliases,
            Key::new().str(room_id.as_str()).bytes(alias.as_bytes()),
            [],
        );
        batch.put_json(Cf::Aliases, alias.as_str(), &record)?;
        batch.commit()?;
        Ok(())
    }

    pub fn room_aliases(&self, room_id: &RoomId) -> Result<Vec<OwnedRoomAliasId>> {
        let prefix = Key::new().str(room_id.as_str());
        self.db
            .table(Cf::RoomAliases)
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(key, _)| {
                let alias =
                    std::str::from_utf8(&key[prefix.as_ref().len()..]).map_err(Error::internal)?;
                OwnedRoomAliasId::try_from(alias).map_err(Error::internal)
            })
            .collect()
    }

    /// Removes every alias of a room and takes it out of the directory (room deletion).
    /// Returns the aliases removed.
    pub fn remove_room_from_directory(&self, room_id: &RoomId) -> Result<Vec<OwnedRoomAliasId>> {
        let aliases = self.room_aliases(room_id)?;
        let mut batch = self.db.batch();
        for alias in &aliases {
            batch.delete(Cf::Aliases, alias.as_str());
            batch.delete(
                Cf::RoomAliases,
                Key::new().str(room_id.as_str()).bytes(alias.as_bytes()),
            );
        }
        batch.delete(Cf::PublicRooms, room_id.as_str());
        batch.commit()?;
        Ok(aliases)
    }

    /// An `m.room.canonical_alias` content is valid only if each alias it names points at this
    /// room (`M_BAD_ALIAS` otherwise).
    pub fn check_canonical_alias(&self, room_id: &RoomId, content: &Value) -> Result<()> {
        let mut names: Vec<&str> = content
            .get("alias")
            .and_then(Value::as_str)
            .into_iter()
            .collect();
        if let Some(Value::Array(alt)) = content.get("alt_aliases") {
            names.extend(alt.iter().filter_map(Value::as_str));
        }
        for name in names {
            let bad = |why: &str| {
                Error::new(
                    http::StatusCode::BAD_REQUEST,
                    ruma::api::error::ErrorKind::BadAlias,
                    format!("{name}: {why}"),
                )
            };
            let alias = <&RoomAliasId>::try_from(name).map_err(|_| bad("not a room alias"))?;
            if alias.server_name() == self.server_name
                && self.resolve_alias(alias)?.as_deref() != Some(room_id)
            {
                return Err(bad("does not point to this room"));
            }
        }
        Ok(())
    }

    pub fn is_published(&self, room_id: &RoomId) -> Result<bool> {
        Ok(self.db.table(Cf::PublicRooms).contains(room_id.as_str())?)
    }

    /// Publishes or unpublishes a room; needs the power to set its canonical alias (or admin).
    pub fn set_published(&self, user: &UserId, room_id: &RoomId, public: bool) -> Result<()> {
        let room = self.rooms.existing_room(room_id)?;
        let may = self.users.is_admin(user)?
            || (self
                .rooms
                .membership(room_id, user)?
                .is_some_and(|m| m.membership == MembershipState::Join)
                && self
                    .rooms
                    .power_levels(&room)?
                    .user_can_send_state(user, StateEventType::RoomCanonicalAlias));
        if !may {
            return Err(Error::forbidden(
                "You may not change this room's directory visibility",
            ));
        }
        if public {
            self.db.table(Cf::PublicRooms).put(room_id.as_str(), [])?;
        } else {
            self.db.table(Cf::PublicRooms).delete(room_id.as_str())?;
        }
        Ok(())
    }

    /// The ids of the rooms published in the directory.
    pub fn published_room_ids(&self) -> Result<Vec<OwnedRoomId>> {
        self.db
            .table(Cf::PublicRooms)
            .scan_prefix([])?
            .into_iter()
            .map(|(key, _)| {
                OwnedRoomId::try_from(std::str::from_utf8(&key).map_err(Error::internal)?)
                    .map_err(Error::internal)
            })
            .collect()
    }

    /// The published rooms matching `search` (name, topic or alias), most members first.
    pub fn public_rooms(&self, search: Option<&str>) -> Result<Vec<PublicRoom>> {
        let search = search.map(str::to_lowercase).filter(|s| !s.is_empty());
        let mut rooms = Vec::new();
        for room_id in self.published_room_ids()? {
            let Some(entry) = self.room_summary(room_id)? else {
                continue;
            };
            let matches = search.as_ref().is_none_or(|term| {
                [&entry.name, &entry.topic].iter().any(|field| {
                    field
                        .as_ref()
                        .is_some_and(|f| f.to_lowercase().contains(term))
                }) || entry
                    .canonical_alias
                    .as_ref()
                    .is_some_and(|a| a.as_str().to_lowercase().contains(term))
            });
            if matches {
                rooms.push(entry);
            }
        }
        rooms.sort_by(|a, b| {
            b.joined_members
                .cmp(&a.joined_members)
                .then_with(|| a.room_id.cmp(&b.room_id))
        });
        Ok(rooms)
    }

    /// What the directory and space hierarchies show of a room: name, topic, alias, avatar,
    /// member count, join rule, whether it is world-readable, its type.
    pub fn room_summary(&self, room_id: OwnedRoomId) -> Result<Option<PublicRoom>> {
        let Some(room) = self.rooms.room(&room_id)? else {
            return Ok(None);
        };
        let text = |kind: StateEventType, field: &str| -> Result<Option<String>> {
            Ok(self
                .rooms
                .state_event_at(room.snapshot, &kind, "")?
                .and_then(|pdu| {
                    pdu.content()
                        .get(field)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }))
        };
        Ok(Some(PublicRoom {
            name: text(StateEventType::RoomName, "name")?,
            topic: text(StateEventType::RoomTopic, "topic")?,
            canonical_alias: text(StateEventType::RoomCanonicalAlias, "alias")?
                .and_then(|a| OwnedRoomAliasId::try_from(a).ok()),
            avatar_url: text(StateEventType::RoomAvatar, "url")?,
            joined_members: self
                .rooms
                .members_of(&room_id)?
                .iter()
                .filter(|(_, m)| m.membership == MembershipState::Join)
                .count() as u64,
            world_readable: text(StateEventType::RoomHistoryVisibility, "history_visibility")?
                .as_deref()
                == Some("world_readable"),
            guest_can_join: text(StateEventType::RoomGuestAccess, "guest_access")?.as_deref()
                == Some("can_join"),
            join_rule: text(StateEventType::RoomJoinRules, "join_rule")?
                .unwrap_or_else(|| "invite".into()),
            room_type: self
                .rooms
                .state_event_at(room.snapshot, &StateEventType::RoomCreate, "")?
                .and_then(|pdu| {
                    pdu.content()
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            room_id,
        }))
    }
}
