//! Read receipts (`m.read`, `m.read.private`, per thread) and the fully-read marker. Receipts
//! take stream positions, so `/sync` delivers each change once; private receipts go only to
//! their owner.

use ruma::{EventId, OwnedEventId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::stream::Stream;
use crate::service::users::now_ms;
use crate::storage::{Cf, Db, Key, KeyReader};

pub const READ: &str = "m.read";
pub const READ_PRIVATE: &str = "m.read.private";

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    event_id: OwnedEventId,
    ts: u64,
    position: u64,
}

pub struct Receipts {
    db: Db,
    stream: Arc<Stream>,
}

/// `thread` is empty for unthreaded receipts, `main` or a thread root id otherwise.
fn key(room: &RoomId, user: &UserId, kind: &str, thread: &str) -> Key {
    Key::new()
        .str(room.as_str())
        .str(user.as_str())
        .str(kind)
        .bytes(thread.as_bytes())
}

impl Receipts {
    pub fn new(db: Db, stream: Arc<Stream>) -> Self {
        Receipts { db, stream }
    }

    pub fn set(
        &self,
        room: &RoomId,
        user: &UserId,
        kind: &str,
        thread: &str,
        event_id: &EventId,
    ) -> Result<()> {
        let ticket = self.stream.begin()?;
        let stored = Stored {
            event_id: event_id.to_owned(),
            ts: now_ms(),
            position: ticket.position,
        };
        self.db
            .table(Cf::Receipts)
            .put_json(key(room, user, kind, thread), &stored)?;
        drop(ticket);
        Ok(())
    }

    /// The event a user's own unthreaded (or main-timeline) receipt of `kind` points at.
    pub fn own(&self, room: &RoomId, user: &UserId, kind: &str) -> Result<Option<OwnedEventId>> {
        let table = self.db.table(Cf::Receipts);
        let mut latest: Option<Stored> = None;
        for thread in ["", "main"] {
            if let Some(stored) = table.get_json::<Stored>(key(room, user, kind, thread))?
                && latest.as_ref().is_none_or(|l| stored.position > l.position)
            {
                latest = Some(stored);
            }
        }
        Ok(latest.map(|stored| stored.event_id))
    }

    /// The `m.receipt` content for receipts in `room` changed in `(since, upto]` that `viewer`
    /// may see, or `None` if there are none.
    pub fn changes(
        &self,
        room: &RoomId,
        viewer: &UserId,
        since: u64,
        upto: u64,
    ) -> Result<Option<Value>> {
        let prefix = Key::new().str(room.as_str());
        let mut content = Map::new();
        for (key, stored) in self
            .db
            .table(Cf::Receipts)
            .scan_prefix_json::<Stored>(&prefix)?
        {
            if stored.position <= since || stored.position > upto {
                continue;
            }
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            let (Some(user), Some(kind)) = (reader.str(), reader.str()) else {
                return Err(Error::internal("corrupt receipt key"));
            };
            if kind == READ_PRIVATE && user != viewer.as_str() {
                continue;
            }
            let thread = std::str::from_utf8(reader.rest()).map_err(Error::internal)?;
            let mut receipt = json!({"ts": stored.ts});
            if !thread.is_empty() {
                receipt["thread_id"] = json!(thread);
            }
            let by_event = content
                .entry(stored.event_id.to_string())
                .or_insert_with(|| json!({}));
            by_event[kind][user] = receipt;
        }
        Ok((!content.is_empty()).then_some(Value::Object(content)))
    }
}
