//! Filters: clients upload a filter once and refer to it by id in `/sync` and `/messages`.

use ruma::UserId;
use ruma::api::client::filter::FilterDefinition;

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
