//! The schema says what the server enforces: a schema-driven fuzzer
//! (schemathesis) generates requests from `/openapi.json` — schema-valid
//! ones, schema-violating ones, and sequences that follow the document's
//! links (a placed order through its transitions, a SKU's reservations) —
//! and checks every answer: no 5xx but the documented 504, no schema-valid
//! request refused for its shape, no schema-violating one accepted, every
//! status, header and body as documented. Settings and hooks, each with
//! its reason: `tests/fuzz/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::start;

/// The fuzzer's version, installed from PyPI into a virtualenv of its own.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_request_is_answered_as_the_schema_says() {
    let schemathesis = tokio::task::spawn_blocking(installed)
        .await
        .expect("joined")
        .unwrap_or_else(|error| panic!("installing {SCHEMATHESIS}: {error}"));
    let system = start().await;
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let schema = format!("{}/openapi.json", system.base_url);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .arg("--config-file")
            .arg(fuzz.join("schemathesis.toml"))
            .args([
                "run",
                &schema,
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PYTHONPATH", &fuzz)
            .output()
    })
    .await
    .expect("joined")
    .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = report
        .lines()
        .filter(|line| line.contains("generated") || line.contains("Seed:"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(
        output.status.success(),
        "the fuzzer found answers the schema does not allow:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The fuzzer's executable, installed first if it is not there.
fn installed() -> std::io::Result<PathBuf> {
    let cache = std::env::var_os("KAFKA_ORDERS_CACHE").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/kafka-orders")
        },
        PathBuf::from,
    );
    let venv = cache.join("fuzz-venv");
    let executable = venv.join("bin/schemathesis");
    let version = SCHEMATHESIS.rsplit('=').next().unwrap_or_default();
    let current = Command::new(&executable).arg("--version").output();
    if current.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version)) {
        return Ok(executable);
    }
    std::fs::create_dir_all(&cache)?;
    let run = |command: &mut Command| -> std::io::Result<()> {
        let output = command.output()?;
        if output.status.success() {
            return Ok(());
        }
        Err(std::io::Error::other(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", SCHEMATHESIS]))?;
    Ok(executable)
}
