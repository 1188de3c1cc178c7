//! The one stream: every change `/sync` reports takes the next stream position.
//!
//! Writers take positions in one order but may commit in another, so readers are only told
//! about a position once it and every lower one have committed (the published watermark);
//! otherwise a sync could hand out a token past an event that is not yet visible and skip it.

use ruma::{OwnedUserId, UserId};
use std::collections::BTreeSet;
use std::sync::Mutex;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::service::notifier::Notifier;
use crate::storage::Db;

pub struct Stream {
    counter: Counter,
    state: Mutex<InFlight>,
    published: watch::Sender<u64>,
    /// Who each position concerns, so long polls wake only for their own user.
    pub notifier: Notifier,
}

struct InFlight {
    pending: BTreeSet<u64>,
    highest: u64,
}

/// A position being written. Dropping it (after the batch commits, or on failure) retires it
/// and wakes the users it concerns.
pub struct Ticket<'a> {
    stream: &'a Stream,
    pub position: u64,
    concerns: Vec<OwnedUserId>,
}

impl Ticket<'_> {
    /// Names users whose syncs this write may change.
    pub fn concerns<'u>(&mut self, users: impl IntoIterator<Item = &'u UserId>) {
        self.concerns
            .extend(users.into_iter().map(ToOwned::to_owned));
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.stream.retire(self.position);
        self.stream
            .notifier
            .stream(self.concerns.iter().map(|user| &**user), self.position);
    }
}

impl Stream {
    pub fn open(db: Db) -> Result<Stream> {
        let counter = Counter::open(db, b"next_stream_position")?;
        // Everything below the counter's restart point is on disk.
        let start = counter.current();
        Ok(Stream {
            counter,
            state: Mutex::new(InFlight {
                pending: BTreeSet::new(),
                highest: start,
            }),
            published: watch::Sender::new(start),
            notifier: Notifier::new(start),
        })
    }

    /// Reserves the next position for a write.
    pub fn begin(&self) -> Result<Ticket<'_>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::internal("stream poisoned"))?;
        let position = self.counter.next()?;
        state.pending.insert(position);
        state.highest = state.highest.max(position);
        Ok(Ticket {
            stream: self,
            position,
            concerns: Vec::new(),
        })
    }

    fn retire(&self, position: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.pending.remove(&position);
        let visible = match state.pending.first() {
            Some(lowest) => lowest - 1,
            None => state.highest,
        };
        self.published.send_if_modified(|current| {
            if visible > *current {
                *current = visible;
                true
            } else {
                false
            }
        });
    }

    /// Every position up to this one has committed.
    pub fn current(&self) -> u64 {
        *self.published.borrow()
    }

    /// A receiver that changes whenever the published position moves. Subscribe before reading.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_publish_only_when_all_lower_ones_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stream =
            Stream::open(Db::open(dir.path(), &Default::default()).expect("db")).expect("stream");
        let start = stream.current();
        let first = stream.begin().expect("first");
        let second = stream.begin().expect("second");
        let second_position = second.position;
        drop(second);
        assert_eq!(
            stream.current(),
            start,
            "the first write is still in flight"
        );
        drop(first);
        assert_eq!(stream.current(), second_position);
    }
}
