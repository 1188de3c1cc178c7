//! Token-bucket rate limits per action and per client (address or user).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{RateLimit, RateLimitsConfig};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Register,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    config: RateLimitsConfig,
    buckets: Mutex<HashMap<(Action, String), Bucket>>,
}

/// Buckets are dropped once this many exist and they are full again, so memory stays bounded.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(config: RateLimitsConfig) -> Self {
        RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, action: Action) -> RateLimit {
        match action {
            Action::Login => self.config.login,
            Action::Register => self.config.register,
        }
    }

    /// Takes one token for `who`; `M_LIMIT_EXCEEDED` with the wait if there is none.
    pub fn check(&self, action: Action, who: &str) -> Result<()> {
        if !self.config.enabled {
            return Ok(());
        }
        let limit = self.limit(action);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Error::internal("rate limiter poisoned"))?;
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|(action, _), bucket| {
                let limit = self.limit(*action);
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * limit.per_second
                    < f64::from(limit.burst)
            });
        }
        let bucket = buckets.entry((action, who.to_owned())).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(limit.burst));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / limit.per_second;
            Err(Error::limit_exceeded(Duration::from_secs_f64(
                wait.max(0.001),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limited_per_client() {
        let limiter = RateLimiter::new(RateLimitsConfig {
            enabled: true,
            login: RateLimit {
                per_second: 0.001,
                burst: 2,
            },
            register: RateLimit {
                per_second: 1.0,
                burst: 1,
            },
        });
        assert!(limiter.check(Action::Login, "1.2.3.4").is_ok());
        assert!(limiter.check(Action::Login, "1.2.3.4").is_ok());
        let err = limiter.check(Action::Login, "1.2.3.4").unwrap_err();
        assert!(matches!(
            err.kind(),
            Some(ruma::api::error::ErrorKind::LimitExceeded(_))
        ));
        assert!(
            limiter.check(Action::Login, "5.6.7.8").is_ok(),
            "other clients have their own bucket"
        );
        assert!(
            limiter.check(Action::Register, "1.2.3.4").is_ok(),
            "other actions have their own bucket"
        );
    }

    #[test]
    fn disabled_never_limits() {
        let limiter = RateLimiter::new(RateLimitsConfig {
            enabled: false,
            ..Default::default()
        });
        for _ in 0..100 {
            assert!(limiter.check(Action::Login, "x").is_ok());
        }
    }
}
