//! Synapse-compatible shared-secret registration (`/_synapse/admin/v1/register`): admin tools
//! create accounts by proving they know `registration_shared_secret`, with an HMAC-SHA1 over a
//! single-use nonce, the user name, the password and the admin flag.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const NONCE_LIFETIME: Duration = Duration::from_secs(60);
const MAX_NONCES: usize = 10_000;

pub struct SharedSecretRegistration {
    secret: Option<String>,
    nonces: Mutex<HashMap<String, Instant>>,
}

impl SharedSecretRegistration {
    pub fn new(secret: &str) -> Self {
        let secret = (!secret.is_empty()).then(|| secret.to_owned());
        SharedSecretRegistration {
            secret,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    fn secret(&self) -> Result<&str> {
        self.secret.as_deref().ok_or_else(|| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::Unknown,
                "Shared secret registration is not enabled",
            )
        })
    }

    /// A fresh single-use nonce.
    pub fn nonce(&self) -> Result<String> {
        self.secret()?;
        let nonce = crate::service::random_string(32);
        let mut nonces = self
            .nonces
            .lock()
            .map_err(|_| Error::internal("nonce table poisoned"))?;
        nonces.retain(|_, issued| issued.elapsed() < NONCE_LIFETIME);
        if nonces.len() >= MAX_NONCES {
            return Err(Error::limit_exceeded(Duration::from_secs(10)));
        }
        nonces.insert(nonce.clone(), Instant::now());
        Ok(nonce)
    }

    /// Consumes the nonce and checks the MAC (hex) over `nonce\0user\0password\0admin|notadmin`
    /// (and `\0user_type` when given).
    pub fn verify(
        &self,
        nonce: &str,
        username: &str,
        password: &str,
        admin: bool,
        user_type: Option<&str>,
        mac: &str,
    ) -> Result<()> {
        let secret = self.secret()?;
        let issued = self
            .nonces
            .lock()
            .map_err(|_| Error::internal("nonce table poisoned"))?
            .remove(nonce);
        if issued.is_none_or(|at| at.elapsed() >= NONCE_LIFETIME) {
            return Err(Error::invalid_param("Unrecognised nonce"));
        }
        let expected = compute(secret, nonce, username, password, admin, user_type);
        let given = hex::decode(mac).map_err(|_| Error::forbidden("HMAC incorrect"))?;
        expected
            .verify_slice(&given)
            .map_err(|_| Error::forbidden("HMAC incorrect"))
    }
}

/// The MAC a client computes, hex-encoded (used by tests and tools).
pub fn mac(secret: &str, nonce: &str, username: &str, password: &str, admin: bool) -> String {
    hex::encode(
        compute(secret, nonce, username, password, admin, None)
            .finalize()
            .into_bytes(),
    )
}

fn compute(
    secret: &str,
    nonce: &str,
    username: &str,
    password: &str,
    admin: bool,
    user_type: Option<&str>,
) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha1>>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    let admin = if admin { "admin" } else { "notadmin" };
    let parts = [
        Some(nonce),
        Some(username),
        Some(password),
        Some(admin),
        user_type,
    ];
    for (i, part) in parts.into_iter().flatten().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_single_use_and_mac_checked() {
        let reg = SharedSecretRegistration::new("s3cret");
        let nonce = reg.nonce().expect("nonce");
        let good = mac("s3cret", &nonce, "alice", "pw", true);
        assert!(
            reg.verify(&nonce, "alice", "pw", false, None, &good)
                .is_err(),
            "admin flag is covered"
        );
        let nonce = reg.nonce().expect("nonce");
        let good = mac("s3cret", &nonce, "alice", "pw", true);
        assert!(reg.verify(&nonce, "alice", "pw", true, None, &good).is_ok());
        assert!(
            reg.verify(&nonce, "alice", "pw", true, None, &good)
                .is_err(),
            "nonce is used up"
        );
    }

    #[test]
    fn disabled_without_secret() {
        let reg = SharedSecretRegistration::new("");
        assert!(reg.nonce().is_err());
    }
}
