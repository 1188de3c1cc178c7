//! Registration tokens (`m.login.registration_token`): who may register when registration is
//! limited to invitees. Each token has an optional use limit and expiry; `pending` counts uses
//! whose UIA stage passed but whose registration has not finished yet.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::service::users::now_ms;
use crate::storage::{Cf, Db};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationToken {
    pub token: String,
    pub uses_allowed: Option<u64>,
    pub pending: u64,
    pub completed: u64,
    /// Milliseconds since the epoch after which the token no longer works.
    pub expiry_time: Option<u64>,
}

impl RegistrationToken {
    pub fn usable(&self) -> bool {
        let not_expired = self.expiry_time.is_none_or(|t| t > now_ms());
        let uses_left = self
            .uses_allowed
            .is_none_or(|n| self.pending + self.completed < n);
        not_expired && uses_left
    }
}

pub struct RegistrationTokens {
    db: Db,
    /// Read-modify-write of the counters happens under this lock.
    lock: Mutex<()>,
}

impl RegistrationTokens {
    pub fn new(db: Db) -> Self {
        RegistrationTokens {
            db,
            lock: Mutex::new(()),
        }
    }

    /// Creates a token (random 16 characters if none given).
    pub fn create(
        &self,
        token: Option<String>,
        uses_allowed: Option<u64>,
        expiry_time: Option<u64>,
    ) -> Result<RegistrationToken> {
        let token = match token {
            Some(token) => {
                let valid = !token.is_empty()
                    && token.len() <= 64
                    && token.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')
                    });
                if !valid {
                    return Err(Error::invalid_param(
                        "Token must be 1-64 characters of A-Z a-z 0-9 . _ ~ -",
                    ));
                }
                token
            }
            None => crate::service::random_string(16),
        };
        let _guard = self
            .lock
            .lock()
            .map_err(|_| Error::internal("token lock poisoned"))?;
        let table = self.db.table(Cf::RegistrationTokens);
        if table.contains(&token)? {
            return Err(Error::invalid_param(format!(
                "Token {token} already exists"
            )));
        }
        let record = RegistrationToken {
            token: token.clone(),
            uses_allowed,
            pending: 0,
            completed: 0,
            expiry_time,
        };
        table.put_json(&token, &record)?;
        Ok(record)
    }

    /// Every token, in token order.
    pub fn all(&self) -> Result<Vec<RegistrationToken>> {
        Ok(self
            .db
            .table(Cf::RegistrationTokens)
            .scan_prefix_json::<RegistrationToken>([])?
            .into_iter()
            .map(|(_, token)| token)
            .collect())
    }

    /// Changes a token's limits (`Some(None)` removes one). Returns the token, or `None` if
    /// there is no such token.
    pub fn set_limits(
        &self,
        token: &str,
        uses_allowed: Option<Option<u64>>,
        expiry_time: Option<Option<u64>>,
    ) -> Result<Option<RegistrationToken>> {
        let changed = self.update(token, |t| {
            if let Some(uses) = uses_allowed {
                t.uses_allowed = uses;
            }
            if let Some(expiry) = expiry_time {
                t.expiry_time = expiry;
            }
            true
        })?;
        if !changed {
            return Ok(None);
        }
        self.get(token)
    }

    /// Deletes a token; false if there was none.
    pub fn delete(&self, token: &str) -> Result<bool> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| Error::internal("token lock poisoned"))?;
        let table = self.db.table(Cf::RegistrationTokens);
        if !table.contains(token)? {
            return Ok(false);
        }
        table.delete(token)?;
        Ok(true)
    }

    pub fn get(&self, token: &str) -> Result<Option<RegistrationToken>> {
        Ok(self.db.table(Cf::RegistrationTokens).get_json(token)?)
    }

    /// Whether the token would let someone register now.
    pub fn is_valid(&self, token: &str) -> Result<bool> {
        Ok(self.get(token)?.is_some_and(|t| t.usable()))
    }

    /// Holds one use of the token for a registration in progress; false if it cannot be used.
    pub fn reserve(&self, token: &str) -> Result<bool> {
        self.update(token, |t| {
            if t.usable() {
                t.pending += 1;
                true
            } else {
                false
            }
        })
    }

    /// Turns a held use into a completed one, once the account exists.
    pub fn complete(&self, token: &str) -> Result<()> {
        self.update(token, |t| {
            t.pending = t.pending.saturating_sub(1);
            t.completed += 1;
            true
        })
        .map(drop)
    }

    fn update(
        &self,
        token: &str,
        change: impl FnOnce(&mut RegistrationToken) -> bool,
    ) -> Result<bool> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| Error::internal("token lock poisoned"))?;
        let Some(mut record) = self.get(token)? else {
            return Ok(false);
        };
        let changed = change(&mut record);
        if changed {
            self.db
                .table(Cf::RegistrationTokens)
                .put_json(token, &record)?;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_counted_and_limited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens =
            RegistrationTokens::new(Db::open(dir.path(), &Default::default()).expect("db"));
        let token = tokens
            .create(Some("abc".into()), Some(1), None)
            .expect("create")
            .token;
        assert!(tokens.is_valid("abc").expect("valid"));
        assert!(tokens.reserve(&token).expect("reserve"));
        assert!(
            !tokens.is_valid("abc").expect("valid"),
            "the one use is held"
        );
        tokens.complete(&token).expect("complete");
        let record = tokens.get(&token).expect("get").expect("exists");
        assert_eq!((record.pending, record.completed), (0, 1));
        assert!(!tokens.reserve(&token).expect("reserve"));
        assert!(!tokens.is_valid("nope").expect("valid"));
        assert!(
            tokens
                .create(Some("bad token!".into()), None, None)
                .is_err()
        );
    }

    #[test]
    fn expired_tokens_do_not_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens =
            RegistrationTokens::new(Db::open(dir.path(), &Default::default()).expect("db"));
        tokens
            .create(Some("old".into()), None, Some(1))
            .expect("create");
        assert!(!tokens.is_valid("old").expect("valid"));
    }
}
