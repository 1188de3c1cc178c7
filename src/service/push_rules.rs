//! A user's push rules: the spec's defaults until they change one, then their own copy, kept as
//! the `m.push_rules` account data the spec says clients receive in `/sync`. The same rules
//! decide unread counts (see `notifications`).

use ruma::UserId;
use ruma::push::Ruleset;
use serde_json::json;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::service::Services;

const PUSH_RULES: &str = "m.push_rules";

/// Serializes edits, so two concurrent changes to one user's rules do not lose one.
#[derive(Default)]
pub struct PushRuleEdits(Mutex<()>);

impl Services {
    pub fn push_rules(&self, user: &UserId) -> Result<Ruleset> {
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
            .0
            .lock()
            .map_err(|_| Error::internal("push rule edits poisoned"))?;
        let mut rules = self.push_rules(user)?;
        let outcome = edit(&mut rules)?;
        self.account_data
            .store(user, None, PUSH_RULES, json!({ "global": rules }))?;
        Ok(outcome)
    }
}
