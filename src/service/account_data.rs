//! Account data: per-user (and per-user-per-room) JSON documents such as `m.direct`, tags and
//! client settings. Each write takes a stream position so sync can deliver it once.

use ruma::{OwnedRoomId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::stream::Stream;
use crate::storage::{Cf, Db, Key, KeyReader};

/// Types the server manages itself (receipts and push rules have their own endpoints).
const SERVER_MANAGED: &[&str] = &["m.fully_read", "m.push_rules"];

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    position: u64,
    content: Value,
}

pub struct AccountData {
    db: Db,
    stream: Arc<Stream>,
}

fn key(user: &UserId, room: Option<&RoomId>, kind: &str) -> Key {
    Key::new()
        .str(user.as_str())
        .str(room.map(|r| r.as_str()).unwrap_or_default())
        .bytes(kind.as_bytes())
}

impl AccountData {
    pub fn new(db: Db, stream: Arc<Stream>) -> Self {
        AccountData { db, stream }
    }

    /// Stores `content` (a JSON object) for `user`, globally or for one room.
    pub fn set(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        kind: &str,
        content: Value,
    ) -> Result<()> {
        if SERVER_MANAGED.contains(&kind) {
            return Err(Error::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                ruma::api::error::ErrorKind::BadJson,
                format!("{kind} is managed by the server and cannot be set here"),
            ));
        }
        if !content.is_object() {
            return Err(Error::bad_json("Account data must be a JSON object"));
        }
        self.store(user, room, kind, content)
    }

    /// Stores account data without the client-facing checks (for server-managed types such as
    /// `m.fully_read`).
    pub fn store(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        kind: &str,
        content: Value,
    ) -> Result<()> {
        let mut ticket = self.stream.begin()?;
        ticket.concerns([user]);
        let stored = Stored {
            position: ticket.position,
            content,
        };
        self.db
            .table(Cf::AccountData)
            .put_json(key(user, room, kind), &stored)?;
        // Published to syncs only once written.
        drop(ticket);
        Ok(())
    }

    /// What changed for `user` in `(since, upto]`: `(room or None for global, type, content)`.
    pub fn changes(
        &self,
        user: &UserId,
        since: u64,
        upto: u64,
    ) -> Result<Vec<(Option<OwnedRoomId>, String, Value)>> {
        let prefix = Key::new().str(user.as_str());
        let mut changes = Vec::new();
        for (key, stored) in self
            .db
            .table(Cf::AccountData)
            .scan_prefix_json::<Stored>(&prefix)?
        {
            if stored.position <= since || stored.position > upto {
                continue;
            }
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            let room = reader
                .str()
                .ok_or_else(|| Error::internal("corrupt account data key"))?;
            let room = if room.is_empty() {
                None
            } else {
                Some(OwnedRoomId::try_from(room).map_err(Error::internal)?)
            };
            let kind = String::from_utf8(reader.rest().to_vec()).map_err(Error::internal)?;
            changes.push((room, kind, stored.content));
        }
        Ok(changes)
    }

    /// The users `user` ignores (`m.ignored_user_list`): their events and invites are hidden.
    pub fn ignored_users(&self, user: &UserId) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .get(user, None, "m.ignored_user_list")?
            .and_then(|content| {
                content
                    .get("ignored_users")
                    .and_then(Value::as_object)
                    .map(|users| users.keys().cloned().collect())
            })
            .unwrap_or_default())
    }

    pub fn get(&self, user: &UserId, room: Option<&RoomId>, kind: &str) -> Result<Option<Value>> {
        Ok(self
            .db
            .table(Cf::AccountData)
            .get_json::<Stored>(key(user, room, kind))?
            .map(|s| s.content))
    }
}
