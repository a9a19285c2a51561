//! One test's services: built once, named for the run, and started with
//! the arguments and environment they all share.

use std::path::PathBuf;

use uuid::Uuid;

use crate::cluster::{Service, build_binaries, free_port, repo_root};

/// The services of one test run.
pub struct Stack {
    /// This run's own name (a simple UUID v7), for databases and keys.
    pub run: String,
    /// `<kind>-<run>`: the topics' prefix, and the start of instance ids.
    pub prefix: String,
    /// `.local/e2e-<prefix>` in the repository: logs and state.
    pub dir: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Stack {
    /// Builds `binaries` and makes the run's folder.
    pub fn new(kind: &str, binaries: &[&str]) -> std::io::Result<Self> {
        let bin = build_binaries(binaries)?;
        let run = Uuid::now_v7().simple().to_string();
        let prefix = format!("{kind}-{run}");
        let dir = repo_root().join(format!(".local/e2e-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            run,
            prefix,
            dir,
            bin,
            args: Vec::new(),
            env: Vec::new(),
        })
    }

    /// An argument every service started from now on takes.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Environment variables every service started from now on gets.
    pub fn env(mut self, env: &[(String, String)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// Starts the binary `name` serving HTTP on a free port, with the
    /// run's topic prefix, an instance id, the shared arguments and `extra`.
    pub fn start(
        &self,
        name: &str,
        extra: impl IntoIterator<Item = String>,
    ) -> std::io::Result<Service> {
        self.start_on(free_port()?, name, extra)
    }

    /// [`start`](Self::start) on `port`, chosen before (with
    /// [`free_port`]), for a service whose
    /// address another must know before it starts.
    pub fn start_on(
        &self,
        port: u16,
        name: &str,
        extra: impl IntoIterator<Item = String>,
    ) -> std::io::Result<Service> {
        let args = self.args(name, extra);
        Service::start_on(port, name, self.bin.join(name), args, &self.env, &self.dir)
    }

    /// A tool built with the run's services, to run to its end: its
    /// binary, with the environment every service gets.
    pub fn tool(&self, name: &str) -> std::process::Command {
        let mut command = std::process::Command::new(self.bin.join(name));
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        command
    }

    /// `--state-dir` in the run's folder, for a service that keeps state.
    pub fn state_dir(&self, name: &str) -> String {
        format!("--state-dir={}", self.dir.join(name).display())
    }

    fn args(&self, name: &str, extra: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut args = vec![
            format!("--topic-prefix={}", self.prefix),
            format!("--instance-id={}-{name}", self.prefix),
        ];
        args.extend(self.args.iter().cloned());
        args.extend(extra);
        args
    }
}
