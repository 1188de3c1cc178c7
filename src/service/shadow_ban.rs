//! Shadow bans: an admin's quiet sanction against a spammer. A shadow-banned user's messages,
//! state changes, redactions, invites and typing notices are answered as if they worked, but
//! nothing is stored or sent, so nobody else ever sees them and the spammer has no signal to
//! switch accounts. Joining and leaving rooms still work.

use base64::Engine as _;
use ruma::OwnedEventId;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The event id answered for an event a shadow-banned user believes they sent: shaped like a
/// room v4+ event id (unpadded URL-safe base64 of a SHA-256), unique, and naming no event.
pub fn unsent_event_id() -> Result<OwnedEventId> {
    let hash = Sha256::digest(crate::service::random_string(32).as_bytes());
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash);
    OwnedEventId::try_from(format!("${id}")).map_err(Error::internal)
}
