//! Which instance owns a partition, and taking queries there.
//!
//! The [`Directory`] keeps the consumer group's description fresh (once a
//! second, and at once when a lookup finds it out of date) and places this
//! instance's standby copies from it. The view may lag the group by a
//! moment; that is safe, because only an instance whose processor holds the
//! partition answers from its store. A query that is forwarded to a former
//! owner finds the partition gone there and gets a 503 with `Retry-After`,
//! never an answer from a store nobody keeps current.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri};
use axum::response::Response;
use event_store::group::{self, GroupView};
use event_store::store::Registry;
use event_store::{KafkaConfig, StreamTopics};
use service_kit::Problem;
use tokio::sync::{Notify, watch};

/// Marks a forwarded query: it is answered where it lands, never forwarded again.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-forwarded-by");
/// How often the group is described when nothing asks sooner.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A forward waits this much longer than the query's own bound.
const FORWARD_MARGIN: Duration = Duration::from_secs(2);

/// The group's ownership as last described.
pub struct Directory {
    view: watch::Sender<Arc<GroupView>>,
    refresh: Notify,
    instance_id: String,
    http: reqwest::Client,
}

/// What the directory needs to describe the group.
pub struct DirectoryConfig {
    /// The brokers.
    pub kafka: KafkaConfig,
    /// The processors' consumer group.
    pub group_id: String,
    /// The topics.
    pub topics: StreamTopics,
    /// This instance.
    pub instance_id: String,
    /// Standby copies per partition.
    pub standby_replicas: usize,
}

impl Directory {
    /// Starts describing the group in the background.
    pub fn spawn(config: DirectoryConfig, registry: Arc<Registry>) -> anyhow::Result<Arc<Self>> {
        let client = Arc::new(group::describer(&config.kafka)?);
        let directory = Arc::new(Self {
            view: watch::Sender::new(Arc::new(GroupView::default())),
            refresh: Notify::new(),
            instance_id: config.instance_id.clone(),
            http: reqwest::Client::new(),
        });
        let weak = Arc::downgrade(&directory);
        tokio::spawn(async move {
            loop {
                let (client, group, topic) = (
                    client.clone(),
                    config.group_id.clone(),
                    config.topics.events.clone(),
                );
                let described = tokio::task::spawn_blocking(move || {
                    group::describe(&client, &group, &topic, Duration::from_secs(5))
                })
                .await;
                let Some(directory) = weak.upgrade() else {
                    return;
                };
                match described {
                    Ok(Ok(view)) => {
                        let standbys = view.standby_partitions(
                            &config.instance_id,
                            config.standby_replicas,
                            registry.partition_count(),
                        );
                        registry.standbys.set_wanted(standbys);
                        directory.view.send_if_modified(|current| {
                            let changed = **current != view;
                            if changed {
                                tracing::debug!(?view, "group membership changed");
                                *current = Arc::new(view);
                            }
                            changed
                        });
                    }
                    Ok(Err(error)) => tracing::warn!(%error, "describing the group failed"),
                    Err(error) => tracing::warn!(%error, "the group describer panicked"),
                }
                tokio::select! {
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                    () = directory.refresh.notified() => {}
                }
            }
        });
        Ok(directory)
    }

    /// The last description of the group.
    pub fn view(&self) -> Arc<GroupView> {
        self.view.borrow().clone()
    }

    /// Asks for a new description now (the current one proved out of date).
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }

    /// Where a query for `partition` should go, when this instance cannot
    /// answer it: the owner's address, or a 503 while there is none to name.
    pub fn owner_elsewhere(&self, partition: i32) -> Result<String, Problem> {
        let view = self.view();
        match view.owner_of(partition) {
            Some(owner) if owner.instance_id != self.instance_id => Ok(owner.http_addr.clone()),
            Some(_) => Err(unavailable(
                partition,
                "is being restored here; it answers once it is current",
            )),
            None => {
                self.refresh();
                Err(unavailable(
                    partition,
                    "is between owners (the group is rebalancing)",
                ))
            }
        }
    }

    /// Sends the query to `addr` and relays its answer. A forwarded query
    /// carries [`FORWARDED`], so it cannot bounce between instances.
    pub async fn forward(
        &self,
        addr: &str,
        uri: &Uri,
        partition: i32,
        bound: Duration,
    ) -> Result<Response, Problem> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let relayed = self
            .http
            .get(format!("http://{addr}{path}"))
            .header(FORWARDED, &self.instance_id)
            .timeout(bound + FORWARD_MARGIN)
            .send()
            .await;
        let answer = match relayed {
            Ok(answer) => answer,
            Err(error) => {
                tracing::debug!(%error, addr, partition, "forwarding failed");
                self.refresh();
                return Err(unavailable(
                    partition,
                    "has an owner that did not answer (it may have just failed)",
                ));
            }
        };
        let status = StatusCode::from_u16(answer.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        for (name, value) in answer.headers() {
            if is_relayed(name.as_str())
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_str().as_bytes()),
                    axum::http::HeaderValue::from_bytes(value.as_bytes()),
                )
            {
                headers.insert(name, value);
            }
        }
        let body = answer
            .bytes()
            .await
            .map_err(|_| unavailable(partition, "has an owner whose answer broke off"))?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// The end-to-end headers of an answer (not the connection's).
fn is_relayed(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "etag"
            | "retry-after"
            | "x-partition"
            | "x-committed-offset"
            | "x-folded-offset"
            | "x-served-by"
    ) || name.starts_with("x-standby")
}

/// The answer while a partition has no owner that can answer.
pub fn unavailable(partition: i32, why: &str) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .title("Partition not available")
        .detail(format!("partition {partition} {why}; retry shortly"))
        .with("partition", partition)
        .retry_after(1)
}
