//! Managing accounts as an admin: create or change one in a single call (Synapse's
//! `PUT /users/{userId}`), reset passwords, promote, deactivate.

use ruma::UserId;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::users::Account;

/// What an admin asked to set; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub password: Option<String>,
    /// Whether a new password also logs out every device (default: yes).
    pub logout_devices: bool,
    pub displayname: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub admin: Option<bool>,
    pub deactivated: Option<bool>,
}

impl Services {
    /// Creates the account with these settings, or changes the existing one. Returns whether
    /// it was created.
    pub async fn upsert_user(
        self: &Arc<Self>,
        by: &UserId,
        user_id: &UserId,
        changes: UserChanges,
    ) -> Result<bool> {
        if !self.users.is_local(user_id) {
            return Err(Error::invalid_param(
                "This endpoint can only be used with local users",
            ));
        }
        crate::service::profile::check_profile(
            changes.displayname.as_ref().and_then(Option::as_deref),
            changes.avatar_url.as_ref().and_then(Option::as_deref),
        )?;
        let Some(account) = self.users.get(user_id)? else {
            self.create_user_as_admin(user_id, changes).await?;
            return Ok(true);
        };
        if changes.admin == Some(false) && by == user_id {
            return Err(Error::invalid_param("You may not demote yourself"));
        }
        let reactivate = changes.deactivated == Some(false) && account.deactivated;
        if reactivate {
            let password = changes.password.as_deref().ok_or_else(|| {
                Error::invalid_param("Must provide a password to re-activate an account")
            })?;
            let mut batch = self.db.batch();
            self.users.reactivate(&mut batch, user_id, password).await?;
            batch.commit()?;
            tracing::info!(user = %user_id, by = %by, "account reactivated");
        } else if let Some(password) = &changes.password {
            self.reset_password(user_id, password, changes.logout_devices)
                .await?;
        }
        if changes.displayname.is_some() || changes.avatar_url.is_some() {
            self.set_profile(user_id, changes.displayname, changes.avatar_url)
                .await?;
        }
        if let Some(admin) = changes.admin {
            self.set_admin(user_id, admin)?;
        }
        if changes.deactivated == Some(true) && !account.deactivated {
            self.deactivate(user_id, false).await?;
        }
        Ok(false)
    }

    async fn create_user_as_admin(&self, user_id: &UserId, changes: UserChanges) -> Result<()> {
        // Like Synapse, a new account's display name defaults to its localpart.
        let displayname = match changes.displayname {
            Some(name) => name,
            None => Some(user_id.localpart().to_owned()),
        };
        let account = Account {
            admin: changes.admin.unwrap_or(false),
            displayname,
            avatar_url: changes.avatar_url.flatten(),
            ..Account::default()
        };
        self.users
            .create(user_id, changes.password.as_deref(), account)
            .await?;
        if changes.deactivated == Some(true) {
            self.deactivate(user_id, false).await?;
        }
        Ok(())
    }

    /// Sets a user's password; with `logout_devices`, every session of theirs ends.
    pub async fn reset_password(
        &self,
        user_id: &UserId,
        password: &str,
        logout_devices: bool,
    ) -> Result<()> {
        let mut batch = self.db.batch();
        self.users
            .set_password(&mut batch, user_id, password)
            .await?;
        if logout_devices {
            self.devices.remove_all(&mut batch, user_id, None)?;
        }
        batch.commit()?;
        if logout_devices {
            self.device_keys_changed(user_id)?;
        }
        tracing::info!(user = %user_id, logout_devices, "password reset by an admin");
        Ok(())
    }

    pub fn set_admin(&self, user_id: &UserId, admin: bool) -> Result<()> {
        let mut batch = self.db.batch();
        self.users.set_admin(&mut batch, user_id, admin)?;
        batch.commit()?;
        tracing::info!(user = %user_id, admin, "admin flag changed");
        Ok(())
    }
}
