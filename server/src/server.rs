//! Serving: open the store, bootstrap the admin token, bind, serve until
//! SIGTERM or SIGINT, finish requests in flight, flush, return.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::ServeArgs;
use crate::service::{AdminBootstrap, ServiceError, Services};
use crate::store::{SledStore, StoreError};

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened or flushed.
    #[error("store at {path}: {source}")]
    Store {
        /// The data directory.
        path: String,
        /// What failed.
        source: StoreError,
    },
    /// A policy engine (rhai or WebAssembly) could not start.
    #[error("the policy engines could not start: {0}")]
    PolicyEngine(#[from] crate::policy::PolicyError),
    /// Start-up failed in the service layer.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Binding or serving failed.
    #[error("listening on {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// Opens the store and returns the services over it, with the admin token
/// set up (printed once when generated).
pub async fn open(args: &ServeArgs) -> Result<Services, ServeError> {
    let store = SledStore::open_with_cache(&args.data_dir, args.durability, args.cache_mb << 20)
        .map_err(|source| ServeError::Store {
            path: args.data_dir.display().to_string(),
            source,
        })?;
    let services = Services::new(Arc::new(store))?
        .with_event_retention(args.event_retention())
        .with_sessions(args.sessions());
    services.upgrade_store().await?;
    services.init_policies().await?;
    services.resume_tiering().await?;
    services.resume_due_index().await?;
    services.resume_revenue_counts()?;
    services.trim_events();

    match services
        .bootstrap_admin(args.admin_token.as_deref())
        .await?
    {
        AdminBootstrap::Generated(token) => {
            // Shown once; only the hash is kept.
            use std::io::Write;
            let _ = writeln!(
                std::io::stdout(),
                "dealflow: generated admin token (shown once, store it now): {token}"
            );
        }
        AdminBootstrap::FromEnv => tracing::info!("admin token taken from DEALFLOW_ADMIN_TOKEN"),
        AdminBootstrap::Existing => tracing::info!("admin token: the one generated at first start"),
        AdminBootstrap::Revoked { id, active_admins } => {
            // Rotated through the API, then left in the environment: the
            // revocation stands (a departed admin's token must not come
            // back with a restart); the admin tokens in the store decide.
            tracing::warn!(
                token = %id,
                active_admins,
                "DEALFLOW_ADMIN_TOKEN holds a revoked admin token; it stays revoked and the server starts with the admin tokens it has (set DEALFLOW_ADMIN_TOKEN to a new secret to install a new admin token)"
            );
            if active_admins == 0 {
                tracing::error!("no admin token is active: set DEALFLOW_ADMIN_TOKEN to a new secret and restart");
            }
        }
    }
    Ok(services)
}

/// Runs the server until a shutdown signal.
pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let services = open(&args).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Io {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io {
        addr: args.listen,
        source,
    })?;
    let shutdown = shutdown_signal();
    tracing::info!(%addr, data_dir = %args.data_dir.display(), durability = ?args.durability, "dealflow listening");
    run(listener, services.clone(), shutdown)
        .await
        .map_err(|source| ServeError::Io { addr, source })?;
    if let Err(e) = services.store_token_usage().await {
        tracing::warn!(error = %e, "could not store the tokens' last use");
    }
    services.flush().map_err(ServeError::Service)?;
    tracing::info!("dealflow stopped cleanly");
    Ok(())
}

/// Serves `services` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish (event streams end at once: they would
/// never finish by themselves).
pub async fn run(
    listener: TcpListener,
    services: Services,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = services.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close_event_streams();
    };
    let app = crate::api::router(services);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when first polled, so a signal arriving right after the
/// "listening" line still shuts down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutdown signal received: finishing requests in flight");
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received: finishing requests in flight");
    }
}
