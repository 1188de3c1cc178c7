//! Server notices: messages from the server's admins to one user, sent by a dedicated account
//! (configured by `server_notices.system_mxid_localpart`) into a room per user that clients
//! show apart (tagged `m.server_notice`), where the user can read but not write.

use http::StatusCode;
use ruma::events::room::member::MembershipState;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::NewEvent;
use crate::service::rooms::create::{CreateRoom, Preset};
use crate::service::rooms::pdu::Transaction;
use crate::service::users::Account;

/// Serializes finding or making a user's notice room, so two notices at once make one room.
#[derive(Default)]
pub struct ServerNotices {
    lock: tokio::sync::Mutex<()>,
}

/// A notice as an admin sends it.
pub struct Notice {
    pub kind: TimelineEventType,
    pub state_key: Option<String>,
    pub content: Value,
    /// The admin's transaction id (`PUT …/send_server_notice/{txnId}`), so retries send once.
    pub transaction: Option<(OwnedUserId, String)>,
}

impl Services {
    /// Sends `notice` to `user`; returns the event id.
    pub async fn send_server_notice(&self, user: &UserId, notice: Notice) -> Result<OwnedEventId> {
        let sender = self.server_notices_user()?;
        if !self.users.is_local(user) {
            return Err(Error::invalid_param(
                "Server notices can only be sent to local users",
            ));
        }
        if !self.users.exists(user)? {
            return Err(Error::not_found(format!("Unknown user {user}")));
        }
        let room_id = self.notice_room(&sender, user).await?;
        let new = match notice.state_key {
            Some(state_key) => NewEvent::state(
                StateEventType::from(notice.kind.to_string()),
                state_key,
                notice.content,
            ),
            None => NewEvent::message(notice.kind, notice.content),
        };
        let transaction = notice.transaction.map(|(admin, txn_id)| Transaction {
            device_id: format!("server_notices:{admin}"),
            txn_id,
        });
        let event_id = self
            .append_event(&room_id, &sender, new, transaction)
            .await?;
        tracing::info!(user = %user, room = %room_id, event = %event_id, "server notice sent");
        Ok(event_id)
    }

    /// The account notices come from, made on first use.
    fn server_notices_user(&self) -> Result<OwnedUserId> {
        let localpart = &self.config.server_notices.system_mxid_localpart;
        if localpart.is_empty() {
            return Err(Error::custom(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Server notices are not enabled on this server",
            ));
        }
        self.users.parse_local_user(localpart)
    }

    /// The room `user` gets notices in: one the notices account is joined to and the user is
    /// joined or invited to, or a new one (the user is invited and it is tagged for them).
    async fn notice_room(&self, sender: &UserId, user: &UserId) -> Result<OwnedRoomId> {
        let _guard = self.server_notices.lock.lock().await;
        if !self.users.exists(sender)? {
            let account = Account {
                displayname: Some(self.config.server_notices.system_mxid_display_name.clone()),
                ..Account::default()
            };
            self.users.create(sender, None, account).await?;
        }
        for (room_id, record) in self.rooms.rooms_of(user)? {
            let user_is_there = matches!(
                record.membership,
                MembershipState::Join | MembershipState::Invite
            );
            let sender_is_there =
                self.rooms.current_membership(&room_id, sender)? == Some(MembershipState::Join);
            if user_is_there && sender_is_there && self.is_notice_room(user, &room_id)? {
                return Ok(room_id);
            }
        }
        let room_id = self
            .create_room(
                sender,
                CreateRoom {
                    preset: Some(Preset::PrivateChat),
                    name: Some(self.config.server_notices.room_name.clone()),
                    invite: vec![user.to_owned()],
                    // The user reads notices; only the server writes.
                    power_level_content_override: Some(json!({"users_default": -10})),
                    ..CreateRoom::default()
                },
            )
            .await?;
        self.account_data.store(
            user,
            Some(&room_id),
            "m.tag",
            json!({"tags": {"m.server_notice": {}}}),
        )?;
        Ok(room_id)
    }

    fn is_notice_room(&self, user: &UserId, room_id: &ruma::RoomId) -> Result<bool> {
        Ok(self
            .account_data
            .get(user, Some(room_id), "m.tag")?
            .is_some_and(|tags| tags["tags"].get("m.server_notice").is_some()))
    }
}
