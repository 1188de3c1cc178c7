//! Filters: clients upload a filter once and refer to it by id in `/sync` and `/messages`.

use ruma::api::client::filter::{Filter, FilterDefinition, RoomEventFilter};
use ruma::{OwnedUserId, UserId};

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::storage::{Cf, Db, Key};

pub struct Filters {
    db: Db,
    ids: Counter,
}

impl Filters {
    pub fn new(db: Db) -> Result<Self> {
        Ok(Filters {
            ids: Counter::open(db.clone(), b"next_filter_id")?,
            db,
        })
    }

    /// Stores a filter for `user`; the id is a decimal number (never `{`, so it cannot be
    /// mistaken for an inline JSON filter).
    pub fn create(&self, user: &UserId, filter: &FilterDefinition) -> Result<String> {
        let id = self.ids.next()?.to_string();
        self.db
            .table(Cf::Filters)
            .put_json(Key::new().str(user.as_str()).bytes(id.as_bytes()), filter)?;
        Ok(id)
    }

    /// The filter `id` of `user`; `M_NOT_FOUND` if they have none by that id.
    pub fn get(&self, user: &UserId, id: &str) -> Result<FilterDefinition> {
        self.db
            .table(Cf::Filters)
            .get_json(Key::new().str(user.as_str()).bytes(id.as_bytes()))?
            .ok_or_else(|| Error::not_found(format!("No filter {id}")))
    }
}

/// The type and sender lists `Filter` and `RoomEventFilter` share.
#[derive(Clone, Copy)]
pub struct Lists<'a> {
    types: Option<&'a [String]>,
    not_types: &'a [String],
    senders: Option<&'a [OwnedUserId]>,
    not_senders: &'a [OwnedUserId],
}

impl<'a> From<&'a Filter> for Lists<'a> {
    fn from(filter: &'a Filter) -> Self {
        Lists {
            types: filter.types.as_deref(),
            not_types: &filter.not_types,
            senders: filter.senders.as_deref(),
            not_senders: &filter.not_senders,
        }
    }
}

impl<'a> From<&'a RoomEventFilter> for Lists<'a> {
    fn from(filter: &'a RoomEventFilter) -> Self {
        Lists {
            types: filter.types.as_deref(),
            not_types: &filter.not_types,
            senders: filter.senders.as_deref(),
            not_senders: &filter.not_senders,
        }
    }
}

impl Lists<'_> {
    /// Whether an event of `kind` passes the type lists (for events without a sender, such as
    /// typing and receipts).
    pub fn pass_type(&self, kind: &str) -> bool {
        Lists {
            senders: None,
            not_senders: &[],
            ..*self
        }
        .pass(kind, "")
    }

    /// Whether an event of `kind` from `sender` passes: not excluded, and included when the
    /// filter lists what to include. Types may end in a `*` wildcard.
    pub fn pass(&self, kind: &str, sender: &str) -> bool {
        let type_matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => kind == pattern,
        };
        !self.not_types.iter().any(type_matches)
            && self
                .types
                .is_none_or(|types| types.iter().any(type_matches))
            && !self.not_senders.iter().any(|s| s.as_str() == sender)
            && self
                .senders
                .is_none_or(|senders| senders.iter().any(|s| s.as_str() == sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_exclude_before_they_include() {
        let mut filter = Filter::default();
        filter.types = Some(vec!["m.room.*".to_owned()]);
        filter.not_types = vec!["m.room.member".to_owned()];
        let lists = Lists::from(&filter);
        assert!(lists.pass("m.room.message", "@a:x"));
        assert!(!lists.pass("m.room.member", "@a:x"));
        assert!(!lists.pass("m.reaction", "@a:x"));
        filter.not_senders = vec![ruma::owned_user_id!("@a:x")];
        assert!(!Lists::from(&filter).pass("m.room.message", "@a:x"));
    }
}
