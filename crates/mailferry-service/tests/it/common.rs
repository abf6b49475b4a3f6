//! What the tests share: a service on a free loopback port with its own data directory.

use std::time::{Duration, Instant};

use mailferry_service::api::hash_password;
use mailferry_service::{worker, AppState, Sealer, ServiceConfig};
use mailferry_store::Store;
use serde_json::{json, Value};
use tokio::sync::watch;

pub const ADMIN: &str = "admin-pw-for-tests";

pub struct Service {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A service whose settings `adjust` changes first.
    pub async fn start_with(adjust: impl FnOnce(&mut ServiceConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("mailferry.sqlite"))
            .await
            .unwrap();
        Self::start_on(dir, store, adjust).await
    }

    /// A service on a store and data directory made beforehand (its key in
    /// `dir/secret.key`, created if missing).
    pub async fn start_on(
        dir: tempfile::TempDir,
        store: Store,
        adjust: impl FnOnce(&mut ServiceConfig),
    ) -> Self {
        store
            .set_admin_password_hash(&hash_password(ADMIN))
            .await
            .unwrap();
        let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
        let mut config = ServiceConfig::new(dir.path().to_path_buf());
        config.poll_interval = Duration::from_millis(100);
        config.lease = Duration::from_secs(5);
        config.time_zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        adjust(&mut config);
        let state = AppState::new(store.clone(), sealer, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, receiver) = watch::channel(false);
        let mut http_stop = receiver.clone();
        let server = tokio::spawn({
            let state = state.clone();
            async move {
                mailferry_service::serve(listener, state, async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
            }
        });
        let workers = tokio::spawn(worker::run_workers(state, 2, receiver));
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            dir,
            stop,
            tasks: vec![server, workers],
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth("admin", Some(ADMIN))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth("admin", Some(ADMIN))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn wait_for_state(&self, id: &str, wanted: &str, limit: Duration) -> Value {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let (_, m) = self.get(&format!("/api/v1/migrations/{id}")).await;
            let state = m["state"].as_str().unwrap_or("?").to_string();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == wanted {
                return json!({ "migration": m, "seen": seen });
            }
            assert!(
                started.elapsed() < limit,
                "still not {wanted} after {limit:?}; states seen {seen:?}; last {m}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
