//! The `myelin` command: run the server, check a config, manage accounts offline.

mod cli;

use clap::{Parser, Subcommand};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use myelin::Server;
use myelin::config::Config;

#[derive(Parser)]
#[command(name = "myelin", version, about = "A Matrix homeserver")]
struct Cli {
    /// The configuration file; `MYELIN_*` environment variables override its keys.
    #[arg(long, short, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver.
    Serve,
    /// Check the configuration (and the data directory) without starting.
    CheckConfig,
    /// Version, data directory size, and how many users, rooms and media it holds (works
    /// while the server runs).
    Status,
    /// Manage accounts on a stopped server's data directory.
    User {
        #[command(subcommand)]
        command: cli::UserCommand,
    },
    /// Manage rooms on a stopped server's data directory.
    Room {
        #[command(subcommand)]
        command: cli::RoomCommand,
    },
    /// Manage registration tokens on a stopped server's data directory.
    RegistrationToken {
        #[command(subcommand)]
        command: cli::TokenCommand,
    },
}

fn main() -> ExitCode {
    keep_large_allocations_returnable();
    let cli = Cli::parse();
    let config = match Config::load(&cli.config, std::env::vars()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    if let Err(err) = init_logging(&config) {
        return fail(&err);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::CheckConfig => {
                config.check_data_dir()?;
                cli::say(&format!(
                    "{}: configuration is valid (server_name {})",
                    cli.config.display(),
                    config.server_name
                ))
            }
            Command::Status => cli::status(&config),
            Command::User { command } => cli::user(config, command).await,
            Command::Room { command } => cli::room(config, command).await,
            Command::RegistrationToken { command } => {
                cli::registration_token(config, command).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&*err),
    }
}

async fn serve(config: Config) -> cli::AnyResult {
    let started = std::time::Instant::now();
    let server = Server::start(config).await?;
    tracing::info!(startup_ms = started.elapsed().as_millis() as u64, "ready");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM; stopping on SIGINT only");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init_logging(config: &Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never in files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after which multi-MiB
/// buffers (argon2's, RocksDB's) come from per-thread heaps that fragment and never shrink: a
/// burst of 50 registrations left ~140 MiB resident. A fixed threshold keeps such buffers
/// mmap-backed, so freeing them returns the memory (~20 MiB after the same burst).
fn keep_large_allocations_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "myelin: error: {err}");
    ExitCode::from(2)
}
