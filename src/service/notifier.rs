//! Per-user wake-ups for `/sync` long polls.
//!
//! Every change a sync reports concerns a known set of users (a room's members, the owner of
//! some account data, the target of a to-device message). Writers name them here, and each user
//! has a [`Cursor`]: the latest position of each stream that concerned them. A sync whose `since`
//! token is at or past its user's cursor has nothing to report and does no work at all; a long
//! poll sleeps on its own user's cursor, so a message in some other room never wakes it.

use ruma::{OwnedUserId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Idle entries (no sync waiting) beyond this many are dropped; see [`Notifier::prune`].
const MAX_IDLE_ENTRIES: usize = 50_000;

/// The latest position of each stream that concerned one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The persistent stream (events, receipts, account data, to-device).
    pub stream: u64,
    /// The in-memory typing position.
    pub typing: u64,
    /// The in-memory presence position.
    pub presence: u64,
}

pub struct Notifier {
    inner: Mutex<Inner>,
}

struct Inner {
    users: HashMap<OwnedUserId, watch::Sender<Cursor>>,
    /// What a user without an entry may have missed: everything up to here. Starts at the stream
    /// position the server started from (anything before a restart may be unreported).
    floor: Cursor,
}

impl Notifier {
    pub fn new(stream_start: u64) -> Notifier {
        Notifier {
            inner: Mutex::new(Inner {
                users: HashMap::new(),
                floor: Cursor {
                    stream: stream_start,
                    ..Cursor::default()
                },
            }),
        }
    }

    /// A receiver of `user`'s cursor. Subscribe before reading, so a change in between wakes.
    pub fn subscribe(&self, user: &UserId) -> watch::Receiver<Cursor> {
        let Ok(mut inner) = self.inner.lock() else {
            // Poisoned: a receiver that says "everything may have changed" and never wakes.
            return watch::Sender::new(Cursor {
                stream: u64::MAX,
                typing: u64::MAX,
                presence: u64::MAX,
            })
            .subscribe();
        };
        let floor = inner.floor;
        inner
            .users
            .entry(user.to_owned())
            .or_insert_with(|| watch::Sender::new(floor))
            .subscribe()
    }

    /// A stream position that concerns `users` has committed.
    pub fn stream<'a>(&self, users: impl IntoIterator<Item = &'a UserId>, position: u64) {
        self.raise(users, |cursor| &mut cursor.stream, position);
    }

    /// Typing changed at `position` in a room `users` are in.
    pub fn typing<'a>(&self, users: impl IntoIterator<Item = &'a UserId>, position: u64) {
        self.raise(users, |cursor| &mut cursor.typing, position);
    }

    /// The presence of someone who shares a room with `users` changed at `position`.
    pub fn presence<'a>(&self, users: impl IntoIterator<Item = &'a UserId>, position: u64) {
        self.raise(users, |cursor| &mut cursor.presence, position);
    }

    fn raise<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        field: fn(&mut Cursor) -> &mut u64,
        position: u64,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let floor = inner.floor;
        for user in users {
            let sender = inner
                .users
                .entry(user.to_owned())
                .or_insert_with(|| watch::Sender::new(floor));
            sender.send_if_modified(|cursor| {
                let value = field(cursor);
                if position > *value {
                    *value = position;
                    true
                } else {
                    false
                }
            });
        }
        if inner.users.len() > MAX_IDLE_ENTRIES {
            inner.prune();
        }
    }
}

impl Inner {
    /// Forgets users nobody is syncing for. Their next sync must then assume anything up to the
    /// highest forgotten position may concern them, so the floor rises to that.
    fn prune(&mut self) {
        let mut floor = self.floor;
        self.users.retain(|_, sender| {
            if sender.receiver_count() > 0 {
                return true;
            }
            let cursor = *sender.borrow();
            floor.stream = floor.stream.max(cursor.stream);
            floor.typing = floor.typing.max(cursor.typing);
            floor.presence = floor.presence.max(cursor.presence);
            false
        });
        self.floor = floor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_users_move() {
        let notifier = Notifier::new(7);
        let alice = ruma::user_id!("@alice:example.org");
        let bob = ruma::user_id!("@bob:example.org");
        let mut alice_rx = notifier.subscribe(alice);
        let mut bob_rx = notifier.subscribe(bob);
        assert_eq!(
            alice_rx.borrow_and_update().stream,
            7,
            "starts at the floor"
        );
        notifier.stream([alice], 9);
        assert!(alice_rx.has_changed().expect("open"));
        assert_eq!(alice_rx.borrow_and_update().stream, 9);
        assert!(!bob_rx.has_changed().expect("open"));
        notifier.stream([alice], 8);
        assert!(!alice_rx.has_changed().expect("open"), "never goes back");
        notifier.typing([bob], 1);
        assert_eq!(bob_rx.borrow_and_update().typing, 1);
    }

    #[test]
    fn pruned_users_start_from_the_highest_forgotten_position() {
        let notifier = Notifier::new(0);
        let alice = ruma::user_id!("@alice:example.org");
        notifier.stream([alice], 5);
        notifier.inner.lock().expect("lock").prune();
        let bob = ruma::user_id!("@bob:example.org");
        assert_eq!(notifier.subscribe(bob).borrow().stream, 5);
    }
}
