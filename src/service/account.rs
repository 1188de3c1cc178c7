//! Account life cycle: registration, password login, password changes, logout and
//! deactivation. These tie users, devices, UIA, tokens and rate limits together.

use http::StatusCode;
use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType};
use ruma::api::error::ErrorKind;
use ruma::events::room::member::MembershipState;
use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::devices::{Identity, Session};
use crate::service::rate_limit::Action;
use crate::service::uiaa::Flows;
use crate::service::users::{Account, check_new_password};

/// A `POST /register` as the service sees it.
#[derive(Debug, Default)]
pub struct Registration {
    pub username: Option<String>,
    pub password: Option<String>,
    pub guest: bool,
    pub device_id: Option<OwnedDeviceId>,
    pub initial_device_display_name: Option<String>,
    pub inhibit_login: bool,
    pub refresh_token: bool,
    pub auth: Option<AuthData>,
    /// Who is asking, for rate limiting.
    pub client: String,
}

pub struct Registered {
    pub user_id: OwnedUserId,
    /// `None` when the client asked for `inhibit_login`.
    pub session: Option<Session>,
}

impl Services {
    /// The UIA flows registration offers, as configured.
    pub fn registration_flows(&self) -> Vec<AuthFlow> {
        let stage = if self.config.registration_requires_token {
            AuthType::RegistrationToken
        } else {
            AuthType::Dummy
        };
        vec![AuthFlow::new(vec![stage])]
    }

    pub async fn register(&self, request: Registration) -> Result<Registered> {
        self.rate_limiter.check(Action::Register, &request.client)?;
        if request.guest {
            return self.register_guest(request).await;
        }
        if !self.config.allow_registration {
            return Err(Error::forbidden("Registration is disabled on this server"));
        }
        // Check the name before the UIA dance, so the client hears about a taken name at once.
        let user_id = match &request.username {
            Some(name) => {
                let user_id = self.users.new_user_id(name)?;
                if self.users.exists(&user_id)? {
                    return Err(Error::new(
                        StatusCode::BAD_REQUEST,
                        ErrorKind::UserInUse,
                        "User ID already taken",
                    ));
                }
                user_id
            }
            None => self.users.generate_user_id()?,
        };
        let flows = Flows {
            endpoint: "register",
            flows: self.registration_flows(),
            user: None,
        };
        let completed = self
            .uiaa
            .authenticate(self, flows, request.auth.as_ref())
            .await?;

        let password = request
            .password
            .as_deref()
            .ok_or_else(|| Error::missing_param("Missing password"))?;
        check_new_password(password)?;
        self.users
            .create(&user_id, Some(password), Account::default())
            .await?;
        if let Some(token) = &completed.registration_token {
            self.registration_tokens.complete(token)?;
        }
        let session = if request.inhibit_login {
            None
        } else {
            Some(self.devices.create_session(
                &user_id,
                request.device_id,
                request.initial_device_display_name,
                request.refresh_token,
            )?)
        };
        Ok(Registered { user_id, session })
    }

    async fn register_guest(&self, request: Registration) -> Result<Registered> {
        if !self.config.allow_guest_access {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorKind::GuestAccessForbidden,
                "Guest access is disabled on this server",
            ));
        }
        let user_id = self.users.generate_user_id()?;
        self.users
            .create(
                &user_id,
                None,
                Account {
                    is_guest: true,
                    ..Account::default()
                },
            )
            .await?;
        let session = self.devices.create_session(
            &user_id,
            None,
            request.initial_device_display_name,
            request.refresh_token,
        )?;
        Ok(Registered {
            user_id,
            session: Some(session),
        })
    }

    /// `m.login.password`: the same answer for an unknown user and a wrong password, so logins
    /// cannot be used to find out who has an account.
    pub async fn login_with_password(
        &self,
        user: &str,
        password: &str,
        device_id: Option<OwnedDeviceId>,
        initial_device_display_name: Option<String>,
        refreshable: bool,
        client: &str,
    ) -> Result<(OwnedUserId, Session)> {
        self.rate_limiter.check(Action::Login, client)?;
        let wrong = || Error::forbidden("Invalid username or password");
        let mut user_id = self.users.parse_local_user(user)?;
        let mut account = self.users.get(&user_id)?;
        if account.is_none() {
            // People type their names in any case; accounts are lower-case.
            let lower = self
                .users
                .parse_local_user(&user_id.as_str().to_lowercase())?;
            account = self.users.get(&lower)?;
            user_id = lower;
        }
        let account = account.ok_or_else(wrong)?;
        if account.deactivated {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorKind::UserDeactivated,
                "This account has been deactivated",
            ));
        }
        if !self.users.check_password(&user_id, password).await? {
            return Err(wrong());
        }
        let session = self.devices.create_session(
            &user_id,
            device_id,
            initial_device_display_name,
            refreshable,
        )?;
        tracing::info!(user = %user_id, device = %session.device_id, "logged in");
        Ok((user_id, session))
    }

    /// Sets a new password; with `logout_devices`, every other device of the user goes too.
    pub async fn change_password(
        &self,
        identity: &Identity,
        new_password: &str,
        logout_devices: bool,
    ) -> Result<()> {
        let mut batch = self.db.batch();
        self.users
            .set_password(&mut batch, &identity.user_id, new_password)
            .await?;
        if logout_devices {
            self.devices
                .remove_all(&mut batch, &identity.user_id, Some(&identity.device_id))?;
        }
        batch.commit()?;
        if logout_devices {
            self.device_keys_changed(&identity.user_id)?;
        }
        Ok(())
    }

    /// Deactivates an account for good: no password, no devices, no tokens, and it leaves every
    /// room it was in (and rejects its invites and knocks).
    pub async fn deactivate(&self, user_id: &UserId, erase: bool) -> Result<()> {
        let mut batch = self.db.batch();
        self.users.deactivate(&mut batch, user_id, erase)?;
        self.devices.remove_all(&mut batch, user_id, None)?;
        batch.commit()?;
        self.device_keys_changed(user_id)?;
        for (room_id, record) in self.rooms.rooms_of(user_id)? {
            if matches!(
                record.membership,
                MembershipState::Join | MembershipState::Invite | MembershipState::Knock
            ) {
                let left = self
                    .set_membership(user_id, &room_id, user_id, MembershipState::Leave, None)
                    .await;
                if let Err(err) = left {
                    tracing::warn!(user = %user_id, room = %room_id, %err, "deactivated account could not leave a room");
                }
            }
        }
        tracing::info!(user = %user_id, erase, "account deactivated");
        Ok(())
    }

    /// Removes devices and their tokens; unknown device ids are skipped.
    pub fn delete_devices(&self, user_id: &UserId, device_ids: &[&DeviceId]) -> Result<()> {
        let mut batch = self.db.batch();
        for device_id in device_ids {
            self.devices.remove(&mut batch, user_id, device_id)?;
        }
        batch.commit()?;
        // Their keys are gone with them: others must stop encrypting to them.
        self.device_keys_changed(user_id)?;
        Ok(())
    }

    /// Logs out every device of the user.
    pub fn logout_all(&self, user_id: &UserId) -> Result<()> {
        let mut batch = self.db.batch();
        self.devices.remove_all(&mut batch, user_id, None)?;
        batch.commit()?;
        // Their keys are gone with them: others must stop encrypting to them.
        self.device_keys_changed(user_id)?;
        Ok(())
    }
}
