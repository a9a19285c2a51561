use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use std::path::PathBuf;

use uuid::Uuid;

/// A database of its own for one test, created from `DATABASE_URL`'s server.
pub struct TestDatabase {
    pub pool: PgPool,
    /// This database's URL, for services under test.
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://orders:orders@127.0.0.1:5432/orders".into());
        let admin: PgConnectOptions = url.parse()?;
        let name = format!("test_{}", Uuid::now_v7().simple());
        PgConnection::connect_with(&admin)
            .await?
            // The name is ours (a UUID), not input: safe to splice.
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin.clone().database(&name))
            .await?;
        let (base, _) = url.rsplit_once('/').unwrap_or((url.as_str(), ""));
        let url = format!("{base}/{name}");
        Ok(Self {
            pool,
            url,
            name,
            admin,
        })
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        PgConnection::connect_with(&self.admin)
            .await?
            .execute(AssertSqlSafe(format!(r#"DROP DATABASE "{}""#, self.name)))
            .await?;
        Ok(())
    }
}

/// A PostgreSQL server of this test's own (initdb in a temporary folder, a
/// free port), so the test can crash it with `pg_ctl stop -m immediate`
/// without touching the shared one.
pub struct PrivateCluster {
    bin: PathBuf,
    root: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    pub fn start() -> anyhow::Result<Self> {
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
        cluster.as_owner(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
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
