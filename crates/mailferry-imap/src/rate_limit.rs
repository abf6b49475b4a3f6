//! A bandwidth cap shared by several connections: a token bucket that may go into debt, so
//! a reader takes what it read and then sleeps off the debt. Over any stretch longer than a
//! second the average stays at the rate; bursts are at most one second's worth.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Bytes per second for all sessions holding this limit.
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_second: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> Arc<Self> {
        let rate = bytes_per_second.max(1) as f64;
        Arc::new(Self {
            bytes_per_second: rate,
            bucket: Mutex::new(Bucket {
                tokens: rate,
                last: Instant::now(),
            }),
        })
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second as u64
    }

    /// Accounts for `bytes` just transferred, sleeping while the bucket is in debt.
    pub async fn take(&self, bytes: usize) {
        let wait = {
            let mut bucket = self.bucket.lock().await;
            let now = Instant::now();
            let refill = now.duration_since(bucket.last).as_secs_f64() * self.bytes_per_second;
            bucket.tokens = (bucket.tokens + refill).min(self.bytes_per_second);
            bucket.last = now;
            bucket.tokens -= bytes as f64;
            if bucket.tokens < 0.0 {
                Duration::from_secs_f64(-bucket.tokens / self.bytes_per_second)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn average_rate_holds_across_sharers() {
        let limit = RateLimit::new(1000);
        let start = Instant::now();
        let a = {
            let limit = limit.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    limit.take(500).await;
                }
            })
        };
        let b = {
            let limit = limit.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    limit.take(500).await;
                }
            })
        };
        a.await.unwrap();
        b.await.unwrap();
        // 10,000 bytes at 1,000 B/s with a one-second burst: 9 s at least, not much more.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((9.0..10.5).contains(&elapsed), "took {elapsed} s");
    }
}
