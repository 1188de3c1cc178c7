//! Typing notifications: ephemeral, in memory, with their own position so `/sync` can tell what
//! changed. An entry expires by itself after its timeout (a task wakes the syncs then).

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The longest a client may claim to be typing for.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct RoomTyping {
    /// user → when their typing expires.
    users: BTreeMap<OwnedUserId, Instant>,
    /// Position of the last change in this room.
    changed_at: u64,
}

pub struct Typing {
    rooms: Mutex<HashMap<OwnedRoomId, RoomTyping>>,
    /// The typing position: bumped on every change, watched by long polls.
    position: watch::Sender<u64>,
}

impl Default for Typing {
    fn default() -> Self {
        Typing {
            rooms: Mutex::new(HashMap::new()),
            position: watch::Sender::new(0),
        }
    }
}

impl Typing {
    /// Marks `user` typing in `room` for `timeout` (or stops it with `None`).
    pub fn set(
        self: &Arc<Self>,
        room: &RoomId,
        user: &UserId,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let expires = timeout.map(|t| Instant::now() + t.min(MAX_TIMEOUT));
        {
            let mut rooms = self
                .rooms
                .lock()
                .map_err(|_| Error::internal("typing poisoned"))?;
            let entry = rooms.entry(room.to_owned()).or_default();
            let changed = match expires {
                Some(at) => entry.users.insert(user.to_owned(), at).is_none(),
                None => entry.users.remove(user).is_some(),
            };
            // A renewal changes nothing others see; a start or a stop does.
            if changed {
                entry.changed_at = self.bump();
            }
        }
        if let Some(at) = expires {
            // Expire the entry when its time is up, unless it was renewed or stopped meanwhile.
            let typing = self.clone();
            let (room, user) = (room.to_owned(), user.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                typing.expire(&room, &user, at);
            });
        }
        Ok(())
    }

    fn expire(&self, room: &RoomId, user: &UserId, at: Instant) {
        let Ok(mut rooms) = self.rooms.lock() else {
            return;
        };
        let Some(entry) = rooms.get_mut(room) else {
            return;
        };
        if entry.users.get(user) == Some(&at) {
            entry.users.remove(user);
            entry.changed_at = self.bump();
        }
    }

    fn bump(&self) -> u64 {
        let mut next = 0;
        self.position.send_modify(|position| {
            *position += 1;
            next = *position;
        });
        next
    }

    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Who is typing in `room`, if that changed after position `since`.
    pub fn changed_since(&self, room: &RoomId, since: u64) -> Result<Option<Vec<OwnedUserId>>> {
        let rooms = self
            .rooms
            .lock()
            .map_err(|_| Error::internal("typing poisoned"))?;
        Ok(rooms
            .get(room)
            .filter(|entry| entry.changed_at > since)
            .map(|entry| entry.users.keys().cloned().collect()))
    }
}
