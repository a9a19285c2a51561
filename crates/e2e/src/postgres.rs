//! A PostgreSQL server of a test's own, for tests that crash it or that need
//! it to differ from the shared one.

use std::path::PathBuf;

use uuid::Uuid;

/// A PostgreSQL server of this test's own (initdb in a temporary folder, a
/// free port), so the test can crash it with `pg_ctl stop -m immediate`
/// without touching the shared one.
pub struct PrivateCluster {
    bin: PathBuf,
    root: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    /// A server that trusts every local connection.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// A server whose superuser `postgres` logs in with `password` only, and
    /// that knows no other role: what a PostgreSQL set up by someone else
    /// looks like to the scripts.
    pub fn start_with_password(password: &str) -> anyhow::Result<Self> {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server under /usr/lib/postgresql"))?;
        // Under /var/tmp: the server's user must be able to reach it.
        let root = PathBuf::from(format!(
            "/var/tmp/orders-test-pg-{}",
            Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&root)?;
        if is_root() {
            run("chown", &["postgres:postgres", &root.display().to_string()])?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cluster = Self { bin, root, port };
        let data = cluster.data();
        let mut initdb = vec!["-D", &data, "-U", "postgres", "-E", "UTF8"];
        let pwfile = cluster.root.join("pwfile").display().to_string();
        match password {
            None => initdb.push("--auth=trust"),
            Some(password) => {
                std::fs::write(&pwfile, password)?;
                if is_root() {
                    run("chown", &["postgres:postgres", &pwfile])?;
                }
                initdb.extend(["--auth=scram-sha-256", "--pwfile", &pwfile]);
            }
        }
        cluster.as_owner("initdb", &initdb)?;
        cluster.start_server()?;
        Ok(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.root.display()
        );
        let log = self.root.join("postgres.log").display().to_string();
        self.as_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }

    /// A crash: no checkpoint, no clean shutdown, open transactions lost.
    pub fn stop_immediately(&self) -> anyhow::Result<()> {
        self.as_owner(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }

    fn data(&self) -> String {
        self.root.join("data").display().to_string()
    }

    fn as_owner(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(tool).display().to_string();
        if is_root() {
            let mut all = vec!["-u", "postgres", "--", program.as_str()];
            all.extend_from_slice(args);
            run("runuser", &all)
        } else {
            run(&program, args)
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.as_owner("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    // From /: the server's user may not be able to reach the working folder.
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir("/")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A database of its own for one test, on the server of `DATABASE_URL` (the
/// local default otherwise); returns its URL.
pub async fn fresh_database(name: &str) -> anyhow::Result<String> {
    use sqlx::{Connection, Executor};
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://orders:orders@127.0.0.1:5432/orders".into());
    let mut admin = sqlx::PgConnection::connect(&url).await?;
    anyhow::ensure!(
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "a plain database name, not `{name}`"
    );
    // Checked to be a plain name above: safe to splice.
    admin
        .execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .await?;
    let (base, _) = url.rsplit_once('/').unwrap_or((url.as_str(), ""));
    Ok(format!("{base}/{name}"))
}
