//! Read receipts (`m.read`, `m.read.private`, per thread) and the fully-read marker. Receipts
//! take stream positions, so `/sync` delivers each change once; private receipts go only to
//! their owner.

use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

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
    /// Position of each room's latest receipt since start-up, so a sync can tell a room has
    /// none newer without scanning them. A room missing here has none after `floor`.
    latest: Mutex<HashMap<OwnedRoomId, u64>>,
    /// The stream position at start-up: every earlier receipt is at or below it.
    floor: u64,
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
        Receipts {
            db,
            floor: stream.current(),
            stream,
            latest: Mutex::default(),
        }
    }

    /// Stores `user`'s receipt and wakes the syncs of `audience` (the room's joined members, or
    /// the owner alone for a private receipt).
    pub fn set<'a>(
        &self,
        room: &RoomId,
        user: &UserId,
        kind: &str,
        thread: &str,
        event_id: &EventId,
        audience: impl IntoIterator<Item = &'a UserId>,
    ) -> Result<()> {
        let mut ticket = self.stream.begin()?;
        ticket.concerns(audience);
        let stored = Stored {
            event_id: event_id.to_owned(),
            ts: now_ms(),
            position: ticket.position,
        };
        self.db
            .table(Cf::Receipts)
            .put_json(key(room, user, kind, thread), &stored)?;
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(room.to_owned(), ticket.position);
        }
        drop(ticket);
        Ok(())
    }

    /// The user's own receipts of both read kinds: `(thread, event)` pairs, `thread` being empty
    /// for unthreaded receipts, `main` or a thread root otherwise.
    pub fn own(&self, room: &RoomId, user: &UserId) -> Result<Vec<(String, OwnedEventId)>> {
        let table = self.db.table(Cf::Receipts);
        let mut receipts = Vec::new();
        for kind in [READ, READ_PRIVATE] {
            let prefix = Key::new().str(room.as_str()).str(user.as_str()).str(kind);
            for (key, stored) in table.scan_prefix_json::<Stored>(&prefix)? {
                let thread =
                    std::str::from_utf8(&key[prefix.as_ref().len()..]).map_err(Error::internal)?;
                receipts.push((thread.to_owned(), stored.event_id));
            }
        }
        Ok(receipts)
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
        if let Ok(latest) = self.latest.lock()
            && latest.get(room).copied().unwrap_or(self.floor) <= since
        {
            return Ok(None);
        }
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

impl crate::service::Services {
    /// Stores a receipt; a public one wakes the room's joined members, a private one its owner.
    pub fn set_receipt(
        &self,
        room: &RoomId,
        user: &UserId,
        kind: &str,
        thread: &str,
        event_id: &EventId,
    ) -> Result<()> {
        let members = if kind == READ_PRIVATE {
            vec![user.to_owned()]
        } else {
            self.rooms.joined_members(room)?
        };
        self.receipts.set(
            room,
            user,
            kind,
            thread,
            event_id,
            members.iter().map(|member| &**member),
        )
    }
}
