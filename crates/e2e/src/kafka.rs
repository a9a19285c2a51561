//! The Kafka clusters `scripts/infra` runs: the shared broker's SASL_SSL
//! and mutual TLS listeners, and three-node clusters of a test's own that
//! it can break.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use event_store::KafkaConfig;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::cluster::repo_root;

/// The user the scripts' brokers know on their SASL_SSL listener.
pub const SASL_USER: &str = "orders";
/// Its password (development only).
pub const SASL_PASSWORD: &str = "orders-secret";

/// Where the scripts keep their state: `KAFKA_ORDERS_STATE_DIR`, else `.local`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("KAFKA_ORDERS_STATE_DIR")
        .map_or_else(|| repo_root().join(".local"), PathBuf::from)
}

/// The shared broker's plaintext address (`KAFKA_BOOTSTRAP_SERVERS`).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// How to reach a SASL_SSL listener of the scripts' brokers.
#[derive(Clone, Debug)]
pub struct SaslListener {
    /// Its addresses.
    pub bootstrap: String,
    /// The scripts' CA, which signed the brokers' certificate.
    pub ca: PathBuf,
}

impl SaslListener {
    /// The shared broker's: two ports above its plaintext one.
    pub fn shared() -> anyhow::Result<Self> {
        let (host, port, ca) = shared_tls()?;
        Ok(Self {
            bootstrap: format!("{host}:{}", port + 2),
            ca,
        })
    }

    /// The services' settings for this listener with `password`, as
    /// environment variables.
    pub fn env(&self, password: &str) -> Vec<(String, String)> {
        [
            ("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap.as_str()),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", SASL_USER),
            ("KAFKA_SASL_PASSWORD", password),
            ("KAFKA_SSL_CA_LOCATION", &self.ca.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// How to reach the shared broker's mutual TLS listener: a client
/// certificate signed by the scripts' CA instead of a password.
#[derive(Clone, Debug)]
pub struct MtlsListener {
    /// Its address.
    pub bootstrap: String,
    /// The scripts' CA, which signed the broker's certificate and the client's.
    pub ca: PathBuf,
    /// The client's certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl MtlsListener {
    /// The shared broker's: three ports above its plaintext one.
    pub fn shared() -> anyhow::Result<Self> {
        let (host, port, ca) = shared_tls()?;
        Ok(Self {
            bootstrap: format!("{host}:{}", port + 3),
            certificate: ca.with_file_name("client.pem"),
            key: ca.with_file_name("client.key"),
            ca,
        })
    }

    /// The services' settings for this listener, as environment variables.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap.clone()),
            ("KAFKA_SECURITY_PROTOCOL", "ssl".to_owned()),
            ("KAFKA_SSL_CA_LOCATION", self.ca.display().to_string()),
            (
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                self.certificate.display().to_string(),
            ),
            ("KAFKA_SSL_KEY_LOCATION", self.key.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The shared broker's host and plaintext port, and the CA of the scripts
/// that started it (the client certificate lies beside it).
fn shared_tls() -> anyhow::Result<(String, u16, PathBuf)> {
    let plaintext = bootstrap();
    let first = plaintext.split(',').next().unwrap_or_default();
    let (host, port) = first
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("KAFKA_BOOTSTRAP_SERVERS={plaintext} has no port"))?;
    let port: u16 = port.parse()?;
    let ca = Some(state_dir().join("kafka/tls/ca.pem"))
        .filter(|ca| ca.exists())
        .or_else(|| running_broker_ca(port))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the broker at {plaintext} was not started by scripts/infra up, so it has no TLS listeners"
            )
        })?;
    Ok((host.to_owned(), port, ca))
}

/// The CA of the scripts' broker listening on `port`, found from its
/// process (`kafka.Kafka <state>/server.properties`): a broker started from
/// another checkout, which `scripts/infra up` then uses, keeps its CA there.
fn running_broker_ca(port: u16) -> Option<PathBuf> {
    let listener = format!("PLAINTEXT://127.0.0.1:{port},");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let config = args.iter().skip_while(|a| *a != "kafka.Kafka").nth(1)?;
            let properties = std::fs::read_to_string(config).ok()?;
            let keystore = properties
                .lines()
                .find(|l| l.starts_with("listeners=") && l.contains(&listener))
                .and_then(|_| {
                    properties
                        .lines()
                        .find_map(|l| l.strip_prefix("ssl.keystore.location="))
                })?;
            let ca = Path::new(keystore).parent()?.join("ca.pem");
            ca.exists().then_some(ca)
        })
}

/// A Kafka cluster of a test's own, run by `scripts/infra up --brokers N`
/// in a state folder of its own on free ports; stopped and wiped on drop.
pub struct LocalCluster {
    nodes: u32,
    base_port: u16,
    state: PathBuf,
}

impl LocalCluster {
    /// Starts `nodes` nodes and waits until each answers.
    pub fn start(nodes: u32, state: &Path) -> anyhow::Result<Self> {
        let cluster = Self {
            nodes,
            base_port: free_base_port(nodes)?,
            state: state.to_owned(),
        };
        cluster.infra(&["up", "--brokers", &nodes.to_string(), "kafka"])?;
        Ok(cluster)
    }

    /// The nodes' plaintext addresses.
    pub fn bootstrap(&self) -> String {
        (1..=self.nodes)
            .map(|n| format!("127.0.0.1:{}", self.port(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client settings for this cluster.
    pub fn kafka(&self, client_id: &str) -> KafkaConfig {
        KafkaConfig::new(self.bootstrap(), client_id)
    }

    fn port(&self, node: u32) -> u32 {
        u32::from(self.base_port) + 100 * (node - 1)
    }

    /// The node's broker process id, while it runs.
    pub fn pid(&self, node: u32) -> Option<i32> {
        let file = self.state.join(format!("kafka/node-{node}/kafka.pid"));
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// `kill -9` of one node.
    pub fn kill9(&self, node: u32) -> anyhow::Result<()> {
        self.signal(node, "-KILL")
    }

    /// A clean stop of one node (SIGTERM, then waits until it has exited).
    pub fn stop(&self, node: u32) -> anyhow::Result<()> {
        self.signal(node, "-TERM")
    }

    fn signal(&self, node: u32, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid(node)
            .ok_or_else(|| anyhow::anyhow!("node {node} has no pid file"))?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        // Gone when /proc no longer has it (the script's setsid child is
        // not ours to wait for).
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let gone = crate::wait::blocking_within(Duration::from_secs(60), || {
            (!proc_dir.exists() || is_zombie(&proc_dir)).then_some(())
        });
        anyhow::ensure!(
            gone.is_some(),
            "node {node} (pid {pid}) still runs a minute after {signal}"
        );
        Ok(())
    }

    /// Starts the nodes that are not running and waits until all answer.
    pub fn start_missing(&self) -> anyhow::Result<()> {
        self.infra(&["up", "kafka"])
    }

    /// How many of `topics`' partitions each node leads.
    pub fn leaders(&self, topics: &[&str]) -> anyhow::Result<BTreeMap<i32, usize>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        let mut counts = BTreeMap::new();
        for topic in metadata
            .topics()
            .iter()
            .filter(|t| topics.contains(&t.name()))
        {
            for partition in topic.partitions() {
                *counts.entry(partition.leader()).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// The node that coordinates `transactional_id`'s transactions: the
    /// leader of its `__transaction_state` partition (Java's
    /// `abs(hashCode) % partitions`).
    pub fn transaction_coordinator(&self, transactional_id: &str) -> anyhow::Result<i32> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()?;
        let metadata =
            consumer.fetch_metadata(Some("__transaction_state"), Duration::from_secs(10))?;
        let topic = metadata
            .topics()
            .first()
            .filter(|t| !t.partitions().is_empty())
            .ok_or_else(|| anyhow::anyhow!("no __transaction_state topic yet"))?;
        let hash = transactional_id.encode_utf16().fold(0i32, |h, unit| {
            h.wrapping_mul(31).wrapping_add(i32::from(unit))
        });
        let partition = (hash & 0x7fff_ffff) % topic.partitions().len() as i32;
        topic
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .ok_or_else(|| anyhow::anyhow!("no partition {partition} of __transaction_state"))
    }

    /// Partitions of `topics` whose in-sync replicas are fewer than their replicas.
    pub fn under_replicated(&self, topics: &[&str]) -> anyhow::Result<usize> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| topics.contains(&t.name()) || t.name().starts_with("__"))
            .flat_map(|t| t.partitions())
            .filter(|p| p.isr().len() < p.replicas().len() || p.leader() < 0)
            .count())
    }

    fn infra(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new("bash")
            .arg(repo_root().join("scripts/infra"))
            .args(args)
            .env("KAFKA_ORDERS_STATE_DIR", &self.state)
            // The jars fetched once for the shared broker serve every cluster.
            .env("KAFKA_ORDERS_CACHE_DIR", state_dir().join("cache"))
            .env(
                "KAFKA_BOOTSTRAP_SERVERS",
                format!("127.0.0.1:{}", self.base_port),
            )
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "scripts/infra {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.infra(&["reset", "kafka"]);
    }
}

/// A process that has exited but is not reaped yet. The state alone does not
/// tell: the JVM's main thread ends early, and Linux then shows the leader
/// as a zombie while the other threads still run.
fn is_zombie(proc_dir: &Path) -> bool {
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    field("State:").starts_with('Z') && field("Threads:") == "1"
}

/// A base port whose three ports per node are free for `nodes` nodes.
fn free_base_port(nodes: u32) -> anyhow::Result<u16> {
    let free = |port: u32| std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok();
    for _ in 0..200 {
        let base = crate::cluster::free_port()?;
        if u32::from(base) + 100 * nodes + 3 >= 60_000 {
            continue;
        }
        // Plaintext, controller, SASL_SSL and SSL, on each node.
        let all_free = (0..nodes)
            .flat_map(|n| (0..4).map(move |offset| u32::from(base) + 100 * n + offset))
            .all(free);
        if all_free {
            return Ok(base);
        }
    }
    anyhow::bail!("no free ports for {nodes} Kafka nodes")
}

impl LocalCluster {
    /// The replica counts `topics`' partitions have (one value when uniform).
    pub fn replica_counts(
        &self,
        topics: &[&str],
    ) -> anyhow::Result<std::collections::BTreeSet<usize>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| topics.contains(&t.name()))
            .flat_map(|t| t.partitions())
            .map(|p| p.replicas().len())
            .collect())
    }
}
