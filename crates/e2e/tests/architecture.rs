//! The dependency rules ARCHITECTURE.md states, checked against cargo's own
//! resolution of the workspace (normal dependencies, transitively): the pure
//! core does no I/O, the generic machinery knows no service, and services
//! talk to each other only over HTTP and Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Package name -> the names of its normal (not dev, not build) dependencies.
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(e2e::cluster::repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    metadata["resolve"]["nodes"]
        .as_array()
        .expect("a resolved graph")
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .map(|dep| names[dep["pkg"].as_str().expect("pkg")].to_owned())
                .collect();
            (names[node["id"].as_str().expect("id")].to_owned(), deps)
        })
        .collect()
}

/// Everything `package` depends on, directly or not.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

const IO_CRATES: &[&str] = &[
    "tokio", "rdkafka", "rocksdb", "sqlx", "reqwest", "axum", "hyper", "lettre", "mio",
];
const SERVICES: &[&str] = &[
    "projector",
    "order-service",
    "notifier",
    "fulfilment",
    "web-console",
    "loadgen",
    "e2e",
];
const LIBRARIES: &[&str] = &["domain", "event-store", "read-model", "service-kit"];

#[test]
fn the_dependency_rules_of_the_architecture_hold() {
    let graph = normal_dependencies();
    let all = |package: &str| closure(&graph, package);

    let domain = all("domain");
    for io in IO_CRATES {
        assert!(
            !domain.contains(*io),
            "domain does no I/O, yet depends on {io}"
        );
    }

    let event_store = all("event-store");
    for forbidden in [
        "axum",
        "sqlx",
        "reqwest",
        "hyper",
        "read-model",
        "service-kit",
    ] {
        assert!(
            !event_store.contains(forbidden),
            "event-store is Kafka and RocksDB only, yet depends on {forbidden}"
        );
    }

    for library in LIBRARIES {
        let deps = all(library);
        for service in SERVICES {
            assert!(
                !deps.contains(*service),
                "library {library} depends on {service}"
            );
        }
    }

    for service in [
        "projector",
        "order-service",
        "notifier",
        "fulfilment",
        "web-console",
    ] {
        let deps = all(service);
        for other in SERVICES {
            assert!(
                !deps.contains(*other),
                "{service} talks to {other} over HTTP or Kafka, not as a crate"
            );
        }
    }
}
