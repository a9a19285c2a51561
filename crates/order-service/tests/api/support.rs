use std::time::Duration;

use clap::Parser;
use e2e::wait::until;
use event_store::{KafkaConfig, StreamTopics, read_committed_to_end};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A projector and an order-service on fresh topics.
pub struct System {
    pub base_url: String,
    pub http: reqwest::Client,
    pub topics: StreamTopics,
    kafka: KafkaConfig,
    prefix: String,
    projector_url: String,
    database_url: String,
    service: Service,
    /// The projector's stores, removed when the test ends (the open
    /// files go with the test process).
    state_dir: std::path::PathBuf,
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

pub async fn start() -> System {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = service_kit::telemetry::init("order-service");
    }
    let run = Uuid::now_v7().simple().to_string();
    let prefix = format!("test-{run}");
    let state_dir = std::env::temp_dir().join(format!("order-service-test-{run}"));
    let database_url = e2e::postgres::fresh_database(&format!("test_{run}"))
        .await
        .expect("a test database on the test PostgreSQL");
    let projector = projector::Config::parse_from([
        "projector",
        &format!("--topic-prefix={prefix}"),
        "--partitions=3",
        &format!("--group-id=projector-{run}"),
        &format!("--instance-id=projector-{run}"),
        &format!("--state-dir={}", state_dir.display()),
        "--http-addr=127.0.0.1:0",
        "--commit-interval-ms=20",
        &format!("--database-url={database_url}"),
    ]);
    let projector = projector::Application::build(projector)
        .await
        .expect("the projector starts");
    let projector_url = format!("http://{}", projector.local_addr().expect("bound"));
    tokio::spawn(projector.run_until_stopped(std::future::pending()));

    let service = Service::start(
        &prefix,
        &projector_url,
        &database_url,
        &format!("order-service-{run}"),
    )
    .await;

    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let system = System {
        base_url: service.base_url.clone(),
        http: reqwest::Client::new(),
        topics: event_store::StreamTopics::new(&prefix),
        kafka: KafkaConfig::new(servers, format!("order-service-test-{run}")),
        prefix,
        projector_url,
        database_url,
        service,
        state_dir,
    };
    system.wait_ready().await;
    system
}

/// One running order-service.
pub struct Service {
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    async fn start(
        prefix: &str,
        projector_url: &str,
        database_url: &str,
        instance_id: &str,
    ) -> Self {
        let config = order_service::Config::parse_from([
            "order-service",
            &format!("--topic-prefix={prefix}"),
            "--partitions=3",
            &format!("--instance-id={instance_id}"),
            &format!("--projector-url={projector_url}"),
            "--http-addr=127.0.0.1:0",
            "--conflict-retries=50",
            &format!("--database-url={database_url}"),
        ]);
        let service = order_service::Application::build(config)
            .await
            .expect("order-service starts");
        let base_url = format!("http://{}", service.local_addr().expect("bound"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let served = tokio::spawn(service.run_until_stopped(async move {
            let _ = stop.await;
        }));
        Self {
            base_url,
            shutdown: Some(shutdown),
            served: Some(served),
        }
    }
}

impl System {
    async fn wait_ready(&self) {
        // Generous: the whole suite runs at once on two cores, and each
        // projector joins a consumer group per entity type.
        let ready = until(Duration::from_secs(300), async || {
            match self.request(Method::GET, "/readyz").send().await {
                Ok(ready) if ready.status().is_success() => Ok(()),
                Ok(ready) => Err(ready.text().await.unwrap_or_default()),
                Err(error) => Err(error.to_string()),
            }
        })
        .await;
        if let Err(last) = ready {
            // What the projector was doing, to tell a slow start from a stuck one.
            let partitions = match self
                .http
                .get(format!("{}/partitions", self.projector_url))
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(error) => error.to_string(),
            };
            panic!(
                "order-service did not become ready: {last}\nthe projector's partitions: {partitions}"
            );
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
    }

    /// Sends and returns status, ETag and JSON body.
    pub async fn send(&self, request: RequestBuilder) -> (u16, Option<String>, Value) {
        let response: Response = request.send().await.expect("order-service answers");
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let problem = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == b"application/problem+json");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            assert!(
                problem,
                "an error answers application/problem+json: {status} {body}"
            );
        }
        (status, etag, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Option<String>, Value) {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Option<String>, Value) {
        self.send(self.request(Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Option<String>, Value) {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Option<String>, Value) {
        self.send(self.request(Method::GET, path)).await
    }

    /// Places a one-line order; returns its id.
    pub async fn place(&self) -> String {
        let (status, _, order) = self.post("/orders", place_body()).await;
        assert_eq!(status, 201, "{order}");
        order["id"].as_str().expect("an id").to_owned()
    }

    /// Records in the orders' events topic now.
    pub async fn appended(&self) -> usize {
        self.appended_to(&self.topics.events).await
    }

    /// Records in the inventory's events topic now.
    pub async fn appended_to_inventory(&self) -> usize {
        self.appended_to(&self.inventory_topics().events).await
    }

    /// The inventory's topics (named by the same rule as the services').
    pub fn inventory_topics(&self) -> StreamTopics {
        StreamTopics::new(&format!("{}-inventory", self.prefix))
    }

    async fn appended_to(&self, topic: &str) -> usize {
        read_committed_to_end(&self.kafka, topic)
            .await
            .expect("readable")
            .len()
    }

    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// Another order-service on the same topics and projector.
    pub async fn another_service(&self) -> Service {
        let instance = format!("order-service-{}", Uuid::now_v7().simple());
        Service::start(
            &self.prefix,
            &self.projector_url,
            &self.database_url,
            &instance,
        )
        .await
    }

    /// Signals the first order-service to stop (as SIGTERM does); the
    /// handle resolves once it has stopped serving.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.service.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.service.served.take().expect("shut down once")
    }

    /// A gauge or counter of the first order-service's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .request(Method::GET, "/metrics")
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    }
}

pub fn place_body() -> Value {
    json!({
        "customer_id": "customer-42",
        "email": "ada@example.com",
        "items": [{ "sku": "BOOK-1", "quantity": 2, "unit_price_cents": 1500 }]
    })
}
