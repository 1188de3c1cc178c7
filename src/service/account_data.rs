//! Account data: per-user (and per-user-per-room) JSON documents such as `m.direct`, tags and
//! client settings. Each write takes a stream position so sync can deliver it once.

use ruma::{RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::storage::{Cf, Db, Key};

/// Types the server manages itself (receipts and push rules have their own endpoints).
const SERVER_MANAGED: &[&str] = &["m.fully_read", "m.push_rules"];

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    position: u64,
    content: Value,
}

pub struct AccountData {
    db: Db,
    stream: Arc<Counter>,
}

fn key(user: &UserId, room: Option<&RoomId>, kind: &str) -> Key {
    Key::new()
        .str(user.as_str())
        .str(room.map(|r| r.as_str()).unwrap_or_default())
        .bytes(kind.as_bytes())
}

impl AccountData {
    pub fn new(db: Db, stream: Arc<Counter>) -> Self {
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
        let stored = Stored {
            position: self.stream.next()?,
            content,
        };
        self.db
            .table(Cf::AccountData)
            .put_json(key(user, room, kind), &stored)?;
        Ok(())
    }

    pub fn get(&self, user: &UserId, room: Option<&RoomId>, kind: &str) -> Result<Option<Value>> {
        Ok(self
            .db
            .table(Cf::AccountData)
            .get_json::<Stored>(key(user, room, kind))?
            .map(|s| s.content))
    }
}
