//! Server-side search (`/search`): an index of words in message bodies, room names and topics,
//! written as events are stored, queried by intersecting the postings of each search word.
//!
//! Words are Unicode words (UAX #29, so scripts without spaces such as Chinese or Japanese are
//! split per character rather than lost), lower-cased and with accents removed (NFKD without
//! combining marks), so `Café` finds `cafe`. Results are limited to events the searcher may see.

use ruma::{OwnedRoomId, UserId};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation as _;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::pdu::StoredPdu;
use crate::storage::{Cf, Key, KeyReader};

/// Most results one search considers, whatever the query.
const MAX_CANDIDATES: usize = 10_000;
/// Longest indexed word, in bytes (longer "words" are usually data, not language).
const MAX_TERM: usize = 64;

/// The searchable fields: (event type, content key, the `keys` name clients use).
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("m.room.message", "body", "content.body"),
    ("m.room.name", "name", "content.name"),
    ("m.room.topic", "topic", "content.topic"),
];

/// Search words of a text: Unicode words, lower-cased, accents removed.
pub fn tokenize(text: &str) -> Vec<String> {
    text.unicode_words()
        .map(|word| {
            word.nfkd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty() && word.len() <= MAX_TERM)
        .collect()
}

/// The `(field, term)` pairs to index for an event.
pub fn terms_of(kind: &str, content: &Value) -> Vec<(&'static str, String)> {
    let mut terms = Vec::new();
    for (event_type, key, field) in FIELDS {
        if *event_type == kind
            && let Some(text) = content.get(*key).and_then(Value::as_str)
        {
            let unique: HashSet<String> = tokenize(text).into_iter().collect();
            terms.extend(unique.into_iter().map(|term| (*field, term)));
        }
    }
    terms
}

/// One hit: the event, its room, and its rank.
pub struct Hit {
    pub room_id: OwnedRoomId,
    pub pdu: StoredPdu,
    pub rank: f64,
}

pub struct SearchQuery<'a> {
    pub term: &'a str,
    pub fields: Vec<&'static str>,
    /// Rooms to search (already limited to the searcher's rooms).
    pub rooms: Vec<OwnedRoomId>,
    pub by_rank: bool,
}

impl Services {
    /// Every hit for a query, best first (by rank or by recency), and the words searched for.
    pub fn search(&self, user: &UserId, query: SearchQuery<'_>) -> Result<(Vec<Hit>, Vec<String>)> {
        let words: Vec<String> = {
            let mut seen = HashSet::new();
            tokenize(query.term)
                .into_iter()
                .filter(|w| seen.insert(w.clone()))
                .collect()
        };
        if words.is_empty() {
            return Ok((Vec::new(), words));
        }
        let mut shorts = BTreeMap::new();
        for room_id in &query.rooms {
            if let Some(room) = self.rooms.room(room_id)? {
                shorts.insert(room.short, (room_id.clone(), room));
            }
        }
        // Documents (room short, position) containing every word in one of the fields.
        let mut matching: Option<HashSet<(u64, u64)>> = None;
        for word in &words {
            let mut postings = HashSet::new();
            for field in &query.fields {
                let prefix = Key::new().str(word).str(field);
                for (key, _) in self.db.table(Cf::SearchTerms).scan_prefix(&prefix)? {
                    let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
                    if let (Some(short), Some(position)) = (reader.u64(), reader.u64())
                        && shorts.contains_key(&short)
                    {
                        postings.insert((short, position));
                    }
                }
            }
            matching = Some(match matching {
                None => postings,
                Some(so_far) => so_far.intersection(&postings).copied().collect(),
            });
            if matching.as_ref().is_some_and(HashSet::is_empty) {
                break;
            }
        }
        let mut documents: Vec<(u64, u64)> = matching.unwrap_or_default().into_iter().collect();
        documents.sort_by_key(|(_, position)| std::cmp::Reverse(*position));
        documents.truncate(MAX_CANDIDATES);

        let mut hits = Vec::new();
        let mut memberships = BTreeMap::new();
        for (short, position) in documents {
            let Some((room_id, _)) = shorts.get(&short) else {
                continue;
            };
            let Some(pdu) = self.rooms.pdu_at(short, position)? else {
                continue;
            };
            if pdu.redacted_by.is_some() {
                continue;
            }
            let membership = match memberships.entry(short) {
                std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(self.rooms.current_membership(room_id, user)?)
                }
            };
            if !self.rooms.can_see(user, &pdu, membership.as_ref())? {
                continue;
            }
            let rank = rank(&pdu, &words);
            hits.push(Hit {
                room_id: room_id.clone(),
                pdu,
                rank,
            });
        }
        if query.by_rank {
            hits.sort_by(|a, b| {
                b.rank
                    .partial_cmp(&a.rank)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b.pdu.position.cmp(&a.pdu.position))
            });
        }
        Ok((hits, words))
    }
}

/// How well an event matches: the share of its words that are search words (a short message
/// that is mostly the query ranks above a long one that mentions it once).
fn rank(pdu: &StoredPdu, words: &[String]) -> f64 {
    let content = pdu.content();
    let text = ["body", "name", "topic"]
        .iter()
        .find_map(|key| content.get(*key).and_then(Value::as_str))
        .unwrap_or_default();
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return 0.0;
    }
    let hits = tokens.iter().filter(|t| words.contains(t)).count();
    hits as f64 / tokens.len() as f64
}

/// Parses a `next_batch` token (an offset into the results).
pub fn parse_batch(token: &str) -> Result<usize> {
    token
        .strip_prefix('o')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::invalid_param(format!("Invalid next_batch `{token}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_case_and_accent_insensitive_and_scripts_survive() {
        assert_eq!(tokenize("Café, CAFE! naïve"), ["cafe", "cafe", "naive"]);
        assert_eq!(tokenize("Привет мир"), ["привет", "мир"]);
        assert_eq!(tokenize("東京タワー"), ["東", "京", "タワー"]);
        assert!(tokenize("   ...  ").is_empty());
    }
}
