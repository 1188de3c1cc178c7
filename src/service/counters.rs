//! Persistent counters (stream positions, short ids) that never hand out a value twice, even
//! across crashes, without a write per value: the counter persists a high-water mark a block
//! ahead, and after a restart continues from that mark (leaving a gap, which is harmless).

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::storage::{Cf, Db};

const BLOCK: u64 = 1024;

pub struct Counter {
    db: Db,
    key: &'static [u8],
    state: Mutex<CounterState>,
}

struct CounterState {
    next: u64,
    reserved: u64,
}

impl Counter {
    /// Opens the counter stored under `key` in the global column family.
    pub fn open(db: Db, key: &'static [u8]) -> Result<Counter> {
        let stored = db
            .table(Cf::Global)
            .get(key)?
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| {
                        Error::internal(format!("corrupt counter {}", String::from_utf8_lossy(key)))
                    })
            })
            .transpose()?
            .unwrap_or(1);
        Ok(Counter {
            db,
            key,
            state: Mutex::new(CounterState {
                next: stored,
                reserved: stored,
            }),
        })
    }

    /// The next value: strictly greater than every value handed out before, also across restarts.
    pub fn next(&self) -> Result<u64> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::internal("counter poisoned"))?;
        if state.next >= state.reserved {
            let reserved = state.next + BLOCK;
            self.db
                .table(Cf::Global)
                .put(self.key, reserved.to_be_bytes())?;
            state.reserved = reserved;
        }
        let value = state.next;
        state.next += 1;
        Ok(value)
    }

    /// The last value handed out (0 if none yet in this process's range).
    pub fn current(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.next.saturating_sub(1))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_increase_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last = 0;
        for _ in 0..3 {
            let db = Db::open(dir.path(), &Default::default()).expect("db");
            let counter = Counter::open(db, b"test_counter").expect("counter");
            for _ in 0..10 {
                let value = counter.next().expect("next");
                assert!(value > last);
                last = value;
            }
        }
    }
}
