//! The offline commands: what the first admin needs without the HTTP API, run against a
//! stopped server's data directory (RocksDB's lock says clearly when the server still holds
//! it). `status` alone opens the database read-only, so it also works beside a running server.

use clap::Subcommand;
use ruma::RoomId;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use myelin::config::Config;
use myelin::service::Services;
use myelin::service::admin::room_deletion::DeleteRequest;
use myelin::service::admin::users::UserChanges;
use myelin::storage::{Cf, Db, OpenMode};

pub type AnyResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create {
        /// The localpart (`alice` for `@alice:server`).
        name: String,
        #[arg(long)]
        password: String,
        /// Make the account a server admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password; the user's sessions end (their devices are logged out).
    ResetPassword {
        /// A localpart or full user id.
        user: String,
        #[arg(long)]
        password: String,
    },
    /// Make a user a server admin (or, with --revoke, take it away).
    MakeAdmin {
        user: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Deactivate an account for good: no login, no devices, out of every room.
    Deactivate {
        user: String,
        /// Also forget the display name and avatar.
        #[arg(long)]
        erase: bool,
    },
}

#[derive(Subcommand)]
pub enum RoomCommand {
    /// List every room: id, joined members, name, alias.
    List,
    /// Delete a room: everyone leaves, its aliases go, its history is purged.
    Delete {
        room_id: String,
        /// Also block it, so nobody here can join it again.
        #[arg(long)]
        block: bool,
        /// Remove everyone but keep the history.
        #[arg(long)]
        keep_history: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a registration token (random unless given).
    Create {
        #[arg(long)]
        token: Option<String>,
        /// How many registrations the token allows (unlimited if absent).
        #[arg(long)]
        uses_allowed: Option<u64>,
    },
}

/// Services over the data directory (the server must not be running).
fn offline_services(config: Config) -> Result<Arc<Services>, Box<dyn std::error::Error>> {
    config.check_data_dir()?;
    let db = Db::open(&config.data_dir, &config.storage)?;
    Ok(Services::new(config, db)?)
}

pub async fn user(config: Config, command: UserCommand) -> AnyResult {
    let services = offline_services(config)?;
    let message = match command {
        UserCommand::Create {
            name,
            password,
            admin,
        } => {
            let user_id = services.users.new_user_id(&name)?;
            if services.users.exists(&user_id)? {
                return Err(format!("{user_id} exists already").into());
            }
            let changes = UserChanges {
                password: Some(password),
                admin: Some(admin),
                ..UserChanges::default()
            };
            services.upsert_user(&user_id, &user_id, changes).await?;
            format!("created {user_id}{}", if admin { " (admin)" } else { "" })
        }
        UserCommand::ResetPassword { user, password } => {
            let user_id = existing_user(&services, &user)?;
            services.reset_password(&user_id, &password, true).await?;
            format!("new password set for {user_id}; its sessions have ended")
        }
        UserCommand::MakeAdmin { user, revoke } => {
            let user_id = existing_user(&services, &user)?;
            services.set_admin(&user_id, !revoke)?;
            match revoke {
                true => format!("{user_id} is no longer a server admin"),
                false => format!("{user_id} is now a server admin"),
            }
        }
        UserCommand::Deactivate { user, erase } => {
            let user_id = existing_user(&services, &user)?;
            services.deactivate(&user_id, erase).await?;
            format!("deactivated {user_id}")
        }
    };
    services.db.flush()?;
    say(&message)
}

fn existing_user(
    services: &Services,
    user: &str,
) -> Result<ruma::OwnedUserId, Box<dyn std::error::Error>> {
    let user_id = services.users.parse_local_user(user)?;
    if !services.users.exists(&user_id)? {
        return Err(format!("no such user: {user_id}").into());
    }
    Ok(user_id)
}

pub async fn room(config: Config, command: RoomCommand) -> AnyResult {
    let services = offline_services(config)?;
    match command {
        RoomCommand::List => {
            let mut out = std::io::stdout().lock();
            let ids = services.room_ids()?;
            for room_id in &ids {
                if let Some(room) = services.room_details(room_id)? {
                    writeln!(
                        out,
                        "{}\t{} joined\t{}\t{}",
                        room.room_id,
                        room.joined_members,
                        room.name.as_deref().unwrap_or("-"),
                        room.canonical_alias.as_deref().unwrap_or("-"),
                    )?;
                }
            }
            writeln!(out, "{} rooms", ids.len())?;
            Ok(())
        }
        RoomCommand::Delete {
            room_id,
            block,
            keep_history,
        } => {
            let room_id = RoomId::parse(&room_id)?;
            let request = DeleteRequest {
                block,
                purge: !keep_history,
                ..DeleteRequest::default()
            };
            services.check_room_deletion(&room_id, &request)?;
            let result = services
                .delete_room(None, &room_id, request, |_| {})
                .await?;
            services.db.flush()?;
            say(&format!(
                "deleted {room_id}: {} members removed{}, {} aliases removed{}",
                result.kicked_users.len(),
                match result.failed_to_kick_users.len() {
                    0 => String::new(),
                    n => format!(" ({n} could not be)"),
                },
                result.local_aliases.len(),
                if block { ", blocked" } else { "" },
            ))
        }
    }
}

pub async fn registration_token(config: Config, command: TokenCommand) -> AnyResult {
    let TokenCommand::Create {
        token,
        uses_allowed,
    } = command;
    let services = offline_services(config)?;
    let token = services
        .registration_tokens
        .create(token, uses_allowed, None)?;
    services.db.flush()?;
    say(&token.token)
}

/// Version, data directory and its size, and how many accounts and rooms it holds.
pub fn status(config: &Config) -> AnyResult {
    let db_dir = config.data_dir.join("db");
    if !db_dir.exists() {
        return Err(format!("no database in {} yet", config.data_dir.display()).into());
    }
    let db = Db::open_with(&config.data_dir, &config.storage, OpenMode::ReadOnly)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "version:   Myelin {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "server:    {}", config.server_name)?;
    writeln!(out, "data dir:  {}", config.data_dir.display())?;
    writeln!(
        out,
        "size:      {} (database {}, media {})",
        human(dir_size(&config.data_dir)),
        human(dir_size(&db_dir)),
        human(dir_size(&config.data_dir.join("media"))),
    )?;
    writeln!(out, "users:     {}", db.count(Cf::Users)?)?;
    writeln!(out, "rooms:     {}", db.count(Cf::Rooms)?)?;
    writeln!(out, "media:     {}", db.count(Cf::Media)?)?;
    Ok(())
}

/// Bytes of the regular files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

pub fn say(message: &str) -> AnyResult {
    writeln!(std::io::stdout(), "{message}")?;
    Ok(())
}
