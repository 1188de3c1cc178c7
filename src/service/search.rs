//! Server-side search (`/search`): an index of words in message bodies, room names and topics,
//! written as events are stored, queried by intersecting the postings of each search word.
//!
//! Words are Unicode words (UAX #29, so scripts without spaces such as Chinese or Japanese are
//! split per character rather than lost), lower-cased and with accents removed (NFKD without
//! combining marks), so `Café` finds `cafe`. Results are limited to events the searcher may see.

use ruma::{OwnedRoomId, UserId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation as _;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::pdu::StoredPdu;
use crate::storage::{Cf, Key, KeyReader};

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

/// One index entry: a word of a field, how often it occurs there, and the field's length in
/// words (so results can be ranked from the index alone).
pub struct IndexEntry {
    pub field: &'static str,
    pub term: String,
    pub occurrences: u16,
    pub length: u16,
}

impl IndexEntry {
    /// The stored value: occurrences and length, big-endian u16 each.
    pub fn value(&self) -> [u8; 4] {
        let [a, b] = self.occurrences.to_be_bytes();
        let [c, d] = self.length.to_be_bytes();
        [a, b, c, d]
    }
}

/// `(occurrences, length)` from a stored value (entries without one count once in one word).
fn read_value(value: &[u8]) -> (u16, u16) {
    match value {
        [a, b, c, d, ..] => (
            u16::from_be_bytes([*a, *b]),
            u16::from_be_bytes([*c, *d]).max(1),
        ),
        _ => (1, 1),
    }
}

/// The index entries for an event.
pub fn terms_of(kind: &str, content: &Value) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    for (event_type, key, field) in FIELDS {
        if *event_type == kind
            && let Some(text) = content.get(*key).and_then(Value::as_str)
        {
            let words = tokenize(text);
            let length = u16::try_from(words.len()).unwrap_or(u16::MAX);
            let mut counts: BTreeMap<String, u16> = BTreeMap::new();
            for word in words {
                let count = counts.entry(word).or_default();
                *count = count.saturating_add(1);
            }
            entries.extend(counts.into_iter().map(|(term, occurrences)| IndexEntry {
                field,
                term,
                occurrences,
                length,
            }));
        }
    }
    entries
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
    /// The first `wanted` hits for a query, best first (by rank or by recency), that the user
    /// may see and `accept` lets through; an estimate of all matches; the words searched for.
    ///
    /// Ranking uses only the index (occurrences of the words over the field's length), and
    /// events are read in that order until `wanted` are found, so a common word costs a scan
    /// of its index entries, not a read of every matching event.
    pub fn search(
        &self,
        user: &UserId,
        query: SearchQuery<'_>,
        wanted: usize,
        accept: impl Fn(&StoredPdu) -> bool,
    ) -> Result<(Vec<Hit>, usize, Vec<String>)> {
        let words: Vec<String> = {
            let mut seen = HashSet::new();
            tokenize(query.term)
                .into_iter()
                .filter(|w| seen.insert(w.clone()))
                .collect()
        };
        if words.is_empty() {
            return Ok((Vec::new(), 0, words));
        }
        let mut shorts = BTreeMap::new();
        for room_id in &query.rooms {
            if let Some(room) = self.rooms.room(room_id)? {
                shorts.insert(room.short, room_id.clone());
            }
        }
        // Documents (room short, position) holding every word, with their summed occurrences
        // over the field's length.
        let mut matching: Option<HashMap<(u64, u64), f64>> = None;
        for word in &words {
            let mut postings: HashMap<(u64, u64), f64> = HashMap::new();
            for field in &query.fields {
                let prefix = Key::new().str(word).str(field);
                for (key, value) in self.db.table(Cf::SearchTerms).scan_prefix(&prefix)? {
                    let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
                    if let (Some(short), Some(position)) = (reader.u64(), reader.u64())
                        && shorts.contains_key(&short)
                    {
                        let (occurrences, length) = read_value(&value);
                        *postings.entry((short, position)).or_default() +=
                            f64::from(occurrences) / f64::from(length);
                    }
                }
            }
            matching = Some(match matching {
                None => postings,
                Some(so_far) => so_far
                    .into_iter()
                    .filter_map(|(doc, score)| postings.get(&doc).map(|more| (doc, score + more)))
                    .collect(),
            });
            if matching.as_ref().is_some_and(HashMap::is_empty) {
                break;
            }
        }
        let mut documents: Vec<((u64, u64), f64)> =
            matching.unwrap_or_default().into_iter().collect();
        let estimate = documents.len();
        if query.by_rank {
            documents.sort_by(|(a_doc, a), (b_doc, b)| {
                b.partial_cmp(a)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b_doc.1.cmp(&a_doc.1))
            });
        } else {
            documents.sort_by_key(|((_, position), _)| std::cmp::Reverse(*position));
        }

        let mut hits = Vec::new();
        let mut memberships = BTreeMap::new();
        for ((short, position), rank) in documents {
            if hits.len() == wanted {
                break;
            }
            let Some(room_id) = shorts.get(&short) else {
                continue;
            };
            let Some(pdu) = self.rooms.pdu_at(short, position)? else {
                continue;
            };
            if pdu.redacted_by.is_some() || !accept(&pdu) {
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
            hits.push(Hit {
                room_id: room_id.clone(),
                pdu,
                rank,
            });
        }
        Ok((hits, estimate, words))
    }
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
