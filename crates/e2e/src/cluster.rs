//! The services as child processes on one machine, so a test can run
//! several of each, `kill -9` one, and start it again.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The checkout the tests run from. Cargo sets `CARGO_MANIFEST_DIR` when it
/// runs a test too; the compile-time value is only the fallback, because a
/// test binary reused from a shared target folder may come from another
/// checkout.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.join("../..")
}

/// Builds the service binaries (debug) and returns the folder they are in.
pub fn build_binaries(names: &[&str]) -> std::io::Result<PathBuf> {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&root).arg("build");
    for name in names {
        command.args(["--bin", name]);
    }
    let status = command.status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "cargo build failed: {status}"
        )));
    }
    // Tests run from <target>/debug/deps; the binaries are one folder up.
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .ok_or_else(|| std::io::Error::other("no target folder above the test binary"))
}

/// A port nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An id (of no order) whose key lands in `partition` of `count`: a probe
/// that only the partition's owner can answer (with a 404).
pub fn key_in_partition(partition: i32, count: i32) -> uuid::Uuid {
    loop {
        let id = uuid::Uuid::now_v7();
        if event_store::partition_for_key(id.to_string().as_bytes(), count) == partition {
            return id;
        }
    }
}

/// One service process, restartable with the same arguments.
pub struct Service {
    /// A name for messages and the log file.
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// Starts `program` with `args` and `--http-addr` on a free port,
    /// appending its output to `<log_dir>/<name>.log`.
    pub fn start(
        name: &str,
        program: PathBuf,
        args: Vec<String>,
        log_dir: &Path,
    ) -> std::io::Result<Self> {
        Self::start_with_env(name, program, args, &[], log_dir)
    }

    /// [`start`](Self::start) with these environment variables too.
    pub fn start_with_env(
        name: &str,
        program: PathBuf,
        args: Vec<String>,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> std::io::Result<Self> {
        Self::start_on(free_port()?, name, program, args, env, log_dir)
    }

    /// [`start_with_env`](Self::start_with_env) on `port`, chosen before,
    /// for a service whose address another must know before it starts.
    pub fn start_on(
        port: u16,
        name: &str,
        program: PathBuf,
        mut args: Vec<String>,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> std::io::Result<Self> {
        args.push(format!("--http-addr=127.0.0.1:{port}"));
        let mut service = Self {
            name: name.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
            program,
            args,
            env: env.to_vec(),
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        service.spawn()?;
        Ok(service)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no chance to commit, flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // std's kill is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to end by itself, up to `bound`; its exit
    /// status, or `None` when it still runs.
    pub async fn wait_exit(&mut self, bound: Duration) -> std::io::Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        crate::wait::within(bound, async || child.try_wait().transpose())
            .await
            .transpose()
    }

    /// Starts the process again with the same arguments.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill9();
        self.spawn()
    }

    /// Waits until `GET /readyz` answers 200. The error carries the last
    /// answer and the end of the service's log, so a failure on a machine
    /// that is gone can still be read.
    pub async fn wait_ready(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = format!("{}/readyz", self.url);
        let last = crate::wait::until(timeout, async || match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )),
            Err(error) => Err(error.to_string()),
        })
        .await;
        last.map_err(|last| {
            format!(
                "{} not ready within {timeout:?} (last answer: {last}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(60)
            )
        })
    }

    /// Where the service's log is written.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the service's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Prints the warnings and errors from the services' logs if dropped
/// before [`LogsOnFailure::passed`]: a test that fails on another machine
/// shows what its services saw (the logs themselves stay on that machine).
pub struct LogsOnFailure {
    logs: Vec<(String, PathBuf)>,
    /// Files printed whole (say, the last answer of a status endpoint).
    files: Vec<PathBuf>,
    passed: bool,
}

impl LogsOnFailure {
    /// Watches the logs of `services`.
    pub fn of(services: &[&Service]) -> Self {
        Self {
            logs: services
                .iter()
                .map(|s| (s.name.clone(), s.log.clone()))
                .collect(),
            files: Vec::new(),
            passed: false,
        }
    }

    /// Also prints `file` whole.
    pub fn with_file(mut self, file: PathBuf) -> Self {
        self.files.push(file);
        self
    }

    /// The test got through: nothing to print.
    pub fn passed(mut self) {
        self.passed = true;
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if self.passed {
            return;
        }
        const LINES: usize = 80;
        for (name, path) in &self.logs {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let notable: Vec<&str> = text
                .lines()
                .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
                .collect();
            println!(
                "--- {name}: the last {} of {} warnings and errors ({}) ---\n{}",
                notable.len().min(LINES),
                notable.len(),
                path.display(),
                notable[notable.len().saturating_sub(LINES)..].join("\n")
            );
        }
        for file in &self.files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            println!("--- {} ---\n{text}", file.display());
        }
    }
}

/// Writes `url`'s answer to `file` every few seconds until dropped, so a
/// failure can show the last state a service reported.
pub fn record_answers(
    http: reqwest::Client,
    url: String,
    file: PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3));
        loop {
            every.tick().await;
            let answer = match http.get(&url).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(error) => format!("no answer: {error}"),
            };
            let _ = std::fs::write(
                &file,
                format!("{url} at {:?}:\n{answer}", std::time::SystemTime::now()),
            );
        }
    })
}

/// Waits until every service is ready.
pub async fn wait_all_ready(
    services: &[Service],
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<(), String> {
    for service in services {
        service.wait_ready(http, timeout).await?;
    }
    Ok(())
}
