//! Connections to one endpoint, reused, under a cap per host shared by every pool of one
//! [`ConnectionBudget`]: servers limit connections per user and per client address
//! (Dovecot's `mail_max_userip_connections` defaults to 10), and going over gets a BYE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::endpoint::{Auth, Endpoint};
use crate::error::ImapError;
use crate::session::{Session, SessionOptions};

/// The connections a caller allows: at most `per_host` to any one host (counted over every
/// pool made with this budget, whatever user or job they serve), and at most `global` to
/// all hosts together. The caller that owns the connections makes one (the CLI for its run,
/// the service for its process) and hands it to every job; clones share the caps.
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    inner: Arc<Budget>,
}

#[derive(Debug)]
struct Budget {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    global: Option<(usize, Arc<Semaphore>)>,
}

impl ConnectionBudget {
    pub fn new(per_host: usize, global: Option<usize>) -> Self {
        Self {
            inner: Arc::new(Budget {
                per_host: per_host.max(1),
                hosts: Mutex::default(),
                global: global.map(|g| (g.max(1), Arc::new(Semaphore::new(g.max(1))))),
            }),
        }
    }

    /// The cap per host.
    pub fn per_host(&self) -> usize {
        self.inner.per_host
    }

    /// The cap for all hosts together, if there is one.
    pub fn global(&self) -> Option<usize> {
        self.inner.global.as_ref().map(|(cap, _)| *cap)
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.per_host)))
            .clone()
    }
}

impl Default for ConnectionBudget {
    /// 16 per host (Dovecot allows 10 per user and address by default; other users count
    /// apart), no cap for all hosts.
    fn default() -> Self {
        Self::new(16, None)
    }
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
    /// Sessions to `endpoint` as `auth`, within `budget`'s caps.
    pub fn new(
        endpoint: Endpoint,
        auth: Auth,
        options: SessionOptions,
        budget: &ConnectionBudget,
    ) -> Self {
        let host = budget.host(&endpoint.host);
        let global = budget.inner.global.as_ref().map(|(_, s)| s.clone());
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
