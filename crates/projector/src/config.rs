//! Flags, each with an environment fallback and a localhost default, so the
//! projector runs with no flags at all next to `scripts/infra up`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The projector's settings.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "projector",
    about = "Folds each entity's events into its state store and read model, and serves the state."
)]
pub struct Config {
    /// Brokers and topics.
    #[command(flatten)]
    pub topics: service_kit::topics::TopicArgs,
    /// The consumer group the projector instances share (default
    /// `<topic prefix>-projector`: other topics, another group).
    #[arg(long, env = "PROJECTOR_GROUP_ID")]
    pub group_id: Option<String>,
    /// This instance's stable name: its group membership and transactional id.
    #[arg(long, env = "PROJECTOR_INSTANCE_ID", default_value = "projector-0")]
    pub instance_id: String,
    /// Where the RocksDB stores live (default `.local/state/<instance id>`).
    #[arg(long, env = "PROJECTOR_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long a transaction gathers records before committing, in ms.
    #[arg(long, env = "PROJECTOR_COMMIT_INTERVAL_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub commit_interval_ms: u64,
    /// RocksDB block cache shared by all partitions, in MiB.
    #[arg(long, env = "PROJECTOR_CACHE_MIB", default_value_t = 64)]
    pub cache_mib: usize,
    /// Fault injection for crash tests: abort after this many commits, between
    /// the Kafka commit and the local store writes.
    #[arg(long, hide = true)]
    pub crash_after_commits: Option<u64>,
    /// Where the HTTP API listens.
    #[arg(long, env = "PROJECTOR_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,
    /// Where the other instances reach this one's HTTP API (`host:port`);
    /// defaults to `--http-addr`, which must then not be a wildcard address.
    #[arg(long, env = "PROJECTOR_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,
    /// Warm copies kept of each partition on other instances (tailing its
    /// changelog), so a takeover after a crash starts nearly current.
    #[arg(long, env = "PROJECTOR_STANDBY_REPLICAS", default_value_t = 0)]
    pub standby_replicas: usize,
    /// How long the group waits for a silent instance before its partitions
    /// move, in ms (the broker allows 6000 to 1800000 by default).
    #[arg(long, env = "PROJECTOR_SESSION_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1_000..=1_800_000))]
    pub session_timeout_ms: u64,
    /// The PostgreSQL database of the read model.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://orders:orders@127.0.0.1:5432/orders"
    )]
    pub database_url: String,
    /// Fold into the PostgreSQL read model too (`false` runs the state store alone).
    #[arg(long, env = "PROJECTOR_READ_MODEL", default_value_t = true, action = clap::ArgAction::Set)]
    pub read_model: bool,
    /// Lanes of each read model: its partitions dealt into this many, each
    /// lane with its own consumer and SQL transactions (default: one per
    /// core, at most one per partition). Fewer lanes write larger batches.
    #[arg(long, env = "PROJECTOR_READ_MODEL_LANES", value_parser = clap::value_parser!(u16).range(1..))]
    pub read_model_lanes: Option<u16>,
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The projector's tasks besides serving.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Replays an entity's events topic from offset 0 into a shadow copy of
    /// its read model while the live one keeps serving, then swaps it in
    /// atomically. Other entities' models are not touched.
    RebuildReadModel {
        /// The entity whose model is rebuilt (`orders`, `inventory`).
        #[arg(long, default_value = "orders")]
        entity: String,
    },
}

impl Config {
    /// The consumer group of one entity type's processors: `--group-id`
    /// (the orders'; another entity's is `<group id>-<entity>`), or one named
    /// after the topics.
    pub fn group_id(&self, entity: &str) -> String {
        self.topics
            .entity_group_id(entity, self.group_id.as_deref(), "projector")
    }

    /// The state folder, defaulted from the instance id.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".local/state").join(&self.instance_id))
    }

    /// The address other instances route queries to.
    pub fn advertised_addr(&self) -> anyhow::Result<String> {
        match &self.advertised_addr {
            Some(addr) if !addr.trim().is_empty() => Ok(addr.trim().to_owned()),
            _ if self.http_addr.ip().is_unspecified() => anyhow::bail!(
                "--advertised-addr (PROJECTOR_ADVERTISED_ADDR) is required when --http-addr is the wildcard address {}: other instances need a reachable host:port",
                self.http_addr
            ),
            _ => Ok(self.http_addr.to_string()),
        }
    }

    /// The group's session timeout.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    /// The commit interval.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[test]
    fn a_wildcard_listener_needs_an_advertised_address() {
        let local = Config::try_parse_from(["projector"]).expect("defaults parse");
        assert_eq!(
            local.advertised_addr().ok().as_deref(),
            Some("127.0.0.1:8081")
        );
        let wildcard =
            Config::try_parse_from(["projector", "--http-addr=0.0.0.0:8081"]).expect("parses");
        let error = wildcard.advertised_addr().expect_err("refused").to_string();
        assert!(error.contains("--advertised-addr"), "{error}");
        let advertised = Config::try_parse_from([
            "projector",
            "--http-addr=0.0.0.0:8081",
            "--advertised-addr=projector:8081",
        ])
        .expect("parses");
        assert_eq!(
            advertised.advertised_addr().ok().as_deref(),
            Some("projector:8081")
        );
    }

    #[test]
    fn the_group_follows_the_topics_unless_named() {
        // Two projectors on other topics in one group would be handed each
        // other's partitions by a static-membership rejoin.
        let default = Config::try_parse_from(["projector"]).expect("defaults parse");
        assert_eq!(default.group_id("orders"), "orders-projector");
        assert_eq!(default.group_id("inventory"), "inventory-projector");
        let other = Config::try_parse_from(["projector", "--topic-prefix=demo-7"]).expect("parses");
        assert_eq!(other.group_id("orders"), "demo-7-projector");
        let named = Config::try_parse_from(["projector", "--topic-prefix=demo-7", "--group-id=g"])
            .expect("parses");
        assert_eq!(named.group_id("orders"), "g");
        assert_eq!(named.group_id("inventory"), "g-inventory");
    }
}
