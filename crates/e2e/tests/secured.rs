//! Every service over SASL_SSL, as on a managed cluster: the scripts' broker
//! listens with TLS (a certificate from the scripts' own CA) and SCRAM. An
//! order goes from placed to shipped through order-service, the projector,
//! the fulfilment workflow and the notifier, all connected that way. Every
//! service's `/metrics` parses as Prometheus text with the histograms of what
//! it did, and loadgen's raw mode appends over the same settings. A wrong
//! password stops a service at start with an error naming the setting.
//! Mutual TLS (a client certificate instead of a password) works the same
//! way, and a service without the certificate is refused at start.

use std::time::Duration;

use e2e::cluster::{Service, build_binaries, wait_all_ready};
use e2e::kafka::{MtlsListener, SASL_PASSWORD, SaslListener};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::stack::Stack;
use e2e::wait::eventually;
use notifier::signature::Secret;
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_works_over_sasl_ssl() -> anyhow::Result<()> {
    let stack = Stack::new(
        "sasl",
        &[
            "projector",
            "order-service",
            "notifier",
            "fulfilment",
            "loadgen",
        ],
    )?;
    let listener = SaslListener::shared()?;
    let stack = stack
        .arg("--partitions=2")
        .env(&listener.env(SASL_PASSWORD));
    let database_url = e2e::postgres::fresh_database(&format!("test_{}", stack.run)).await?;
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let hooks = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour::default(),
    )
    .await?;
    let database = format!("--database-url={database_url}");

    let projector = stack.start(
        "projector",
        [stack.state_dir("projector"), database.clone()],
    )?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    wait_all_ready(
        std::slice::from_ref(&projector),
        &http,
        Duration::from_secs(90),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let api = stack.start(
        "order-service",
        [
            format!("--projector-url={}", projector.url),
            database.clone(),
        ],
    )?;
    let notifier = stack.start(
        "notifier",
        [
            database,
            format!("--smtp-port={}", smtp.addr.port()),
            format!("--webhook-url={}", hooks.url()),
            format!("--webhook-secret={SECRET}"),
        ],
    )?;
    // The notifier has no readiness of its own to wait for: the e-mail below
    // shows it works.
    wait_all_ready(std::slice::from_ref(&api), &http, Duration::from_secs(90))
        .await
        .map_err(anyhow::Error::msg)?;
    let services = [api, notifier];
    let api = services[0].url.clone();
    let fulfilment = stack.start("fulfilment", [format!("--order-service-url={api}")])?;

    let sku = format!("SASL-{}", &stack.run[..8]).to_uppercase();
    let send = |method: reqwest::Method, path: String, body: Value| {
        http.request(method, format!("{api}{path}"))
            .header("idempotency-key", Uuid::now_v7().to_string())
            .json(&body)
            .send()
    };
    let created = send(reqwest::Method::PUT, format!("/inventory/{sku}"), json!({})).await?;
    assert_eq!(created.status(), 201, "{}", created.text().await?);
    let restocked = send(
        reqwest::Method::POST,
        format!("/inventory/{sku}/restock"),
        json!({"units": 5}),
    )
    .await?;
    assert_eq!(restocked.status(), 200, "{}", restocked.text().await?);
    let placed = send(
        reqwest::Method::POST,
        "/orders".to_owned(),
        json!({
            "customer_id": "customer-sasl",
            "email": "sasl@example.com",
            "items": [{"sku": sku, "quantity": 2, "unit_price_cents": 1500}]
        }),
    )
    .await?;
    assert_eq!(placed.status(), 201, "{}", placed.text().await?);
    let id = placed.json::<Value>().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let confirmed = send(
        reqwest::Method::POST,
        format!("/orders/{id}/confirm"),
        json!({}),
    )
    .await?;
    assert_eq!(confirmed.status(), 200, "{}", confirmed.text().await?);

    // The workflow reserved the stock, through its own consumer over SASL_SSL.
    let reserved = eventually("the stock reserved", Duration::from_secs(60), async || {
        let order: Value = http
            .get(format!("{api}/orders/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (order["stock_reserved"] == true).then_some(order)
    })
    .await;
    assert_eq!(reserved["status"], "confirmed");
    let parcel = json!({"carrier": "DHL", "tracking_number": "JD0001"});
    let shipped = send(reqwest::Method::POST, format!("/orders/{id}/ship"), parcel).await?;
    assert_eq!(shipped.status(), 200, "{}", shipped.text().await?);

    // The notifier mailed it; the read model lists it.
    eventually("the shipping e-mail", Duration::from_secs(60), async || {
        smtp.received()
            .iter()
            .any(|m| m.header("Subject") == Some(format!("Order {id} shipped").as_str()))
            .then_some(())
    })
    .await;
    let listed = eventually(
        "the order in the read model",
        Duration::from_secs(60),
        async || {
            let page: Value = http
                .get(format!("{api}/orders?customer_id=customer-sasl"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let items = page["orders"].as_array()?;
            items
                .iter()
                .find(|o| o["id"] == id.as_str() && o["status"] == "shipped")
                .cloned()
        },
    )
    .await;
    assert_eq!(
        listed["version"], 4,
        "placed, confirmed, stock reserved, shipped"
    );
    let stock: Value = http
        .get(format!("{api}/inventory/{sku}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (stock["available"].as_i64(), stock["shipped"].as_i64()),
        (Some(3), Some(2)),
        "{stock}"
    );
    assert!(!hooks.received().is_empty(), "webhooks arrived");

    // Every service's `/metrics` parses, with the histograms of what it did.
    let scrape = async |url: &str| e2e::metrics::scrape(&http, url).await;
    let api_metrics = scrape(&api).await?;
    for (command, entity) in [
        ("Place", "order"),
        ("Confirm", "order"),
        ("Restock", "inventory"),
    ] {
        let labels = [
            ("entity", entity),
            ("command", command),
            ("outcome", "accepted"),
        ];
        let seen = api_metrics.observations("order_service_command_duration_seconds", &labels);
        assert!(seen >= Some(1.0), "{command} timed: {seen:?}");
    }
    for (histogram, labels) in [
        (
            "event_store_append_transaction_duration_seconds",
            &[("outcome", "committed")][..],
        ),
        ("event_store_append_transaction_records", &[][..]),
    ] {
        assert!(
            api_metrics.observations(histogram, labels) >= Some(1.0),
            "{histogram}"
        );
    }
    let projector_metrics = scrape(&projector.url).await?;
    for histogram in [
        "read_model_lag_seconds",
        "read_model_batch_duration_seconds",
    ] {
        let seen = projector_metrics.observations(histogram, &[("entity", "orders")]);
        assert!(seen >= Some(1.0), "{histogram}: {seen:?}");
    }
    assert!(projector_metrics.sum("projector_records_total") >= 4.0);
    // The workflow's commands: reserve and record the stock, commit it.
    let fulfilment_metrics = scrape(&fulfilment.url).await?;
    for step in ["reserve", "reserved", "commit"] {
        let seen = fulfilment_metrics.observations("fulfilment_step_seconds", &[("step", step)]);
        assert!(seen >= Some(1.0), "{step} timed: {seen:?}");
    }
    // Counted just after the SMTP server took them.
    let email = [("kind", "email")];
    eventually(
        "the e-mails' delivery times",
        Duration::from_secs(30),
        async || {
            let metrics = scrape(&services[1].url).await.ok()?;
            (metrics.observations("notifier_effect_delivery_seconds", &email) >= Some(2.0))
                .then_some(())
        },
    )
    .await;

    // loadgen's raw mode appends over the same settings as the services.
    let appended = raw_appends(&stack).await?;
    assert!(appended > 0, "raw appends over SASL_SSL");

    drop(fulfilment);
    drop(services);
    drop(projector);
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_stops_a_service_at_start_naming_the_setting() -> anyhow::Result<()> {
    let listener = SaslListener::shared()?;
    let dir =
        e2e::cluster::repo_root().join(format!(".local/e2e-sasl-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let (status, log) =
        refused_at_start("order-service", &listener.env("not-the-password"), &dir).await?;
    assert!(
        matches!(status, Some(s) if !s.success()),
        "it stops with an error: {status:?}\n{log}"
    );
    assert!(
        log.contains("refused the credentials") && log.contains("KAFKA_SASL_PASSWORD"),
        "the error names the setting:\n{log}"
    );
    assert!(
        !log.contains("not-the-password"),
        "the password is not shown:\n{log}"
    );

    // The same with no CA: the TLS check names the CA setting.
    let mut env = listener.env(SASL_PASSWORD);
    env.retain(|(key, _)| key != "KAFKA_SSL_CA_LOCATION");
    let (status, log) = refused_at_start("order-service-no-ca", &env, &dir).await?;
    assert!(
        matches!(status, Some(s) if !s.success()),
        "{status:?}\n{log}"
    );
    assert!(
        log.contains("KAFKA_SSL_CA_LOCATION"),
        "the error names the CA setting:\n{log}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn plain_and_scram_both_authenticate_and_a_wrong_user_is_refused() -> anyhow::Result<()> {
    use event_store::KafkaConfig;
    use event_store::probe::{ConnectError, check_connection};
    let listener = SaslListener::shared()?;
    let config = |mechanism: &str, user: &str| {
        let mut kafka = KafkaConfig::new(&listener.bootstrap, "sasl-check");
        kafka
            .properties
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", SASL_PASSWORD)
            .set("ssl.ca.location", listener.ca.display().to_string());
        kafka
    };
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        let brokers = check_connection(
            &config(mechanism, e2e::kafka::SASL_USER),
            Duration::from_secs(30),
        )
        .await?;
        assert!(brokers >= 1, "{mechanism}");
        let refused = check_connection(&config(mechanism, "nobody"), Duration::from_secs(30)).await;
        assert!(
            matches!(refused, Err(ConnectError::Authentication(_))),
            "{mechanism}: {refused:?}"
        );
    }
    Ok(())
}

/// Starts order-service with `env` and waits for it to stop on its own, as
/// it must when the cluster refuses it: its exit and its log.
async fn refused_at_start(
    name: &str,
    env: &[(String, String)],
    dir: &std::path::Path,
) -> anyhow::Result<(Option<std::process::ExitStatus>, String)> {
    let bin = build_binaries(&["order-service"])?;
    let args = vec!["--topic-prefix=refused".into()];
    let mut service = Service::start_with_env(name, bin.join("order-service"), args, env, dir)?;
    let status = service.wait_exit(Duration::from_secs(30)).await?;
    Ok((status, service.log_tail(400)))
}

/// Appends for two seconds with loadgen's raw mode (transactions, and the
/// topic it creates), over the stack's connection settings; how many.
async fn raw_appends(stack: &Stack) -> anyhow::Result<u64> {
    let mut loadgen = stack.tool("loadgen");
    loadgen.args([
        "--mode=raw",
        "--duration=2",
        "--concurrency=4",
        &format!("--topic-prefix={}", stack.prefix),
    ]);
    let run = tokio::task::spawn_blocking(move || loadgen.output()).await??;
    let summary = String::from_utf8_lossy(&run.stdout);
    anyhow::ensure!(
        run.status.success(),
        "loadgen failed: {summary}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    summary
        .lines()
        .find_map(|line| line.strip_prefix("ok: ")?.split(' ').next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no count of appends in loadgen's summary: {summary}"))
}

#[tokio::test]
async fn mutual_tls_connects_with_the_client_certificate_and_refuses_without_it()
-> anyhow::Result<()> {
    let listener = MtlsListener::shared()?;
    let stack = Stack::new("mtls", &["order-service", "loadgen"])?.env(&listener.env());
    let appended = raw_appends(&stack).await?;
    assert!(appended > 0, "raw appends over mutual TLS");

    // Without the certificate, the broker refuses the handshake: the
    // service stops at once with an error naming the settings.
    let mut env = listener.env();
    env.retain(|(key, _)| {
        !key.starts_with("KAFKA_SSL_CERTIFICATE") && !key.starts_with("KAFKA_SSL_KEY")
    });
    let (status, log) = refused_at_start("order-service-no-certificate", &env, &stack.dir).await?;
    assert!(
        matches!(status, Some(s) if !s.success()),
        "it stops with an error: {status:?}\n{log}"
    );
    assert!(
        log.contains("TLS handshake") && log.contains("KAFKA_SSL_CERTIFICATE_LOCATION"),
        "the error names the certificate's setting:\n{log}"
    );
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}
