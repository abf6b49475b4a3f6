//! `mailferry serve`: takes migrations through a REST API, checks credentials before storing
//! anything, runs each migration's passes at their times on workers that lease jobs from the
//! store, and shows where each stands.
//!
//! # Layout
//! - [`config`]: the settings of a service.
//! - [`sealing`]: credentials encrypted at rest.
//! - [`server_type`]: server types and how an entered server becomes an endpoint.
//! - [`submit`]: validation of a submitted migration and the credential check.
//! - [`batch`]: mass migration lists: parsing, the formal check per line and field, the
//!   credential check per line, and submitting the good lines together.
//! - [`licence`]: the migration allowance and licence keys.
//! - [`times`]: start and resync times in the server's time zone.
//! - [`worker`]: the lease-based queue consumer that runs passes with the engine.
//! - [`api`]: the axum routes under `/api/v1`, auth, errors.
//! - [`ui`]: the web UI under `/ui`: pages, login sessions, live status.
//! - [`progress`]: where a migration stands (counters, ETA), for both.
//! - [`control`]: cancel, retry and purge, for both.
//!
//! # Contract
//! Callers hand in the listener and the shutdown signal ([`serve`], [`worker::run_workers`]),
//! so tests start a service on port 0 and stop it cleanly.

pub mod api;
pub mod batch;
pub mod config;
pub mod control;
pub mod licence;
pub mod progress;
pub mod sealing;
pub mod submit;
pub mod times;
pub mod ui;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailferry_engine::Progress;
use mailferry_store::Store;

pub use config::ServiceConfig;
pub use sealing::Sealer;

/// What every request handler and worker shares.
pub struct AppState {
    pub store: Store,
    pub sealer: Sealer,
    pub config: ServiceConfig,
    /// Live counters of the passes running in this process, by migration id.
    pub live: Mutex<HashMap<String, Arc<Progress>>>,
    /// Failed admin logins by client address, for the web UI and the API alike: after a few,
    /// that address waits, whichever door it knocks on.
    pub logins: ui::LoginLimiter,
    /// The connections this process's passes may open, per mail host and in all
    /// (`per_host_connections`, `max_connections`), shared by every worker.
    pub budget: mailferry_imap::ConnectionBudget,
}

impl AppState {
    pub fn new(store: Store, sealer: Sealer, config: ServiceConfig) -> Arc<Self> {
        let budget = mailferry_imap::ConnectionBudget::new(
            config.per_host_connections,
            config.max_connections,
        );
        Arc::new(Self {
            store,
            sealer,
            budget,
            config,
            live: Mutex::new(HashMap::new()),
            logins: ui::LoginLimiter::default(),
        })
    }

    pub fn live_progress(&self, id: &str) -> Option<Arc<Progress>> {
        self.live.lock().ok().and_then(|live| live.get(id).cloned())
    }
}

/// Serves the API on `listener` until `shutdown` resolves. Requests in progress then get a
/// few seconds to finish; open event streams (which never finish by themselves) are cut.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::future::IntoFuture;
    let app = api::router(state);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    // Connection info: the web UI's login rate limit counts per client address.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .into_future();
    tokio::select! {
        result = server => result,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        } => Ok(()),
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}
