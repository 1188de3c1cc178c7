//! `createRoom`: the create event, the creator's join, power levels, preset state, initial
//! state, name, topic and invites, in the order the spec gives.

use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomVersionId, UserId};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::{NewEvent, rules_of, validate_state_content};

/// Room versions new rooms can have, and the one the spec recommends as the default.
pub const CREATABLE_VERSIONS: &[RoomVersionId] =
    &[RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12];
pub const DEFAULT_VERSION: RoomVersionId = RoomVersionId::V12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

/// A `createRoom` request as the service sees it.
#[derive(Debug, Default)]
pub struct CreateRoom {
    pub version: Option<RoomVersionId>,
    pub creation_content: Option<Value>,
    pub preset: Option<Preset>,
    pub public: bool,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub initial_state: Vec<(StateEventType, String, Value)>,
    pub power_level_content_override: Option<Value>,
    /// `room_alias_name`: the localpart of an alias to create for the room.
    pub alias_name: Option<String>,
}

impl Services {
    pub async fn create_room(
        &self,
        creator: &UserId,
        mut request: CreateRoom,
    ) -> Result<OwnedRoomId> {
        // A shadow-banned creator's invites are dropped; the room is made all the same.
        if self.users.is_shadow_banned(creator)? {
            request.invite.clear();
        }
        let version = request.version.clone().unwrap_or(DEFAULT_VERSION);
        if !CREATABLE_VERSIONS.contains(&version) {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::UnsupportedRoomVersion,
                format!("Rooms of version {version} cannot be created here"),
            ));
        }
        let rules = rules_of(&version)?;
        let preset = request.preset.unwrap_or(if request.public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        });
        // Check everything the client sent before the room exists, so a bad request leaves nothing behind.
        for (kind, _, content) in &request.initial_state {
            validate_state_content(kind, content)?;
        }
        if let Some(name) = &request.name
            && name.len() > 255
        {
            return Err(Error::invalid_param("Room name is longer than 255 bytes"));
        }
        for invitee in &request.invite {
            if !self.users.is_local(invitee) {
                return Err(Error::forbidden(format!(
                    "Cannot invite {invitee}: federation is not available yet"
                )));
            }
            if !self.users.exists(invitee)? {
                return Err(Error::not_found(format!("Unknown user {invitee}")));
            }
        }

        let alias = match &request.alias_name {
            None => None,
            Some(name) => {
                let alias = OwnedRoomAliasId::try_from(format!("#{name}:{}", self.server_name))
                    .map_err(|e| Error::invalid_param(format!("Invalid room_alias_name: {e}")))?;
                if self.resolve_alias(&alias)?.is_some() {
                    return Err(Error::new(
                        http::StatusCode::BAD_REQUEST,
                        ruma::api::error::ErrorKind::RoomInUse,
                        format!("Alias {alias} is already in use"),
                    ));
                }
                Some(alias)
            }
        };
        let mut creation = match request.creation_content.clone() {
            None => Map::new(),
            Some(Value::Object(object)) => object,
            Some(_) => return Err(Error::bad_json("creation_content must be an object")),
        };
        let privileged_creators = rules.authorization.explicitly_privilege_room_creators;
        if privileged_creators && preset == Preset::TrustedPrivateChat && !request.invite.is_empty()
        {
            let mut creators: Vec<Value> = match creation.remove("additional_creators") {
                Some(Value::Array(list)) => list,
                None => Vec::new(),
                Some(_) => {
                    return Err(Error::bad_json(
                        "additional_creators must be a list of user ids",
                    ));
                }
            };
            for invitee in &request.invite {
                let invitee = json!(invitee);
                if !creators.contains(&invitee) {
                    creators.push(invitee);
                }
            }
            creation.insert("additional_creators".into(), Value::Array(creators));
        }

        let mut power_levels = json!({
            "users": {},
            "users_default": 0,
            "events": {
                "m.room.name": 50,
                "m.room.power_levels": 100,
                "m.room.history_visibility": 100,
                "m.room.canonical_alias": 50,
                "m.room.avatar": 50,
                "m.room.tombstone": if privileged_creators { 150 } else { 100 },
                "m.room.server_acl": 100,
                "m.room.encryption": 100,
            },
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": 0,
            "notifications": {"room": 50},
        });
        if !privileged_creators {
            power_levels["users"][creator.as_str()] = json!(100);
            if preset == Preset::TrustedPrivateChat {
                for invitee in &request.invite {
                    power_levels["users"][invitee.as_str()] = json!(100);
                }
            }
        }
        if let Some(override_content) = &request.power_level_content_override {
            let Value::Object(fields) = override_content else {
                return Err(Error::bad_json(
                    "power_level_content_override must be an object",
                ));
            };
            for (key, value) in fields {
                power_levels[key] = value.clone();
            }
        }
        validate_state_content(&StateEventType::RoomPowerLevels, &power_levels)?;
        let (room_id, _) = self
            .rooms
            .create(creator, version.clone(), Value::Object(creation))?;
        let send = |new: NewEvent| self.append_event(&room_id, creator, new, None);

        send(NewEvent::state(
            StateEventType::RoomMember,
            creator.as_str(),
            self.member_content(creator, MembershipState::Join)?,
        ))
        .await?;

        send(NewEvent::state(
            StateEventType::RoomPowerLevels,
            "",
            power_levels,
        ))
        .await?;

        if let Some(alias) = &alias {
            self.create_alias(creator, alias, &room_id)?;
            send(NewEvent::state(
                StateEventType::RoomCanonicalAlias,
                "",
                json!({"alias": alias}),
            ))
            .await?;
        }

        let (join_rule, guest_access) = match preset {
            Preset::PublicChat => ("public", "forbidden"),
            Preset::PrivateChat | Preset::TrustedPrivateChat => ("invite", "can_join"),
        };
        send(NewEvent::state(
            StateEventType::RoomJoinRules,
            "",
            json!({"join_rule": join_rule}),
        ))
        .await?;
        send(NewEvent::state(
            StateEventType::RoomHistoryVisibility,
            "",
            json!({"history_visibility": "shared"}),
        ))
        .await?;
        send(NewEvent::state(
            StateEventType::RoomGuestAccess,
            "",
            json!({"guest_access": guest_access}),
        ))
        .await?;

        for (kind, state_key, content) in request.initial_state {
            send(NewEvent::state(kind, state_key, content)).await?;
        }
        if let Some(name) = request.name {
            send(NewEvent::state(
                StateEventType::RoomName,
                "",
                json!({"name": name}),
            ))
            .await?;
        }
        if let Some(topic) = request.topic {
            send(NewEvent::state(
                StateEventType::RoomTopic,
                "",
                json!({"topic": topic}),
            ))
            .await?;
        }
        for invitee in &request.invite {
            let mut content = self.member_content(invitee, MembershipState::Invite)?;
            if request.is_direct {
                content["is_direct"] = json!(true);
            }
            send(NewEvent::state(
                StateEventType::RoomMember,
                invitee.as_str(),
                content,
            ))
            .await?;
        }
        if request.public {
            self.set_published(creator, &room_id, true)?;
        }
        tracing::info!(room = %room_id, version = %version, creator = %creator, "room created");
        Ok(room_id)
    }

    /// The content of a member event for `user`, with their profile.
    pub fn member_content(&self, user: &UserId, membership: MembershipState) -> Result<Value> {
        let mut content = json!({"membership": membership});
        if matches!(
            membership,
            MembershipState::Join | MembershipState::Invite | MembershipState::Knock
        ) && let Some(account) = self.users.get(user)?
        {
            if let Some(name) = account.displayname {
                content["displayname"] = json!(name);
            }
            if let Some(url) = account.avatar_url {
                content["avatar_url"] = json!(url);
            }
        }
        Ok(content)
    }
}
