//! Presence: online, unavailable (idle) or offline, with a status message. Kept in memory with
//! its own position (like typing): it changes often and is worthless after a restart.

use ruma::presence::PresenceState;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::users::now_ms;

/// An `online` user who did nothing for this long shows as `unavailable`.
const IDLE_AFTER: Duration = Duration::from_secs(5 * 60);
/// Activity within this window does not count as a change (keeps busy users from waking
/// everyone's sync on every request).
const ACTIVITY_GRANULARITY_MS: u64 = 60_000;

#[derive(Clone, Debug)]
pub struct UserPresence {
    pub state: PresenceState,
    pub status_msg: Option<String>,
    pub last_active_ms: u64,
    changed_at: u64,
}

impl UserPresence {
    /// The state as others see it now (an idle `online` user is `unavailable`).
    pub fn effective_state(&self) -> PresenceState {
        let idle = now_ms().saturating_sub(self.last_active_ms) > IDLE_AFTER.as_millis() as u64;
        if self.state == PresenceState::Online && idle {
            PresenceState::Unavailable
        } else {
            self.state.clone()
        }
    }

    pub fn last_active_ago(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_active_ms))
    }

    pub fn currently_active(&self) -> bool {
        self.effective_state() == PresenceState::Online
    }

    /// The `m.presence` event content.
    pub fn content(&self) -> Value {
        let mut content = json!({
            "presence": self.effective_state(),
            "last_active_ago": self.last_active_ago().as_millis() as u64,
            "currently_active": self.currently_active(),
        });
        if let Some(message) = &self.status_msg {
            content["status_msg"] = json!(message);
        }
        content
    }
}

pub struct Presence {
    enabled: bool,
    users: Mutex<HashMap<OwnedUserId, UserPresence>>,
    position: watch::Sender<u64>,
}

impl Presence {
    pub fn new(enabled: bool) -> Self {
        Presence {
            enabled,
            users: Mutex::new(HashMap::new()),
            position: watch::Sender::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Sets a user's presence (and, with `status_msg: Some`, their message). Returns the new
    /// position if others see a change.
    fn set(
        &self,
        user: &UserId,
        state: PresenceState,
        status_msg: Option<Option<String>>,
    ) -> Result<Option<u64>> {
        if !self.enabled {
            return Ok(None);
        }
        let now = now_ms();
        let mut users = self
            .users
            .lock()
            .map_err(|_| Error::internal("presence poisoned"))?;
        let entry = users.entry(user.to_owned()).or_insert(UserPresence {
            state: PresenceState::Offline,
            status_msg: None,
            last_active_ms: 0,
            changed_at: 0,
        });
        let was = (
            entry.effective_state(),
            entry.status_msg.clone(),
            entry.last_active_ms,
        );
        entry.state = state.clone();
        if let Some(message) = status_msg {
            entry.status_msg = message;
        }
        if state == PresenceState::Online {
            entry.last_active_ms = now;
        }
        let fresh_activity =
            now.saturating_sub(was.2) >= ACTIVITY_GRANULARITY_MS && state == PresenceState::Online;
        if was.0 != entry.effective_state() || was.1 != entry.status_msg || fresh_activity {
            let mut next = 0;
            self.position.send_modify(|position| {
                *position += 1;
                next = *position;
            });
            entry.changed_at = next;
            return Ok(Some(next));
        }
        Ok(None)
    }

    pub fn get(&self, user: &UserId) -> Result<Option<UserPresence>> {
        Ok(self
            .users
            .lock()
            .map_err(|_| Error::internal("presence poisoned"))?
            .get(user)
            .cloned())
    }

    /// Users whose presence changed after `since`.
    pub fn changed_since(&self, since: u64) -> Result<Vec<(OwnedUserId, UserPresence)>> {
        let users = self
            .users
            .lock()
            .map_err(|_| Error::internal("presence poisoned"))?;
        Ok(users
            .iter()
            .filter(|(_, p)| p.changed_at > since)
            .map(|(u, p)| (u.clone(), p.clone()))
            .collect())
    }

    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }
}

impl Services {
    /// Sets `user`'s presence and wakes everyone who shares a room with them.
    pub fn set_presence(
        &self,
        user: &UserId,
        state: PresenceState,
        status_msg: Option<Option<String>>,
    ) -> Result<()> {
        if let Some(position) = self.presence.set(user, state, status_msg)? {
            let peers = self.rooms.room_peers(user)?;
            self.stream
                .notifier
                .presence(peers.iter().map(|peer| &**peer), position);
        }
        Ok(())
    }
}
