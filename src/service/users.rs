//! Accounts: user ids, password hashes (argon2), admin and deactivated flags.

use rand::Rng;
use ruma::{OwnedServerName, OwnedUserId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Batch, Cf, Db};
use http::StatusCode;
use ruma::api::error::ErrorKind;

/// Longest password accepted: argon2 does not care, but nobody types more, and it bounds work.
pub const MAX_PASSWORD_LEN: usize = 512;

/// What is stored per account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// PHC string (`$argon2id$...`); `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub deactivated: bool,
    #[serde(default)]
    pub is_guest: bool,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub displayname: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Shadow-banned by an admin: their messages, invites and typing seem to work for them but
    /// reach nobody.
    #[serde(default)]
    pub shadow_banned: bool,
    /// Deactivated with `erase`: their profile is gone.
    #[serde(default)]
    pub erased: bool,
}

pub struct Users {
    db: Db,
    server_name: OwnedServerName,
    /// Serializes account creation so two registrations of one name cannot both succeed.
    create_lock: tokio::sync::Mutex<()>,
}

impl Users {
    pub fn new(db: Db, server_name: OwnedServerName) -> Self {
        Users {
            db,
            server_name,
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The user id for a new account's localpart, checked against the spec's grammar
    /// (lower-case `a-z 0-9 . _ = - / +`, at most 255 characters in all).
    pub fn new_user_id(&self, localpart: &str) -> Result<OwnedUserId> {
        let invalid =
            |why: &str| Error::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidUsername, why);
        if localpart.is_empty() {
            return Err(invalid("User ID cannot be empty"));
        }
        if !localpart.bytes().all(
            |b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'),
        ) {
            return Err(invalid(
                "User ID may only contain a-z, 0-9, and . _ = - / +",
            ));
        }
        let user_id = UserId::parse(format!("@{localpart}:{}", self.server_name))
            .map_err(|e| invalid(&format!("Invalid user ID: {e}")))?;
        if user_id.as_str().len() > 255 {
            return Err(invalid("User ID is longer than 255 characters"));
        }
        Ok(user_id)
    }

    /// Reads a user named at login: a localpart or a full user id, which must be on this server.
    /// Historical ids (upper case and the like) are accepted here, because such accounts exist.
    pub fn parse_local_user(&self, input: &str) -> Result<OwnedUserId> {
        let user_id = if input.starts_with('@') {
            UserId::parse(input)
        } else {
            UserId::parse(format!("@{input}:{}", self.server_name))
        }
        .map_err(|e| Error::invalid_param(format!("Invalid user ID `{input}`: {e}")))?;
        if user_id.server_name() != self.server_name {
            return Err(Error::forbidden("User is not on this server"));
        }
        Ok(user_id)
    }

    pub fn is_local(&self, user_id: &UserId) -> bool {
        user_id.server_name() == self.server_name
    }

    /// A fresh, unused user id for registrations that did not ask for a name.
    pub fn generate_user_id(&self) -> Result<OwnedUserId> {
        loop {
            let n: u64 = rand::thread_rng().gen_range(100_000_000..1_000_000_000_000);
            let user_id = self.new_user_id(&n.to_string())?;
            if !self.exists(&user_id)? {
                return Ok(user_id);
            }
        }
    }

    pub fn get(&self, user_id: &UserId) -> Result<Option<Account>> {
        Ok(self.db.table(Cf::Users).get_json(user_id.as_str())?)
    }

    /// Every account, in user id order (admin listings).
    pub fn all(&self) -> Result<Vec<(OwnedUserId, Account)>> {
        self.db
            .table(Cf::Users)
            .scan_prefix_json::<Account>([])?
            .into_iter()
            .map(|(key, account)| {
                let user_id = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|id| UserId::parse(id).ok())
                    .ok_or_else(|| Error::internal("corrupt user id key"))?;
                Ok((user_id, account))
            })
            .collect()
    }

    pub fn is_shadow_banned(&self, user_id: &UserId) -> Result<bool> {
        Ok(self.get(user_id)?.is_some_and(|a| a.shadow_banned))
    }

    pub fn set_shadow_banned(&self, user_id: &UserId, banned: bool) -> Result<()> {
        let mut batch = self.db.batch();
        self.update(&mut batch, user_id, |account| {
            account.shadow_banned = banned
        })?;
        batch.commit()?;
        tracing::info!(user = %user_id, banned, "shadow ban changed");
        Ok(())
    }

    /// Lets a deactivated account log in again, with a new password.
    pub async fn reactivate(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        password: &str,
    ) -> Result<()> {
        let hash = hash_password(password).await?;
        self.update(batch, user_id, |account| {
            account.deactivated = false;
            account.password_hash = Some(hash);
        })
    }

    pub fn exists(&self, user_id: &UserId) -> Result<bool> {
        Ok(self.db.table(Cf::Users).contains(user_id.as_str())?)
    }

    pub fn is_admin(&self, user_id: &UserId) -> Result<bool> {
        Ok(self
            .get(user_id)?
            .is_some_and(|account| account.admin && !account.deactivated))
    }

    /// Creates an account; `M_USER_IN_USE` if the id is taken (including by a deactivated account,
    /// whose id is never handed out again).
    pub async fn create(
        &self,
        user_id: &UserId,
        password: Option<&str>,
        mut account: Account,
    ) -> Result<()> {
        account.password_hash = match password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        account.created_ms = now_ms();
        let _guard = self.create_lock.lock().await;
        if self.exists(user_id)? {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UserInUse,
                "User ID already taken",
            ));
        }
        self.db
            .table(Cf::Users)
            .put_json(user_id.as_str(), &account)?;
        tracing::info!(user = %user_id, admin = account.admin, guest = account.is_guest, "account created");
        Ok(())
    }

    /// Whether `password` is the account's password. Deactivated and password-less accounts never match.
    pub async fn check_password(&self, user_id: &UserId, password: &str) -> Result<bool> {
        let Some(hash) = self.get(user_id)?.and_then(|a| a.password_hash) else {
            return Ok(false);
        };
        crate::service::password::verify(hash, password.to_owned()).await
    }

    /// Stores a new password hash, in `batch` so callers can revoke sessions in the same write.
    pub async fn set_password(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        password: &str,
    ) -> Result<()> {
        let hash = hash_password(password).await?;
        self.update(batch, user_id, |account| account.password_hash = Some(hash))
    }

    pub fn set_admin(&self, batch: &mut Batch<'_>, user_id: &UserId, admin: bool) -> Result<()> {
        self.update(batch, user_id, |account| account.admin = admin)
    }

    /// Marks the account deactivated and forgets its password (`erase` also forgets its profile).
    pub fn deactivate(&self, batch: &mut Batch<'_>, user_id: &UserId, erase: bool) -> Result<()> {
        self.update(batch, user_id, |account| {
            account.deactivated = true;
            account.password_hash = None;
            if erase {
                account.displayname = None;
                account.avatar_url = None;
                account.erased = true;
            }
        })
    }

    /// Changes the display name and/or avatar (`Some(None)` clears one).
    pub fn set_profile(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        displayname: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<()> {
        self.update(batch, user_id, |account| {
            if let Some(name) = displayname {
                account.displayname = name;
            }
            if let Some(url) = avatar_url {
                account.avatar_url = url;
            }
        })
    }

    fn update(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        change: impl FnOnce(&mut Account),
    ) -> Result<()> {
        let mut account = self
            .get(user_id)?
            .ok_or_else(|| Error::not_found(format!("No such user {user_id}")))?;
        change(&mut account);
        batch.put_json(Cf::Users, user_id.as_str(), &account)?;
        Ok(())
    }
}

/// Checks a new password against the server's (minimal) policy.
pub fn check_new_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::WeakPassword,
            "Password cannot be empty",
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid_param(format!(
            "Password is longer than {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

async fn hash_password(password: &str) -> Result<String> {
    check_new_password(password)?;
    crate::service::password::hash(password.to_owned()).await
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), &Default::default()).expect("db");
        (
            dir,
            Users::new(db, "example.org".try_into().expect("server name")),
        )
    }

    #[test]
    fn localpart_grammar() {
        let (_dir, users) = users();
        for ok in ["alice", "a.b_c=d-e/f+g", "123"] {
            assert!(users.new_user_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "al ice", "al:ice", "ä", &"a".repeat(260)] {
            let err = users.new_user_id(bad).unwrap_err();
            assert_eq!(err.kind(), Some(&ErrorKind::InvalidUsername), "{bad}");
        }
    }

    #[test]
    fn login_names() {
        let (_dir, users) = users();
        assert_eq!(
            users.parse_local_user("bob").expect("ok").as_str(),
            "@bob:example.org"
        );
        assert_eq!(
            users
                .parse_local_user("@bob:example.org")
                .expect("ok")
                .as_str(),
            "@bob:example.org"
        );
        assert!(users.parse_local_user("@bob:elsewhere.org").is_err());
        assert!(users.parse_local_user("@").is_err());
    }

    #[tokio::test]
    async fn passwords_are_hashed_and_checked() {
        let (_dir, users) = users();
        let alice = users.new_user_id("alice").expect("id");
        users
            .create(&alice, Some("secret"), Account::default())
            .await
            .expect("create");
        let stored = users.get(&alice).expect("get").expect("exists");
        assert!(
            stored
                .password_hash
                .as_deref()
                .is_some_and(|h| h.starts_with("$argon2id$"))
        );
        assert!(users.check_password(&alice, "secret").await.expect("check"));
        assert!(!users.check_password(&alice, "wrong").await.expect("check"));
        let err = users
            .create(&alice, Some("x"), Account::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(&ErrorKind::UserInUse));
    }
}
