//! Who is calling `/v1`: the bearer key checked against the [`KeyRing`], its rate limit applied,
//! and the [`Caller`] (tenant and limits) handed to the handlers. Without keys (a server on a
//! loopback address, or one told `--insecure-no-auth`) every caller is the open tenant.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::{InMemoryState, NotKeyed},
};
use minimoto_common::{ErrorCode, job::OPEN_TENANT};

use crate::{ApiError, keys::KeyRing};

/// The tenant a request acts for, and the limits of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    /// The key's id (`key_…`); none without keys.
    pub key_id: Option<String>,
    /// Requests a minute the key may send; none without keys.
    pub rate_per_minute: Option<u32>,
    /// Jobs the tenant may have queued or running; none without keys.
    pub max_active_jobs: Option<u32>,
}

impl Caller {
    /// Every caller of a server without keys.
    pub fn open() -> Self {
        Self {
            tenant: OPEN_TENANT.to_owned(),
            key_id: None,
            rate_per_minute: None,
            max_active_jobs: None,
        }
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The keys and each key's rate limiter.
#[derive(Debug, Default)]
pub struct Auth {
    keys: Option<Arc<KeyRing>>,
    /// Per key id: its rate when the limiter was made (a changed rate makes a new one), and the
    /// limiter.
    limiters: Mutex<HashMap<String, (u32, Arc<Limiter>)>>,
}

impl Auth {
    pub fn new(keys: Option<Arc<KeyRing>>) -> Self {
        Self {
            keys,
            limiters: Mutex::default(),
        }
    }

    fn limiter(&self, id: &str, rate: u32) -> Arc<Limiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        match limiters.get(id) {
            Some((r, l)) if *r == rate => l.clone(),
            _ => {
                let per_minute = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
                let limiter = Arc::new(RateLimiter::direct(Quota::per_minute(per_minute)));
                limiters.insert(id.to_owned(), (rate, limiter.clone()));
                limiter
            }
        }
    }

    /// The caller of a request with these headers, or why it may not call.
    fn caller(&self, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
        // A keys file with no key yet leaves the server open; the first `keys add` closes it
        // (within the ring's reload second), with no restart.
        let Some(keys) = self.keys.as_ref().filter(|k| !k.is_empty()) else {
            return Ok(Caller::open());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "this server needs an API key: send `Authorization: Bearer <key>`",
                )
            })?;
        let entry = keys.find(presented).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the API key is not one this server knows",
            )
        })?;
        if let Some(when) = entry.revoked_at {
            return Err(ApiError::new(
                ErrorCode::KeyRevoked,
                format!(
                    "the API key {} was revoked at {}",
                    entry.id,
                    when.to_rfc3339()
                ),
            ));
        }
        let limiter = self.limiter(&entry.id, entry.rate_per_minute);
        if let Err(not_until) = limiter.check() {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "the API key {} may send {} requests a minute; try again after Retry-After",
                    entry.id, entry.rate_per_minute
                ),
            )
            .retry_after(wait.as_secs() + 1));
        }
        Ok(Caller {
            tenant: entry.tenant,
            key_id: Some(entry.id),
            rate_per_minute: Some(entry.rate_per_minute),
            max_active_jobs: Some(entry.max_active_jobs),
        })
    }
}

/// The middleware of `/v1`: refuses a request without a valid key (401), with a revoked one
/// (403) or over its rate (429 with `Retry-After`); otherwise the handlers find its [`Caller`]
/// among the request's extensions.
pub async fn authenticate(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.caller(request.headers()) {
        Ok(caller) => {
            if let Some(id) = &caller.key_id {
                tracing::Span::current().record("key_id", id.as_str());
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}
