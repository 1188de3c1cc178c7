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
    /// Where `/metrics` is served, when metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    pub services: Arc<Services>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
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
        // Cache hit counters cost a little on every read: only kept when someone reads them.
        let mode = if config.metrics.enabled {
            storage::OpenMode::ReadWriteWithStatistics
        } else {
            storage::OpenMode::ReadWrite
        };
        let db =
            tokio::task::spawn_blocking(move || Db::open_with(&data_dir, &storage_config, mode))
                .await
                .map_err(|e| StartError::Services(error::Error::internal(e)))??;
        let (listener, addr) = bind(&config.listen).await?;
        let metrics_listener = match config.metrics.enabled {
            true => Some(bind(&config.metrics.listen).await?),
            false => None,
        };
        let services = Services::new(config, db)?;
        let (metrics_addr, metrics_task) = match metrics_listener {
            Some((listener, metrics_addr)) => {
                let app = api::metrics::router(services.clone());
                tracing::info!(%metrics_addr, "serving metrics");
                (
                    Some(metrics_addr),
                    Some(tokio::spawn(
                        async move { axum::serve(listener, app).await },
                    )),
                )
            }
            None => (None, None),
        };
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
            metrics_addr,
            services,
            shutdown: Some(shutdown),
            task,
            metrics_task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, then flushes the database.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(metrics) = self.metrics_task.take() {
            metrics.abort();
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

/// Binds a listener; returns it and the address it got (the port, when 0 was asked for).
async fn bind(listen: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let error = |source| StartError::Listen {
        addr: listen.to_owned(),
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(error)?;
    let addr = listener.local_addr().map_err(error)?;
    Ok((listener, addr))
}
