//! The user directory (`/user_directory/search`): whom a user can find by id or display name.
//!
//! By default a user finds the people they share a room with and the members of rooms
//! published in the room directory; `[user_directory] search_all_local_users` widens it to
//! every local account. Candidates are gathered per search (no index yet), which is fine for
//! the room counts of a small server and noted as the next thing to index.

use ruma::{OwnedUserId, UserId};
use std::collections::BTreeSet;

use crate::error::Result;
use crate::service::Services;
use crate::storage::Cf;

pub struct Found {
    pub user_id: OwnedUserId,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
}

/// Lower-case words of a text (split at anything not alphanumeric).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Every word of the search must start some word of the user id or display name.
fn matches(terms: &[String], user: &UserId, displayname: Option<&str>) -> bool {
    let mut haystack = words(user.as_str());
    if let Some(name) = displayname {
        haystack.extend(words(name));
    }
    terms
        .iter()
        .all(|term| haystack.iter().any(|word| word.starts_with(term.as_str())))
}

impl Services {
    /// Up to `limit` users matching `term`, and whether there were more.
    pub fn search_users(
        &self,
        searcher: &UserId,
        term: &str,
        limit: usize,
    ) -> Result<(Vec<Found>, bool)> {
        let terms = words(term);
        if terms.is_empty() {
            return Ok((Vec::new(), false));
        }
        let candidates: BTreeSet<OwnedUserId> = if self.config.user_directory.search_all_local_users
        {
            self.db
                .table(Cf::Users)
                .scan_prefix([])?
                .into_iter()
                .filter_map(|(key, _)| {
                    std::str::from_utf8(&key)
                        .ok()
                        .and_then(|id| OwnedUserId::try_from(id).ok())
                })
                .collect()
        } else {
            let mut users: BTreeSet<OwnedUserId> =
                self.rooms.room_peers(searcher)?.into_iter().collect();
            for room in self.published_room_ids()? {
                users.extend(self.rooms.joined_members(&room)?);
            }
            users
        };
        let mut found = Vec::new();
        let mut limited = false;
        for user in candidates {
            let Some(account) = self.users.get(&user)? else {
                continue;
            };
            if account.deactivated || !matches(&terms, &user, account.displayname.as_deref()) {
                continue;
            }
            if found.len() == limit {
                limited = true;
                break;
            }
            found.push(Found {
                user_id: user,
                displayname: account.displayname,
                avatar_url: account.avatar_url,
            });
        }
        Ok((found, limited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_by_prefix_in_id_or_name() {
        let alice = ruma::user_id!("@alice:example.org");
        assert!(matches(&words("ali"), alice, None));
        assert!(matches(
            &words("Wonder"),
            alice,
            Some("Alice in Wonderland")
        ));
        assert!(matches(
            &words("al won"),
            alice,
            Some("Alice in Wonderland")
        ));
        assert!(!matches(&words("lice"), alice, Some("Alice")));
        assert!(matches(&words("Ærø"), alice, Some("Ærøskøbing fan")));
        assert!(matches(&words("東京"), alice, Some("東京 ファン")));
    }
}
