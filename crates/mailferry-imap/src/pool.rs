//! Connections to one endpoint, reused, under a cap per host shared by every pool that
//! talks to that host: servers limit connections per user and per client address
//! (Dovecot's `mail_max_userip_connections` defaults to 10), and going over gets a BYE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::endpoint::{Auth, Endpoint};
use crate::error::ImapError;
use crate::session::{Session, SessionOptions};

/// Caps per host, process-wide.
fn host_caps() -> &'static Mutex<HashMap<String, Arc<Semaphore>>> {
    static CAPS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    CAPS.get_or_init(Default::default)
}

/// The semaphore limiting connections to `host` (the first caller's cap wins).
pub fn host_semaphore(host: &str, cap: usize) -> Arc<Semaphore> {
    let mut caps = host_caps()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    caps.entry(host.to_ascii_lowercase())
        .or_insert_with(|| Arc::new(Semaphore::new(cap.max(1))))
        .clone()
}

/// The cap on connections of this whole process, to every host (the first caller's cap wins;
/// `None` from every caller means no global cap).
fn global_semaphore(cap: Option<usize>) -> Option<Arc<Semaphore>> {
    static GLOBAL: OnceLock<Option<Arc<Semaphore>>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| cap.map(|c| Arc::new(Semaphore::new(c.max(1)))))
        .clone()
}

/// A pool of logged-in sessions to one endpoint as one user.
pub struct Pool {
    endpoint: Endpoint,
    auth: Auth,
    options: SessionOptions,
    host: Arc<Semaphore>,
    global: Option<Arc<Semaphore>>,
    idle: Mutex<Vec<Pooled>>,
    enable: Vec<&'static str>,
}

/// A session taken from a pool; give it back with [`Pool::put`], or drop it to close it
/// (after an error, when its state is unknown).
pub struct Pooled {
    pub session: Session,
    _permit: OwnedSemaphorePermit,
    _global_permit: Option<OwnedSemaphorePermit>,
}

impl Pool {
    /// `per_host_cap` limits connections to the endpoint's host across all pools;
    /// `global_cap` (first caller wins) limits this process's connections to all hosts.
    pub fn new(
        endpoint: Endpoint,
        auth: Auth,
        options: SessionOptions,
        per_host_cap: usize,
    ) -> Self {
        Self::with_global_cap(endpoint, auth, options, per_host_cap, None)
    }

    pub fn with_global_cap(
        endpoint: Endpoint,
        auth: Auth,
        options: SessionOptions,
        per_host_cap: usize,
        global_cap: Option<usize>,
    ) -> Self {
        let host = host_semaphore(&endpoint.host, per_host_cap);
        let global = global_semaphore(global_cap);
        Self {
            endpoint,
            auth,
            options,
            host,
            global,
            idle: Mutex::new(Vec::new()),
            enable: vec!["QRESYNC", "CONDSTORE", "UTF8=ACCEPT"],
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A logged-in session with CONDSTORE/QRESYNC/UTF8=ACCEPT enabled where offered. An open
    /// connection, idle or not, holds its permits: servers count open connections.
    pub async fn get(&self) -> Result<Pooled, ImapError> {
        if let Some(idle) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(idle);
        }
        let global_permit = match &self.global {
            Some(global) => Some(
                global
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the global semaphore is never closed"),
            ),
            None => None,
        };
        let permit = self
            .host
            .clone()
            .acquire_owned()
            .await
            .expect("the host semaphore is never closed");
        let mut session = Session::connect(&self.endpoint, self.options.clone()).await?;
        session.login(&self.auth).await?;
        if self.options.compress {
            // Not offered: the session goes on uncompressed.
            session.compress().await?;
        }
        session.enable(&self.enable).await?;
        Ok(Pooled {
            session,
            _permit: permit,
            _global_permit: global_permit,
        })
    }

    /// An idle session, if one is waiting; never opens a connection. For work that may use
    /// connections the job opened but no longer needs.
    pub fn try_idle(&self) -> Option<Pooled> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Returns a session in a known state for reuse.
    pub fn put(&self, pooled: Pooled) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pooled);
    }
}
