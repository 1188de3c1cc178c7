//! Typing notifications: ephemeral, in memory, with their own position so `/sync` can tell what
//! changed. An entry expires by itself after its timeout (a task wakes the syncs then).
//! The room's members are woken by `Services::set_typing`; this module knows nothing of rooms.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::service::Services;

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
    /// Marks `user` typing in `room` for `timeout` (or stops it with `None`). Returns the new
    /// position if others see a change, and when the entry expires.
    fn set(
        &self,
        room: &RoomId,
        user: &UserId,
        timeout: Option<Duration>,
    ) -> Result<(Option<u64>, Option<Instant>)> {
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
                return Ok((Some(entry.changed_at), expires));
            }
        }
        Ok((None, expires))
    }

    /// Ends `user`'s typing if it still expires `at` (not renewed or stopped meanwhile).
    /// Returns the new position if it did.
    fn expire(&self, room: &RoomId, user: &UserId, at: Instant) -> Option<u64> {
        let mut rooms = self.rooms.lock().ok()?;
        let entry = rooms.get_mut(room)?;
        if entry.users.get(user) != Some(&at) {
            return None;
        }
        entry.users.remove(user);
        entry.changed_at = self.bump();
        Some(entry.changed_at)
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

impl Services {
    /// Marks `user` typing (or not) and wakes the room's members; schedules the expiry.
    pub fn set_typing(
        self: &Arc<Self>,
        room: &RoomId,
        user: &UserId,
        timeout: Option<Duration>,
    ) -> Result<()> {
        if self.users.is_shadow_banned(user)? {
            return Ok(());
        }
        let (changed, expires) = self.typing.set(room, user, timeout)?;
        if let Some(position) = changed {
            self.wake_for_typing(room, position)?;
        }
        if let Some(at) = expires {
            // Weak: a pending expiry must not keep a stopped server's services alive.
            let services = Arc::downgrade(self);
            let (room, user) = (room.to_owned(), user.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                if let Some(services) = services.upgrade()
                    && let Some(position) = services.typing.expire(&room, &user, at)
                    && let Err(err) = services.wake_for_typing(&room, position)
                {
                    tracing::warn!(%err, %room, "could not wake syncs for an expired typing notice");
                }
            });
        }
        Ok(())
    }

    fn wake_for_typing(&self, room: &RoomId, position: u64) -> Result<()> {
        let members = self.rooms.joined_members(room)?;
        self.stream
            .notifier
            .typing(members.iter().map(|member| &**member), position);
        Ok(())
    }
}
