//! `docker-compose.yml`, checked without a Docker engine: it is valid
//! against the Compose specification's schema, every variable a service is
//! given is one its binary reads, and it uses the scripts' settings.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;

fn root() -> PathBuf {
    e2e::cluster::repo_root()
}

/// The file as JSON, after validating it against the schema (the schema of
/// the Compose specification, from docker-compose 1.29.2, Apache-2.0, plus
/// the `required` and `restart` of `depends_on` that Compose 2.20 added).
fn compose() -> Value {
    let check = r#"
import json, sys, yaml, jsonschema
document = yaml.safe_load(open(sys.argv[1]))
schema = json.load(open(sys.argv[2]))
jsonschema.validate(document, schema)
print(json.dumps(document))
"#;
    let output = Command::new("python3")
        .args(["-c", check])
        .arg(root().join("docker-compose.yml"))
        .arg(root().join("crates/e2e/tests/compose/compose_spec.json"))
        .output()
        .expect("python3 runs (scripts/prereqs installs python3-yaml and python3-jsonschema)");
    assert!(
        output.status.success(),
        "docker-compose.yml is valid Compose: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The environment variables a clap command reads.
fn env_names(command: clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// `env = "..."` names in a binary's source (for the one without a library).
fn env_names_in_source(path: &str) -> BTreeSet<String> {
    let source = std::fs::read_to_string(root().join(path)).expect("source");
    source
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

#[test]
fn the_compose_file_is_valid_and_speaks_the_binaries_language() {
    let doc = compose();
    let services = doc["services"].as_object().expect("services");
    assert!(
        services["kafka"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("apache/kafka:"))
    );
    assert!(
        services["postgres"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres:"))
    );

    let reads = |service: &str| -> BTreeSet<String> {
        match service {
            "projector" => env_names(projector::Config::command()),
            "order-service" => env_names(order_service::Config::command()),
            "notifier" => env_names(notifier::Config::command()),
            "fulfilment" => env_names(fulfilment::Config::command()),
            "console" => env_names(web_console::Config::command()),
            "sinks" => e2e::sinks::ENV.iter().map(|s| s.to_string()).collect(),
            "demo-load" => env_names_in_source("crates/loadgen/src/main.rs"),
            other => panic!("a service this test does not know: {other}"),
        }
    };
    for (name, service) in services {
        for (_, dependency) in service["depends_on"].as_object().into_iter().flatten() {
            assert!(
                dependency["condition"].is_string(),
                "{name} waits on a condition"
            );
        }
        if service.get("build").is_none() {
            continue;
        }
        let given: BTreeSet<String> = service["environment"]
            .as_object()
            .map(|env| env.keys().cloned().collect())
            .unwrap_or_default();
        // Logging and trace export are configured alike in every binary.
        let mut known = reads(name);
        known.extend(service_kit::telemetry::ENV.iter().map(|s| s.to_string()));
        let unknown: Vec<_> = given.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{name} is given variables it never reads: {unknown:?}"
        );
        if service.get("ports").is_some() {
            assert!(
                service.get("healthcheck").is_some(),
                "{name} has a healthcheck"
            );
        }
    }

    // The scripts' settings, so both demos behave alike.
    let demo = std::fs::read_to_string(root().join("scripts/demo")).expect("scripts/demo");
    let secret = services["notifier"]["environment"]["WEBHOOK_SECRET"]
        .as_str()
        .expect("a webhook secret");
    assert!(demo.contains(secret), "the demo's webhook secret");
    assert_eq!(services["sinks"]["environment"]["WEBHOOK_SECRET"], secret);
    let common = std::fs::read_to_string(root().join("scripts/lib/common.sh")).expect("common.sh");
    let url = services["projector"]["environment"]["DATABASE_URL"]
        .as_str()
        .expect("a database URL");
    // The scripts' port follows PGPORT, 5432 by default as in the file.
    assert!(
        common.contains(&url.replace("@postgres:5432", "@127.0.0.1:${PGPORT:-5432}")),
        "the scripts' database, role and password"
    );
}

#[test]
fn the_cluster_profile_runs_three_brokers_that_the_services_wait_for() {
    let doc = compose();
    let services = doc["services"].as_object().expect("services");
    for node in ["kafka-2", "kafka-3"] {
        assert_eq!(
            services[node]["profiles"],
            serde_json::json!(["cluster"]),
            "{node}"
        );
        assert_eq!(
            services[node]["image"], services["kafka"]["image"],
            "{node}"
        );
    }
    let env: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(root().join("compose/cluster.env"))
            .expect("compose/cluster.env")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    );
    assert_eq!(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        "kafka:9092,kafka-2:9092,kafka-3:9092"
    );
    assert_eq!(
        (
            env["KAFKA_INTERNAL_REPLICAS"].as_str(),
            env["KAFKA_MIN_INSYNC_REPLICAS"].as_str()
        ),
        ("3", "2")
    );
    let file = std::fs::read_to_string(root().join("docker-compose.yml")).expect("compose file");
    for name in env.keys() {
        assert!(
            file.contains(&format!("${{{name}:-")),
            "{name} has a single-broker default in the file"
        );
    }
    // Every service of ours that talks to Kafka waits for each broker that
    // runs: topics are created with as many replicas as brokers answer.
    for (name, service) in services {
        if service["environment"]
            .get("KAFKA_BOOTSTRAP_SERVERS")
            .is_none()
            || service.get("build").is_none()
        {
            continue;
        }
        let depends = &service["depends_on"];
        assert_eq!(depends["kafka"]["condition"], "service_healthy", "{name}");
        for node in ["kafka-2", "kafka-3"] {
            assert_eq!(
                depends[node]["required"], false,
                "{name} waits for {node} when it runs"
            );
        }
    }
}

#[test]
fn prometheus_scrapes_every_service_and_the_dashboard_asks_for_metrics_that_exist() {
    let doc = compose();
    let services = doc["services"].as_object().expect("services");
    // Every service with /metrics is scraped at its port in the file.
    let scraped =
        std::fs::read_to_string(root().join("compose/prometheus.yml")).expect("prometheus.yml");
    for (service, addr_var) in [
        ("order-service", "ORDER_SERVICE_HTTP_ADDR"),
        ("projector", "PROJECTOR_HTTP_ADDR"),
        ("notifier", "NOTIFIER_HTTP_ADDR"),
        ("fulfilment", "FULFILMENT_HTTP_ADDR"),
    ] {
        let addr = services[service]["environment"][addr_var]
            .as_str()
            .expect("an address");
        let port = addr.rsplit(':').next().expect("a port");
        assert!(
            scraped.contains(&format!("\"{service}:{port}\"")),
            "{service} is scraped at :{port}"
        );
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("compose/grafana/dashboards/kafka-orders.json"))
            .expect("the dashboard"),
    )
    .expect("JSON");
    // The metric names the services write (`"name"` literals in their source).
    let mut written = BTreeSet::new();
    for crate_dir in [
        "order-service",
        "projector",
        "notifier",
        "fulfilment",
        "read-model",
        "event-store",
    ] {
        for entry in walk(&root().join("crates").join(crate_dir).join("src")) {
            let source = std::fs::read_to_string(entry).unwrap_or_default();
            written.extend(
                source
                    .split('"')
                    .filter(|s| {
                        s.chars().all(|c| c.is_ascii_lowercase() || c == '_') && s.contains('_')
                    })
                    .map(str::to_owned),
            );
        }
    }
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expression");
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| {
                    [
                        "order_service_",
                        "projector_",
                        "read_model_",
                        "notifier_",
                        "fulfilment_",
                        "event_store_",
                    ]
                    .iter()
                    .any(|p| w.starts_with(p))
                })
            {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(
                    written.contains(base),
                    "the dashboard asks for `{name}`, which no service writes"
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 10, "the dashboard shows the services' metrics");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
