//! A user's push rules: the spec's defaults until they change one, then their own copy, kept as
//! the `m.push_rules` account data the spec says clients receive in `/sync`. The same rules
//! decide unread counts (see `notifications`).

use ruma::push::Ruleset;
use ruma::{OwnedUserId, UserId};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::Services;

const PUSH_RULES: &str = "m.push_rules";

/// Users whose rules are kept in memory; past this the cache starts over.
const CACHED_USERS: usize = 10_000;

/// Serializes edits, so two concurrent changes to one user's rules do not lose one, and keeps
/// recently used rule sets: push evaluation reads every member's rules for every new event.
/// Edits go through here (clients cannot write `m.push_rules` directly), so the cache stays
/// right.
#[derive(Default)]
pub struct PushRuleEdits {
    edit: Mutex<()>,
    cache: Mutex<HashMap<OwnedUserId, Arc<Ruleset>>>,
}

impl Services {
    pub fn push_rules(&self, user: &UserId) -> Result<Arc<Ruleset>> {
        let cache = &self.push_rule_edits.cache;
        if let Some(rules) = cache.lock().ok().and_then(|c| c.get(user).cloned()) {
            return Ok(rules);
        }
        let rules = Arc::new(self.stored_push_rules(user)?);
        if let Ok(mut cache) = cache.lock() {
            if cache.len() >= CACHED_USERS {
                cache.clear();
            }
            cache.insert(user.to_owned(), Arc::clone(&rules));
        }
        Ok(rules)
    }

    fn stored_push_rules(&self, user: &UserId) -> Result<Ruleset> {
        match self.account_data.get(user, None, PUSH_RULES)? {
            Some(stored) => serde_json::from_value(stored["global"].clone())
                .map_err(|e| Error::internal(format!("stored push rules of {user}: {e}"))),
            None => Ok(Ruleset::server_default(user)),
        }
    }

    /// Changes a user's rules with `edit` and stores the result.
    pub fn edit_push_rules<T>(
        &self,
        user: &UserId,
        edit: impl FnOnce(&mut Ruleset) -> Result<T>,
    ) -> Result<T> {
        let _one_at_a_time = self
            .push_rule_edits
            .edit
            .lock()
            .map_err(|_| Error::internal("push rule edits poisoned"))?;
        let mut rules = self.stored_push_rules(user)?;
        let outcome = edit(&mut rules)?;
        self.account_data
            .store(user, None, PUSH_RULES, json!({ "global": rules }))?;
        if let Ok(mut cache) = self.push_rule_edits.cache.lock() {
            cache.insert(user.to_owned(), Arc::new(rules));
        }
        Ok(outcome)
    }
}
