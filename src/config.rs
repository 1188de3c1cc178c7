//! Typed configuration: `config.toml`, then `MYELIN_*` environment overrides, then validation.
//!
//! Every key has a default, so a file only names what it changes. An environment variable
//! `MYELIN_<KEY>` overrides a top-level key; nested tables join their names with a double
//! underscore (`MYELIN_RATE_LIMITS__LOGIN__BURST`). A value is read as the key's type (a number
//! for numbers, `true`/`false` for switches, the text as it stands for strings).
//!
//! Mistakes stop start-up with a message that names the key: unknown keys, wrong types, a
//! missing or malformed server name, a data directory that cannot be written.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "MYELIN_";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The server name: the part after the colon in `@alice:example.org`. Required.
    pub server_name: String,
    /// Address the client API listens on.
    pub listen: String,
    /// Where RocksDB and media live.
    pub data_dir: PathBuf,
    /// The URL clients use to reach this server (served in `/.well-known/matrix/client`).
    /// Empty: `http://<listen>`.
    pub public_base_url: String,
    /// Anyone may register an account over the client API.
    pub allow_registration: bool,
    /// Registration needs a registration token (`m.login.registration_token`).
    pub registration_requires_token: bool,
    /// Secret for the Synapse-compatible shared-secret registration API. Empty: off.
    pub registration_shared_secret: String,
    /// Guests may register (`kind=guest`).
    pub allow_guest_access: bool,
    /// Largest request body accepted on the JSON APIs, in bytes.
    pub max_request_size: u64,
    /// Lifetime of access tokens handed out with a refresh token, in milliseconds.
    pub refreshable_access_token_lifetime_ms: u64,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub rate_limits: RateLimitsConfig,
    pub presence: PresenceConfig,
    pub media: MediaConfig,
    pub user_directory: UserDirectoryConfig,
    pub turn: TurnConfig,
    pub push: PushConfig,
    pub server_notices: ServerNoticesConfig,
    pub metrics: MetricsConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerNoticesConfig {
    /// Localpart of the account server notices come from (`notices` → `@notices:server`);
    /// made on first use. Empty turns server notices off.
    pub system_mxid_localpart: String,
    pub system_mxid_display_name: String,
    /// Name of the room each user gets the notices in.
    pub room_name: String,
}

impl Default for ServerNoticesConfig {
    fn default() -> Self {
        ServerNoticesConfig {
            system_mxid_localpart: String::new(),
            system_mxid_display_name: "Server Notices".to_owned(),
            room_name: "Server Notices".to_owned(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics` on `listen` (a listener of its own, so the
    /// client API never exposes them).
    pub enabled: bool,
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            listen: "127.0.0.1:9008".to_owned(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Networks (CIDR) push gateways may be reached on although not public (a Sygnal on the
    /// same host: `127.0.0.1/32`). Empty: public addresses only.
    pub allowed_networks: Vec<String>,
    /// How long one request to a push gateway may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            allowed_networks: Vec::new(),
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserDirectoryConfig {
    /// Search finds every local user, not only people who share a room with the searcher or
    /// are in a room published in the directory.
    pub search_all_local_users: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// TURN server URIs handed to clients for VoIP (`turn:turn.example.org:3478?transport=udp`).
    /// Empty: no TURN server (`/voip/turnServer` answers with no servers).
    pub uris: Vec<String>,
    /// The TURN server's shared secret (coturn's `static-auth-secret`): clients get
    /// time-limited credentials made from it.
    pub shared_secret: String,
    /// How long such credentials are valid, in milliseconds.
    pub user_lifetime_ms: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            uris: Vec::new(),
            shared_secret: String::new(),
            user_lifetime_ms: 24 * 60 * 60 * 1000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest file a client may upload, in bytes (`m.upload.size`).
    pub max_upload_size: u64,
    /// Total bytes one user may have uploaded. 0: no quota.
    pub user_quota: u64,
    /// The unauthenticated legacy `/_matrix/media/v3/download|thumbnail` endpoints serve only
    /// media uploaded before this time (milliseconds since the epoch). 0: they serve nothing,
    /// as the spec now asks; clients use the authenticated `/_matrix/client/v1/media` ones.
    pub legacy_unauthenticated_before_ms: u64,
    /// Largest image, in bytes, that gets thumbnails (larger ones: 413 `M_TOO_LARGE`).
    pub max_thumbnail_source_size: u64,
    pub url_preview: UrlPreviewConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlPreviewConfig {
    /// Serve `/preview_url`. Off: the endpoint answers 404 `M_UNRECOGNIZED`.
    pub enabled: bool,
    /// Networks (CIDR, e.g. `192.168.1.0/24`) the previewer may fetch from even though they
    /// are loopback, private, link-local or otherwise not public. Empty: public addresses only.
    pub allowed_networks: Vec<String>,
    /// Largest page (or preview image) fetched, in bytes.
    pub max_page_size: u64,
    /// How long a fetch may take, in milliseconds, redirects included.
    pub timeout_ms: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_upload_size: 50 * 1024 * 1024,
            user_quota: 0,
            legacy_unauthenticated_before_ms: 0,
            max_thumbnail_source_size: 20 * 1024 * 1024,
            url_preview: UrlPreviewConfig::default(),
        }
    }
}

impl Default for UrlPreviewConfig {
    fn default() -> Self {
        UrlPreviewConfig {
            enabled: true,
            allowed_networks: Vec::new(),
            max_page_size: 1024 * 1024,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Track and share online/idle/offline status. Off: everyone shows as offline.
    pub enabled: bool,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig { enabled: true }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `myelin=debug,tower_http=info`.
    pub level: String,
    /// `pretty` (human-readable) or `json`.
    pub format: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// RocksDB block cache, in MiB.
    pub cache_mib: u64,
    /// fsync the write-ahead log on every write: survives power loss, not only process crashes.
    pub fsync: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Switch every rate limit on or off.
    pub enabled: bool,
    /// Login attempts per client address.
    pub login: RateLimit,
    /// Registrations per client address.
    pub register: RateLimit,
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: String::new(),
            listen: "127.0.0.1:8008".to_owned(),
            data_dir: PathBuf::from("./data"),
            public_base_url: String::new(),
            allow_registration: false,
            registration_requires_token: false,
            registration_shared_secret: String::new(),
            allow_guest_access: false,
            max_request_size: 10 * 1024 * 1024,
            refreshable_access_token_lifetime_ms: 5 * 60 * 1000,
            log: LogConfig::default(),
            storage: StorageConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            presence: PresenceConfig::default(),
            media: MediaConfig::default(),
            user_directory: UserDirectoryConfig::default(),
            turn: TurnConfig::default(),
            push: PushConfig::default(),
            server_notices: ServerNoticesConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: "pretty".to_owned(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            cache_mib: 16,
            fsync: false,
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            enabled: true,
            login: RateLimit {
                per_second: 0.2,
                burst: 5,
            },
            register: RateLimit {
                per_second: 0.1,
                burst: 3,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Config {
    /// Reads `path`, applies `MYELIN_*` overrides from `env`, and validates the result.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Self::from_table(file, env)
    }

    /// Builds a config from an already-parsed table plus environment overrides.
    pub fn from_table(
        file: toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let defaults =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Invalid {
                key: String::new(),
                message: e.to_string(),
            })?;
        // Defaults first, then the file, then the environment: a partial table in the file
        // (`[rate_limits.login]` with only `burst`) keeps the defaults of its other keys.
        let mut table = defaults.clone();
        merge(&mut table, file);
        for (var, value) in env {
            if let Some(name) = var.strip_prefix(ENV_PREFIX) {
                apply_env_override(&mut table, &defaults, &var, name, &value)?;
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Invalid {
                    key: e.path().to_string(),
                    message: e.inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: names, addresses, formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            message,
        };
        if self.server_name.is_empty() {
            return Err(invalid(
                "server_name",
                "is required (e.g. server_name = \"example.org\")".into(),
            ));
        }
        if let Err(e) = ruma::ServerName::parse(&self.server_name) {
            return Err(invalid(
                "server_name",
                format!("`{}` is not a valid server name: {e}", self.server_name),
            ));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "listen",
                format!("`{}` is not an address such as 127.0.0.1:8008", self.listen),
            ));
        }
        if self.metrics.enabled && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.listen",
                format!(
                    "`{}` is not an address such as 127.0.0.1:9008",
                    self.metrics.listen
                ),
            ));
        }
        let notices = &self.server_notices.system_mxid_localpart;
        if !notices.is_empty()
            && ruma::UserId::parse(format!("@{notices}:{}", self.server_name)).is_err()
        {
            return Err(invalid(
                "server_notices.system_mxid_localpart",
                format!("`{notices}` is not a valid localpart"),
            ));
        }
        for (key, networks) in [
            (
                "media.url_preview.allowed_networks",
                &self.media.url_preview.allowed_networks,
            ),
            ("push.allowed_networks", &self.push.allowed_networks),
        ] {
            for network in networks {
                if network.parse::<ipnet::IpNet>().is_err() {
                    return Err(invalid(
                        key,
                        format!("`{network}` is not a network such as 10.0.0.0/8"),
                    ));
                }
            }
        }
        let url = &self.public_base_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "public_base_url",
                "must start with http:// or https://".into(),
            ));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(invalid(
                "log.format",
                format!("`{}` is neither `pretty` nor `json`", self.log.format),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", format!("`{}`: {e}", self.log.level)));
        }
        if self.max_request_size < 1024 {
            return Err(invalid(
                "max_request_size",
                "must be at least 1024 bytes".into(),
            ));
        }
        for (key, limit) in [
            ("rate_limits.login", self.rate_limits.login),
            ("rate_limits.register", self.rate_limits.register),
        ] {
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) || limit.burst == 0 {
                return Err(invalid(
                    key,
                    "per_second must be > 0 and burst at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    /// Creates the data directory if needed and proves it can be written.
    pub fn check_data_dir(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: "data_dir".into(),
            message,
        };
        let dir = &self.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| invalid(format!("cannot create {}: {e}", dir.display())))?;
        let probe = dir.join(".myelin-write-check");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| invalid(format!("{} is not writable: {e}", dir.display())))
    }

    /// The base URL clients should use.
    pub fn base_url(&self) -> String {
        if self.public_base_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_base_url.trim_end_matches('/').to_owned()
        }
    }
}

/// Overlays `overlay` onto `base`, table by table.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets the key named by `name` (`RATE_LIMITS__LOGIN__BURST`) in `table`, reading `value` as
/// the type the key has in `defaults`.
fn apply_env_override(
    table: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    name: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let path: Vec<String> = name
        .split("__")
        .map(|part| part.to_ascii_lowercase())
        .collect();
    let (leaf, parents) = path
        .split_last()
        .ok_or_else(|| env_err("empty key".into()))?;

    let mut target = table;
    let mut default_table = Some(defaults);
    for part in parents {
        default_table = default_table
            .and_then(|t| t.get(part))
            .and_then(|v| v.as_table());
        let entry = target
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        target = entry
            .as_table_mut()
            .ok_or_else(|| env_err(format!("`{part}` is not a table in the config file")))?;
    }
    let default = default_table.and_then(|t| t.get(leaf));
    let parsed = match default {
        Some(toml::Value::String(_)) | None => toml::Value::String(value.to_owned()),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match value {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(env_err(format!("`{value}` is not true or false"))),
        }),
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            value
                .parse()
                .map_err(|_| env_err(format!("`{value}` is not an integer")))?,
        ),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            value
                .parse()
                .map_err(|_| env_err(format!("`{value}` is not a number")))?,
        ),
        Some(_) => {
            let wrapped: toml::Table = format!("v = {value}")
                .parse()
                .map_err(|e| env_err(format!("`{value}` is not a TOML value: {e}")))?;
            wrapped
                .get("v")
                .cloned()
                .ok_or_else(|| env_err("no value".into()))?
        }
    };
    target.insert(leaf.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let table: toml::Table = text.parse().expect("test toml parses");
        Config::from_table(
            table,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn shipped_config_is_valid() {
        let config = Config::load(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")),
            [],
        )
        .expect("shipped config.toml loads");
        assert_eq!(config.server_name, "localhost");
        assert_eq!(config.listen, "127.0.0.1:8008");
        assert!(config.allow_registration);
    }

    #[test]
    fn env_overrides_by_type() {
        let config = load(
            "server_name = \"a.example\"",
            &[
                ("MYELIN_SERVER_NAME", "b.example"),
                ("MYELIN_REGISTRATION_SHARED_SECRET", "12345"),
                ("MYELIN_ALLOW_REGISTRATION", "true"),
                ("MYELIN_MAX_REQUEST_SIZE", "4096"),
                ("MYELIN_RATE_LIMITS__LOGIN__BURST", "9"),
                ("MYELIN_RATE_LIMITS__ENABLED", "false"),
                ("OTHER_VAR", "ignored"),
            ],
        )
        .expect("loads");
        assert_eq!(config.server_name, "b.example");
        assert_eq!(config.registration_shared_secret, "12345");
        assert!(config.allow_registration);
        assert_eq!(config.max_request_size, 4096);
        assert_eq!(config.rate_limits.login.burst, 9);
        assert!(!config.rate_limits.enabled);
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("server_name = \"x.org\"\nbogus = 1", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = load("server_name = \"x.org\"\nmax_request_size = \"big\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_request_size"), "{err}");
        let err = load(
            "server_name = \"x.org\"\n[rate_limits.login]\nburst = \"x\"",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rate_limits.login.burst"), "{err}");
        let err = load("", &[]).unwrap_err().to_string();
        assert!(err.contains("server_name"), "{err}");
        let err = load("server_name = \"not a name\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server_name"), "{err}");
        let err = load(
            "server_name = \"x.org\"",
            &[("MYELIN_MAX_REQUEST_SIZE", "lots")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MYELIN_MAX_REQUEST_SIZE"), "{err}");
        let err = load("server_name = \"x.org\"\nlisten = \"nowhere\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn unwritable_data_dir_is_reported() {
        let mut config = load("server_name = \"x.org\"", &[]).expect("loads");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        config.data_dir = file.path().join("sub");
        let err = config.check_data_dir().unwrap_err().to_string();
        assert!(err.contains("data_dir"), "{err}");
    }
}
