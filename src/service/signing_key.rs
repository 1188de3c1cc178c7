//! The server's ed25519 signing key: generated on first start, stored in the database, used to
//! sign every event this server creates (and, later, federation requests).

use ruma::signatures::Ed25519KeyPair;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Cf, Db};

const KEY: &[u8] = b"signing_key";

#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// The key's version: the part after `ed25519:` in the key id.
    version: String,
    /// PKCS#8 document, base64.
    pkcs8: String,
}

pub struct SigningKey {
    pub key_pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Loads the key, or makes and stores one if this is the first start.
    pub fn load_or_generate(db: &Db) -> Result<SigningKey> {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let table = db.table(Cf::Global);
        let stored: StoredKey = match table.get_json(KEY)? {
            Some(stored) => stored,
            None => {
                let document = Ed25519KeyPair::generate();
                let version = crate::service::random_string(8);
                let stored = StoredKey {
                    version,
                    pkcs8: engine.encode(&*document),
                };
                table.put_json(KEY, &stored)?;
                tracing::info!(key_id = %format!("ed25519:{}", stored.version), "generated the server signing key");
                stored
            }
        };
        let document = engine.decode(&stored.pkcs8).map_err(Error::internal)?;
        let key_pair =
            Ed25519KeyPair::from_der(&document, stored.version).map_err(Error::internal)?;
        Ok(SigningKey { key_pair })
    }

    /// `ed25519:<version>`.
    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.key_pair.version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let db = Db::open(dir.path(), &Default::default()).expect("db");
            let key = SigningKey::load_or_generate(&db).expect("key");
            (key.key_id(), key.key_pair.public_key())
        };
        let db = Db::open(dir.path(), &Default::default()).expect("db");
        let key = SigningKey::load_or_generate(&db).expect("key");
        assert_eq!((key.key_id(), key.key_pair.public_key()), first);
        assert!(first.0.starts_with("ed25519:"));
    }
}
