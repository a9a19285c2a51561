//! The README's commands run as a newcomer runs them: from the checkout, with
//! none of their settings, stopped with Ctrl-C. Each run carries a marker in
//! its environment, which every process it starts inherits, so a test can
//! tell what a script left running.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use uuid::Uuid;

/// The variables the scripts read as settings: a run "as documented" has none.
pub const SETTINGS: &[&str] = &[
    "DEMO_RATE",
    "DEMO_SECONDS",
    "DEMO_PROFILE",
    "TOPIC_PREFIX",
    "DATABASE_URL",
    "PGPORT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_ORDERS_STATE_DIR",
    "KAFKA_ORDERS_CACHE_DIR",
    "KAFKA_HOME",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "TOPIC_REPLICATION_FACTOR",
    "ORDER_SERVICE_HTTP_ADDR",
    "PROJECTOR_HTTP_ADDR",
    "NOTIFIER_HTTP_ADDR",
    "SINK_SMTP_ADDR",
    "SINK_WEBHOOK_ADDR",
    "WEBHOOK_SECRET",
];

/// The variable that marks a run's processes.
const MARK: &str = "KAFKA_ORDERS_SCRIPT_RUN";

/// One run of a script under `scripts/`.
pub struct ScriptRun {
    mark: String,
    child: Child,
    /// Its output, stdout and stderr together (a file: a pipe nobody reads
    /// while the script runs could fill and stop it).
    output: PathBuf,
}

impl ScriptRun {
    /// Starts `scripts/<name> <args>` with `settings` and no others, in a
    /// process group of its own (as a terminal runs a command), its output
    /// kept in a file under `.local/script-runs`.
    pub fn start(
        root: &Path,
        name: &str,
        args: &[&str],
        settings: &[(&str, &str)],
    ) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mark = Uuid::now_v7().to_string();
        let folder = root.join(".local/script-runs");
        std::fs::create_dir_all(&folder)?;
        let output = folder.join(format!("{name}-{mark}.log"));
        let file = File::create(&output)?;
        let mut command = Command::new("bash");
        command
            .arg(root.join("scripts").join(name))
            .args(args)
            .current_dir(root)
            .env(MARK, &mark)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        for variable in SETTINGS {
            command.env_remove(variable);
        }
        command.envs(settings.iter().copied());
        Ok(Self {
            mark,
            child: command.spawn()?,
            output,
        })
    }

    /// What the script has printed so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.output)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// True while the script runs.
    pub fn is_running(&mut self) -> std::io::Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    /// What Ctrl-C in a terminal does: SIGINT to the whole foreground group.
    pub fn interrupt(&self) -> std::io::Result<()> {
        let status = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.child.id())])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill -INT failed: {status}")))
        }
    }

    /// Waits up to `bound` for the script to end and returns how it ended;
    /// a script still running then is killed and reported as an error.
    pub async fn wait(&mut self, bound: Duration) -> std::io::Result<ExitStatus> {
        let child = &mut self.child;
        if let Some(ended) = crate::wait::within(bound, async || child.try_wait().transpose()).await
        {
            return ended;
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        Err(std::io::Error::other(format!(
            "the script did not end within {bound:?}:\n{}",
            self.output()
        )))
    }

    /// Removes the output file (kept when a test fails, for reading).
    pub fn discard_output(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.output)
    }

    /// Processes of this run still alive, as `pid: command line`, other than
    /// the brokers (Kafka's JVM and PostgreSQL), which outlive the demo by
    /// design when it had to start them.
    pub fn leftovers(&self) -> Vec<String> {
        processes_marked(&format!("{MARK}={}", self.mark))
    }
}

fn processes_marked(entry: &str) -> Vec<String> {
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc.filter_map(|entry| entry.ok())
        .filter(|process| {
            process
                .file_name()
                .to_str()
                .is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|process| {
            let path = process.path();
            // A process may end while it is read: then it is no leftover.
            let environ = std::fs::read(path.join("environ")).ok()?;
            if !environ.split(|&b| b == 0).any(|e| e == entry.as_bytes()) {
                return None;
            }
            let exe = std::fs::read_link(path.join("exe")).ok()?;
            let program = exe.file_name()?.to_string_lossy().into_owned();
            if program.starts_with("java") || program.starts_with("postgres") {
                return None;
            }
            let cmdline = std::fs::read(path.join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(format!(
                "{}: {}",
                process.file_name().to_string_lossy(),
                cmdline.trim()
            ))
        })
        .collect()
}

/// True when nothing accepts connections on `addr`.
pub fn nothing_listens(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(
        &match addr.parse() {
            Ok(addr) => addr,
            Err(_) => return false,
        },
        Duration::from_secs(1),
    )
    .is_err()
}
