//! Myelin, a Matrix homeserver. This file wires the layers (api → service → storage) into a
//! running server; `main.rs` and the tests both start it through [`Server::start`].

pub mod api;
pub mod config;
pub mod error;
pub mod service;
pub mod storage;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::service::Services;
use crate::storage::Db;

/// A server that is accepting requests.
pub struct Server {
    /// The address the client API is bound to (useful when the config asked for port 0).
    pub addr: SocketAddr,
    pub services: Arc<Services>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Services(#[from] error::Error),
}

impl Server {
    /// Opens the data directory, binds the listener and starts serving.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        config.check_data_dir()?;
        let data_dir = config.data_dir.clone();
        let storage_config = config.storage.clone();
        let db = tokio::task::spawn_blocking(move || Db::open(&data_dir, &storage_config))
            .await
            .map_err(|e| StartError::Services(error::Error::internal(e)))??;
        let listen = config.listen.clone();
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
        let services = Services::new(config, db)?;
        let app = api::router::build(services.clone());
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
            })
            .await
        });
        tracing::info!(%addr, server_name = %services.server_name, "listening");
        Ok(Server {
            addr,
            services,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, then flushes the database.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Long polls answer now rather than at their timeout.
        self.services.shutting_down.send_replace(true);
        let result = (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let db = self.services.db.clone();
        if let Err(err) = tokio::task::spawn_blocking(move || db.flush())
            .await
            .unwrap_or_else(|e| {
                Err(storage::StorageError::Corrupt {
                    cf: "all",
                    message: e.to_string(),
                })
            })
        {
            tracing::warn!(%err, "could not flush the database on shutdown");
        }
        result
    }
}
