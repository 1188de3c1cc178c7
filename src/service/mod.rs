//! The homeserver's logic, one module per concept. Services own the rules (who may do what,
//! what is written together) and never see HTTP.

pub mod account;
pub mod account_data;
pub mod admin;
pub mod counters;
pub mod devices;
pub mod directory;
pub mod filters;
pub mod key_backup;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod notifications;
pub mod notifier;
pub mod outbound;
pub mod password;
pub mod presence;
pub mod profile;
pub mod push_rules;
pub mod pushers;
pub mod rate_limit;
pub mod receipts;
pub mod registration_tokens;
pub mod relations;
pub mod reports;
pub mod rooms;
pub mod search;
pub mod shadow_ban;
pub mod shared_secret;
pub mod signing_key;
pub mod spaces;
pub mod stream;
pub mod sync;
pub mod to_device;
pub mod typing;
pub mod uiaa;
pub mod user_directory;
pub mod users;

use ruma::OwnedServerName;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::storage::Db;

/// Every service, built once at start-up and handed to handlers through axum's `State`.
pub struct Services {
    pub config: Config,
    pub server_name: OwnedServerName,
    pub db: Db,
    pub users: users::Users,
    pub devices: devices::Devices,
    pub uiaa: uiaa::Uiaa,
    pub rate_limiter: rate_limit::RateLimiter,
    pub registration_tokens: registration_tokens::RegistrationTokens,
    pub shared_secret: shared_secret::SharedSecretRegistration,
    pub rooms: rooms::Rooms,
    pub account_data: account_data::AccountData,
    pub filters: filters::Filters,
    pub typing: typing::Typing,
    pub presence: presence::Presence,
    pub receipts: receipts::Receipts,
    pub to_device: to_device::ToDevice,
    pub media: media::Media,
    pub keys: keys::Keys,
    pub key_backup: key_backup::KeyBackup,
    pub push_rule_edits: push_rules::PushRuleEdits,
    pub reports: reports::Reports,
    pub pushers: pushers::Pushers,
    pub room_deletions: admin::room_deletion::RoomDeletions,
    pub metrics: metrics::Metrics,
    pub server_notices: admin::server_notices::ServerNotices,
    /// Set when the server is stopping, so long polls return at once instead of holding up
    /// the graceful shutdown.
    pub shutting_down: tokio::sync::watch::Sender<bool>,
    /// The one stream position every change that sync reports takes a value from.
    pub stream: Arc<stream::Stream>,
}

/// A random string of `len` ASCII letters and digits (ids, nonces, tokens shown to people).
pub fn random_string(len: usize) -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Services {
    pub fn new(config: Config, db: Db) -> Result<Arc<Services>> {
        let server_name = OwnedServerName::try_from(config.server_name.as_str())
            .map_err(|e| Error::internal(format!("server_name: {e}")))?;
        let stream = Arc::new(stream::Stream::open(db.clone())?);
        Ok(Arc::new(Services {
            users: users::Users::new(db.clone(), server_name.clone()),
            devices: devices::Devices::new(
                db.clone(),
                Duration::from_millis(config.refreshable_access_token_lifetime_ms),
            ),
            uiaa: uiaa::Uiaa::default(),
            rate_limiter: rate_limit::RateLimiter::new(config.rate_limits.clone()),
            registration_tokens: registration_tokens::RegistrationTokens::new(db.clone()),
            shared_secret: shared_secret::SharedSecretRegistration::new(
                &config.registration_shared_secret,
            ),
            rooms: rooms::Rooms::new(db.clone(), server_name.clone(), stream.clone())?,
            account_data: account_data::AccountData::new(db.clone(), stream.clone()),
            filters: filters::Filters::new(db.clone())?,
            typing: typing::Typing::default(),
            presence: presence::Presence::new(config.presence.enabled),
            receipts: receipts::Receipts::new(db.clone(), stream.clone()),
            to_device: to_device::ToDevice::new(db.clone(), stream.clone()),
            media: media::Media::new(db.clone(), config.media.clone(), &config.data_dir)?,
            keys: keys::Keys::new(db.clone(), stream.clone()),
            key_backup: key_backup::KeyBackup::new(db.clone())?,
            push_rule_edits: push_rules::PushRuleEdits::default(),
            reports: reports::Reports::new(db.clone())?,
            pushers: pushers::Pushers::new(db.clone(), &config.push)?,
            room_deletions: admin::room_deletion::RoomDeletions::default(),
            metrics: metrics::Metrics::new(config.metrics.enabled, db.clone()),
            server_notices: admin::server_notices::ServerNotices::default(),
            shutting_down: tokio::sync::watch::Sender::new(false),
            stream,
            server_name,
            config,
            db,
        }))
    }
}
