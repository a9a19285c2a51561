//! The client of the projector's state API (see the projector's README section).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use domain::aggregate::Snapshot;
use event_store::processor::CommandOutcome;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The pause before asking again when no projector instance took the connection.
const UNREACHABLE_PAUSE: Duration = Duration::from_millis(100);
/// The pause before asking again after a 503 (no owner can answer yet).
const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(50);

/// Why the projector could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// No connection, or an unreadable answer.
    #[error("the projector is unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    /// It answered, but could not serve the key (rebalancing, stopped, not owner) within the bound.
    #[error("the projector cannot serve this entity now ({status}): {detail}")]
    Unavailable {
        /// Its status code.
        status: u16,
        /// Its problem detail.
        detail: String,
    },
    /// What was waited for did not happen within the bound.
    #[error("the projector did not reach the awaited point in time")]
    TimedOut,
}

/// What to wait for before reading.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wait {
    /// Until this offset of the key's partition is folded.
    pub after_offset: Option<i64>,
    /// Until the entity has this version.
    pub min_version: Option<u64>,
    /// The bound.
    pub timeout: Duration,
}

/// Talks to the projectors over HTTP.
#[derive(Clone)]
pub struct ProjectorClient {
    http: reqwest::Client,
    base_urls: Arc<[String]>,
    /// The instance that answered last; tried first.
    current: Arc<AtomicUsize>,
}

impl ProjectorClient {
    /// A client of the projector instances at `base_urls`; `None` if there is none.
    pub fn new(base_urls: &[String]) -> Option<Self> {
        let base_urls: Arc<[String]> = base_urls
            .iter()
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        (!base_urls.is_empty()).then(|| Self {
            http: reqwest::Client::new(),
            base_urls,
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// GETs `path` from the instance that answered last, moving on to the
    /// next when one does not answer at all.
    async fn send(&self, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        let count = self.base_urls.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut step = 0;
        loop {
            let index = (first + step) % count;
            let base_url = &self.base_urls[index];
            match self.http.get(format!("{base_url}{path}")).send().await {
                Ok(response) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(error) if error.is_connect() && step + 1 < count => {
                    tracing::debug!(%error, base_url, "projector instance unreachable; trying the next");
                    step += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// GETs `path`, retrying answers that say "not now" (503: the partition
    /// has no owner that can answer, as during a rebalance) until the deadline.
    async fn get(
        &self,
        path: &str,
        deadline: Instant,
    ) -> Result<reqwest::Response, ProjectorError> {
        loop {
            let response = match self.send(path).await {
                Ok(response) => response,
                // Every instance refused: one may be restarting; retry within the bound.
                Err(error) if error.is_connect() && Instant::now() < deadline => {
                    tokio::time::sleep(UNREACHABLE_PAUSE).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let status = response.status();
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return Ok(response);
            }
            if Instant::now() >= deadline {
                let detail = response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|p| p["detail"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Err(ProjectorError::Unavailable {
                    status: status.as_u16(),
                    detail,
                });
            }
            tokio::time::sleep(UNAVAILABLE_PAUSE).await;
        }
    }

    /// The snapshot of entity `id` served at `/<resource>/{id}` (the empty
    /// snapshot if it does not exist).
    pub async fn snapshot<S: DeserializeOwned + Default>(
        &self,
        resource: &str,
        id: Uuid,
        wait: Wait,
    ) -> Result<Snapshot<S>, ProjectorError> {
        let mut path = format!("/{resource}/{id}?wait_ms={}", wait.timeout.as_millis());
        if let Some(offset) = wait.after_offset {
            path += &format!("&after_offset={offset}");
        }
        if let Some(version) = wait.min_version {
            path += &format!("&min_version={version}");
        }
        let response = self.get(&path, Instant::now() + wait.timeout).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Snapshot::default()),
            StatusCode::GATEWAY_TIMEOUT => Err(ProjectorError::TimedOut),
            _ => Ok(response.error_for_status()?.json().await?),
        }
    }

    /// The outcome of a command on entity `id` of `/<resource>`, waiting
    /// until `after_offset` is folded; `None` if the projector has none for it.
    pub async fn outcome(
        &self,
        resource: &str,
        command_id: Uuid,
        id: Uuid,
        after_offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Option<CommandOutcome>, ProjectorError> {
        let mut path = format!(
            "/{resource}/{id}/commands/{command_id}?wait_ms={}",
            timeout.as_millis()
        );
        if let Some(offset) = after_offset {
            path += &format!("&after_offset={offset}");
        }
        let response = self.get(&path, Instant::now() + timeout).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::GATEWAY_TIMEOUT => Err(ProjectorError::TimedOut),
            _ => Ok(Some(response.error_for_status()?.json().await?)),
        }
    }

    /// True when a projector instance says it is ready.
    pub async fn ready(&self) -> bool {
        let response = self.send("/readyz").await;
        response.is_ok_and(|r| r.status().is_success())
    }
}
