//! The projector as a child process, so tests can `kill -9` it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_store::StreamTopics;
use serde_json::Value;

use super::{PARTITIONS, eventually};

pub struct Projector {
    child: Option<Child>,
    pub group: String,
    pub state_dir: PathBuf,
    pub base_url: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    pub http: reqwest::Client,
}

impl Projector {
    /// Starts a projector on the topics, with its own group, state folder and port.
    pub async fn start(topics: &StreamTopics, group: &str, state_dir: &Path) -> Self {
        Self::start_with(topics, group, state_dir, &[]).await
    }

    /// [`Self::start`] with extra flags for this first run only.
    pub async fn start_with(
        topics: &StreamTopics,
        group: &str,
        state_dir: &Path,
        extra: &[&str],
    ) -> Self {
        Self::start_with_env(topics, group, state_dir, extra, &[]).await
    }

    /// [`Self::start_with`] with environment variables for every run.
    pub async fn start_with_env(
        topics: &StreamTopics,
        group: &str,
        state_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut projector = Self::new(topics, group, &format!("{group}-0"), state_dir, &[], env);
        projector.spawn_with(extra);
        projector.wait_ready().await;
        projector
    }

    /// One of several instances of a group, started with `flags` on every
    /// run; not waited for (a group of several forms when all have joined).
    pub fn member(
        topics: &StreamTopics,
        group: &str,
        instance_id: &str,
        state_dir: &Path,
        flags: &[&str],
    ) -> Self {
        let mut projector = Self::new(topics, group, instance_id, state_dir, flags, &[]);
        projector.spawn();
        projector
    }

    fn new(
        topics: &StreamTopics,
        group: &str,
        instance_id: &str,
        state_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let prefix = topics.events.trim_end_matches(".events").to_owned();
        let mut args = vec![
            format!("--topic-prefix={prefix}"),
            format!("--partitions={PARTITIONS}"),
            format!("--group-id={group}"),
            format!("--instance-id={instance_id}"),
            format!("--state-dir={}", state_dir.display()),
            format!("--http-addr=127.0.0.1:{port}"),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let log = state_dir.with_extension("log");
        Self {
            child: None,
            group: group.to_owned(),
            state_dir: state_dir.to_owned(),
            base_url: format!("http://127.0.0.1:{port}"),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log,
            http: reqwest::Client::new(),
        }
    }

    /// Waits for the process to die by itself (a fault injected with a flag).
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running projector");
        eventually(
            "the projector to exit",
            Duration::from_secs(60),
            async || child.try_wait().ok().flatten(),
        )
        .await
    }

    /// Starts the process again with its usual flags.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }

    fn spawn(&mut self) {
        self.spawn_with(&[]);
    }

    fn spawn_with(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        // BENCH_PROJECTOR: another build, for a before/after pair in one run.
        let program = std::env::var_os("BENCH_PROJECTOR")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_projector").into());
        let child = Command::new(program)
            .args(&self.args)
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the projector starts");
        self.child = Some(child);
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base_url);
        let http = self.http.clone();
        eventually(
            "the projector to be ready",
            Duration::from_secs(90),
            async || {
                let response = http.get(&url).send().await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await;
    }

    /// Waits until this run of the process has folded `records` records, or
    /// `input_done` says no more are coming: a kill then lands mid-stream,
    /// in a transaction or a commit, not after the work is over.
    pub async fn wait_folded(&self, records: u64, input_done: impl Fn() -> bool) {
        eventually(
            "the projector to fold",
            Duration::from_secs(60),
            async || {
                let folded = self.metric("projector_records_total").await;
                (input_done() || folded >= records as f64).then_some(())
            },
        )
        .await;
    }

    /// `kill -9`, then a restart that must become ready.
    pub async fn crash_and_restart(&mut self) {
        self.restart().await;
    }

    /// The running process's id (the benchmark reads its memory use).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill -TERM");
            assert!(status.success());
            let exit = child.wait().expect("reaped");
            assert!(
                exit.success(),
                "the projector exits cleanly on SIGTERM: {exit}; log: {}",
                self.log.display()
            );
        }
    }

    /// The projector's arguments (topics and group), for a one-off subcommand.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The partitions this instance owns now.
    pub async fn owned(&self) -> Vec<i32> {
        let (_, ownership) = self.json("/partitions").await;
        ownership["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["partition"].as_i64().and_then(|p| i32::try_from(p).ok()))
            .collect()
    }

    /// A metric of `/metrics`, summed over its samples (every entity's).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap_or_default();
        e2e::metrics::sum(&text, name)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("the projector answers")
    }

    pub async fn json(&self, path: &str) -> (u16, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every orders partition has committed at least up to `ends[p]`.
    pub async fn wait_caught_up(&self, ends: &[i64]) {
        self.wait_entity_caught_up("orders", ends).await;
    }

    /// Waits until every partition of `entity` has committed at least up to `ends[p]`.
    pub async fn wait_entity_caught_up(&self, entity: &str, ends: &[i64]) {
        eventually(
            "the projector to catch up",
            Duration::from_secs(120),
            async || {
                let committed = self
                    .committed_offsets_of(&format!("/partitions?entity={entity}"))
                    .await;
                let caught_up = ends.iter().enumerate().all(|(p, end)| {
                    committed
                        .get(&(p as i32))
                        .is_some_and(|committed| committed >= end)
                });
                caught_up.then_some(())
            },
        )
        .await;
    }

    /// Waits until `partition` has committed past `offset`, so what folding
    /// it sent (changelog, changes, dead letters) is readable.
    pub async fn wait_committed_past(&self, partition: i32, offset: i64) {
        eventually(
            "the projector to commit",
            Duration::from_secs(60),
            async || {
                let committed = self.committed_offsets().await;
                committed
                    .get(&partition)
                    .is_some_and(|&committed| committed > offset)
                    .then_some(())
            },
        )
        .await;
    }

    /// The next offset not committed yet, per owned orders partition.
    async fn committed_offsets(&self) -> BTreeMap<i32, i64> {
        self.committed_offsets_of("/partitions").await
    }

    async fn committed_offsets_of(&self, path: &str) -> BTreeMap<i32, i64> {
        let (_, ownership) = self.json(path).await;
        ownership["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let partition = i32::try_from(v["partition"].as_i64()?).ok()?;
                Some((partition, v["committed_offset"].as_i64()?))
            })
            .collect()
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
