//! Short ids: u64s standing in for long strings (room ids, event ids, state keys) in hot keys
//! and in state snapshots, so that a room's state is a list of 16-byte pairs.

use ruma::events::StateEventType;
use ruma::{EventId, OwnedEventId, RoomId};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::storage::{Cf, Db, Key};

const ROOM: u8 = b'r';
const EVENT: u8 = b'e';
const STATE_KEY: u8 = b's';

/// Entries kept in memory per kind before the cache is cleared (short ids are stable, so a
/// cleared cache only costs reads).
const CACHE_LIMIT: usize = 100_000;

pub struct ShortIds {
    db: Db,
    counter: Counter,
    /// Serializes creation so one string never gets two ids.
    create: Mutex<()>,
    cache: Mutex<HashMap<Vec<u8>, u64>>,
    events: Mutex<HashMap<u64, OwnedEventId>>,
}

impl ShortIds {
    pub fn new(db: Db) -> Result<Self> {
        Ok(ShortIds {
            counter: Counter::open(db.clone(), b"next_short_id")?,
            db,
            create: Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
        })
    }

    fn forward_key(kind: u8, long: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(long.len() + 1);
        key.push(kind);
        key.extend_from_slice(long);
        key
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<u64>> {
        if let Some(id) = self.cache.lock().map_err(poisoned)?.get(key) {
            return Ok(Some(*id));
        }
        let stored = self
            .db
            .table(Cf::ShortIds)
            .get(key)?
            .map(|bytes| decode_u64(&bytes))
            .transpose()?;
        if let Some(id) = stored {
            self.remember(key.to_vec(), id)?;
        }
        Ok(stored)
    }

    fn remember(&self, key: Vec<u8>, id: u64) -> Result<()> {
        let mut cache = self.cache.lock().map_err(poisoned)?;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, id);
        Ok(())
    }

    fn get_or_create(&self, kind: u8, long: &[u8], reverse: Option<(Cf, &[u8])>) -> Result<u64> {
        let key = Self::forward_key(kind, long);
        if let Some(id) = self.lookup(&key)? {
            return Ok(id);
        }
        let _guard = self.create.lock().map_err(poisoned)?;
        if let Some(id) = self.lookup(&key)? {
            return Ok(id);
        }
        let id = self.counter.next()?;
        let mut batch = self.db.batch();
        batch.put(Cf::ShortIds, &key, id.to_be_bytes());
        if let Some((cf, value)) = reverse {
            batch.put(cf, id.to_be_bytes(), value);
        }
        batch.commit()?;
        self.remember(key, id)?;
        Ok(id)
    }

    pub fn room(&self, room_id: &RoomId) -> Result<u64> {
        self.get_or_create(ROOM, room_id.as_bytes(), None)
    }

    pub fn event(&self, event_id: &EventId) -> Result<u64> {
        self.get_or_create(
            EVENT,
            event_id.as_bytes(),
            Some((Cf::ShortEventIds, event_id.as_bytes())),
        )
    }

    pub fn state_key(&self, kind: &StateEventType, state_key: &str) -> Result<u64> {
        let long = Key::new()
            .str(&kind.to_string())
            .bytes(state_key.as_bytes())
            .into_vec();
        self.get_or_create(STATE_KEY, &long, None)
    }

    pub fn existing_state_key(
        &self,
        kind: &StateEventType,
        state_key: &str,
    ) -> Result<Option<u64>> {
        let long = Key::new()
            .str(&kind.to_string())
            .bytes(state_key.as_bytes())
            .into_vec();
        self.lookup(&Self::forward_key(STATE_KEY, &long))
    }

    /// The event id behind a short event id.
    pub fn event_id(&self, short: u64) -> Result<OwnedEventId> {
        if let Some(id) = self.events.lock().map_err(poisoned)?.get(&short) {
            return Ok(id.clone());
        }
        let bytes = self
            .db
            .table(Cf::ShortEventIds)
            .get(short.to_be_bytes())?
            .ok_or_else(|| Error::internal(format!("unknown short event id {short}")))?;
        let id = OwnedEventId::try_from(String::from_utf8(bytes).map_err(Error::internal)?)
            .map_err(Error::internal)?;
        let mut events = self.events.lock().map_err(poisoned)?;
        if events.len() >= CACHE_LIMIT {
            events.clear();
        }
        events.insert(short, id.clone());
        Ok(id)
    }
}

pub fn decode_u64(bytes: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::internal("corrupt u64 value"))
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("short id cache poisoned")
}
