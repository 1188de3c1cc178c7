//! State snapshots: the state of a room at a point in its DAG, stored as a diff against a parent
//! snapshot so that a room with thousands of members does not copy its state per event. Every
//! `FULL_EVERY` links the chain restarts with a full snapshot, bounding the walk to read one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::storage::{Cf, Db};

/// short state key → short event id.
pub type StateMap = HashMap<u64, u64>;

const FULL_EVERY: u32 = 64;
// Full maps of large rooms are big: keep few (the current state of busy rooms stays hot).
const CACHE_LIMIT: usize = 32;

/// One stored snapshot: a parent (0 for none), its chain depth, and the entries it sets.
#[derive(Debug, PartialEq)]
struct Snapshot {
    parent: u64,
    depth: u32,
    entries: Vec<(u64, u64)>,
}

impl Snapshot {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * 16);
        out.extend_from_slice(&self.parent.to_be_bytes());
        out.extend_from_slice(&self.depth.to_be_bytes());
        for (key, event) in &self.entries {
            out.extend_from_slice(&key.to_be_bytes());
            out.extend_from_slice(&event.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Snapshot> {
        let (parent, rest) = bytes.split_first_chunk::<8>()?;
        let (depth, rest) = rest.split_first_chunk::<4>()?;
        if rest.len() % 16 != 0 {
            return None;
        }
        let entries = rest
            .chunks_exact(16)
            .map(|chunk| {
                let (key, event) = chunk.split_at(8);
                Some((
                    u64::from_be_bytes(key.try_into().ok()?),
                    u64::from_be_bytes(event.try_into().ok()?),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Snapshot {
            parent: u64::from_be_bytes(*parent),
            depth: u32::from_be_bytes(*depth),
            entries,
        })
    }
}

pub struct Snapshots {
    db: Db,
    counter: Counter,
    cache: Mutex<HashMap<u64, (u32, Arc<StateMap>)>>,
}

impl Snapshots {
    pub fn new(db: Db) -> Result<Self> {
        Ok(Snapshots {
            counter: Counter::open(db.clone(), b"next_snapshot_id")?,
            db,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The id of the empty state (before a room's create event).
    pub const EMPTY: u64 = 0;

    /// The full state of a snapshot, and its chain depth.
    fn load(&self, id: u64) -> Result<(u32, Arc<StateMap>)> {
        if id == Self::EMPTY {
            return Ok((0, Arc::new(StateMap::new())));
        }
        if let Some(hit) = self.cache.lock().map_err(poisoned)?.get(&id) {
            return Ok(hit.clone());
        }
        let table = self.db.table(Cf::StateSnapshots);
        let mut chain = Vec::new();
        let mut next = id;
        let mut depth = None;
        let mut base = Arc::new(StateMap::new());
        while next != Self::EMPTY {
            if let Some((_, state)) = self.cache.lock().map_err(poisoned)?.get(&next) {
                base = state.clone();
                break;
            }
            let bytes = table
                .get(next.to_be_bytes())?
                .ok_or_else(|| Error::internal(format!("missing state snapshot {next}")))?;
            let snapshot = Snapshot::decode(&bytes)
                .ok_or_else(|| Error::internal(format!("corrupt state snapshot {next}")))?;
            depth.get_or_insert(snapshot.depth);
            next = snapshot.parent;
            chain.push(snapshot);
        }
        let mut state = (*base).clone();
        for snapshot in chain.iter().rev() {
            state.extend(snapshot.entries.iter().copied());
        }
        let loaded = (depth.unwrap_or(0), Arc::new(state));
        self.remember(id, loaded.clone())?;
        Ok(loaded)
    }

    /// The full state of a snapshot.
    pub fn state(&self, id: u64) -> Result<Arc<StateMap>> {
        Ok(self.load(id)?.1)
    }

    /// A new snapshot: `parent` with `changes` applied. Returns its id.
    pub fn derive(&self, parent: u64, changes: &[(u64, u64)]) -> Result<u64> {
        let (parent_depth, parent_state) = self.load(parent)?;
        let mut state = (*parent_state).clone();
        state.extend(changes.iter().copied());
        let snapshot = if parent == Self::EMPTY || parent_depth + 1 >= FULL_EVERY {
            let mut entries: Vec<(u64, u64)> = state.iter().map(|(k, v)| (*k, *v)).collect();
            entries.sort_unstable();
            Snapshot {
                parent: Self::EMPTY,
                depth: 1,
                entries,
            }
        } else {
            Snapshot {
                parent,
                depth: parent_depth + 1,
                entries: changes.to_vec(),
            }
        };
        let id = self.counter.next()?;
        self.db
            .table(Cf::StateSnapshots)
            .put(id.to_be_bytes(), snapshot.encode())?;
        self.remember(id, (snapshot.depth, Arc::new(state)))?;
        Ok(id)
    }

    fn remember(&self, id: u64, value: (u32, Arc<StateMap>)) -> Result<()> {
        let mut cache = self.cache.lock().map_err(poisoned)?;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(id, value);
        Ok(())
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("snapshot cache poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips() {
        let snapshot = Snapshot {
            parent: 7,
            depth: 3,
            entries: vec![(1, 2), (u64::MAX, 0)],
        };
        assert_eq!(Snapshot::decode(&snapshot.encode()), Some(snapshot));
        assert_eq!(Snapshot::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn diffs_chain_and_restart_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), &Default::default()).expect("db");
        let snapshots = Snapshots::new(db.clone()).expect("snapshots");
        let mut id = Snapshots::EMPTY;
        for i in 0..200u64 {
            id = snapshots.derive(id, &[(i % 50, i)]).expect("derive");
        }
        // A fresh instance (cold cache) reads the same state through the chain.
        let cold = Snapshots::new(db).expect("snapshots");
        let state = cold.state(id).expect("state");
        assert_eq!(state.len(), 50);
        for key in 0..50u64 {
            assert_eq!(state[&key], 150 + key, "latest write wins for key {key}");
        }
        let (depth, _) = cold.load(id).expect("load");
        assert!(depth < FULL_EVERY);
    }
}
