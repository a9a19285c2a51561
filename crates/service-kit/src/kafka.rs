//! How every service connects to the Kafka cluster: the security flags, the
//! pass-through for any other librdkafka property, and the start-up check
//! that turns a wrong password or CA into an error naming the setting.
//!
//! One convention for all services: a dedicated flag (with an environment
//! fallback) for each security setting, and `--kafka-property key=value` or
//! `KAFKA_PROPERTY_<KEY>` (the property's name upper-cased, dots as
//! underscores) for anything else librdkafka knows.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use event_store::KafkaConfig;
use event_store::config::ClientProperties;
use event_store::probe::{ConnectError, check_connection};

/// The prefix of pass-through properties in the environment.
pub const PROPERTY_ENV_PREFIX: &str = "KAFKA_PROPERTY_";

/// How long the start-up connection check waits for a broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Properties the services set themselves, for their guarantees: passing
/// them through would silently weaken exactly-once or break membership.
const MANAGED: [&str; 10] = [
    "bootstrap.servers",
    "client.id",
    "group.id",
    "group.instance.id",
    "transactional.id",
    "enable.idempotence",
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

/// The cluster's connection settings.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KafkaClientArgs {
    /// How clients talk to the brokers: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(
        long,
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        default_value = "plaintext"
    )]
    pub kafka_security_protocol: SecurityProtocol,
    /// SASL mechanism, with sasl_plaintext or sasl_ssl.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_enum)]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<Secret>,
    /// PEM file of the CA that signed the brokers' certificates (default:
    /// the system's trust store).
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// PEM file of this client's certificate, for brokers that require one.
    #[arg(long, env = "KAFKA_SSL_CERTIFICATE_LOCATION")]
    pub kafka_ssl_certificate_location: Option<PathBuf>,
    /// PEM file of this client's private key.
    #[arg(long, env = "KAFKA_SSL_KEY_LOCATION")]
    pub kafka_ssl_key_location: Option<PathBuf>,
    /// Password of the private key, if it is encrypted.
    #[arg(long, env = "KAFKA_SSL_KEY_PASSWORD", hide_env_values = true)]
    pub kafka_ssl_key_password: Option<Secret>,
    /// Any other librdkafka property, as `key=value`; repeatable. In the
    /// environment: `KAFKA_PROPERTY_<KEY>`, e.g.
    /// `KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE=true`.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<Property>,
}

/// `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication without TLS.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn property(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `sasl.mechanism`: the ones librdkafka supports without Kerberos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// User and password in the clear (use it over TLS).
    #[value(name = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn property(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A credential: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One pass-through property, `key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    key: String,
    value: PropertyValue,
}

/// A property's value, hidden in `Debug` when the key names a secret.
#[derive(Clone, PartialEq, Eq)]
struct PropertyValue {
    value: String,
    secret: bool,
}

impl fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("***")
        } else {
            fmt::Debug::fmt(&self.value, f)
        }
    }
}

impl Property {
    fn new(key: String, value: String) -> Self {
        let secret = ClientProperties::is_secret(&key);
        Self {
            key,
            value: PropertyValue { value, secret },
        }
    }
}

impl FromStr for Property {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok(Self::new(key.trim().to_owned(), value.to_owned()))
            }
            _ => Err("expected key=value, e.g. socket.keepalive.enable=true".to_owned()),
        }
    }
}

/// A setting that cannot work, named as the user wrote it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// A SASL setting without a SASL protocol, or the reverse.
    #[error("{0}")]
    Inconsistent(String),
    /// A file setting names no readable file.
    #[error("{flag} ({env}): cannot read {path}: {reason}")]
    Unreadable {
        /// The flag.
        flag: &'static str,
        /// Its environment variable.
        env: &'static str,
        /// The path given.
        path: String,
        /// What the file system said.
        reason: String,
    },
    /// A pass-through property that a dedicated flag or the service sets.
    #[error("{origin} sets `{key}`, which {owner}; remove it there")]
    Managed {
        /// Where it came from (`--kafka-property` or the variable's name).
        origin: String,
        /// The property.
        key: String,
        /// Who sets it instead.
        owner: String,
    },
}

/// Why the cluster could not be reached with these settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The settings are wrong before any connection.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A connection was attempted and failed.
    #[error("{hint}")]
    Failed {
        /// Which settings to look at.
        hint: String,
        /// What failed.
        source: ConnectError,
    },
}

impl KafkaClientArgs {
    /// The librdkafka properties these settings stand for, with the
    /// pass-through ones from `env` (the process's environment, in a service).
    pub fn properties(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ClientProperties, SettingsError> {
        let protocol = self.kafka_security_protocol;
        let mut properties = ClientProperties::default();
        properties.set("security.protocol", protocol.property());

        let sasl_given = [
            self.kafka_sasl_mechanism.is_some(),
            self.kafka_sasl_username.is_some(),
            self.kafka_sasl_password.is_some(),
        ];
        if protocol.sasl() {
            let (Some(mechanism), Some(username), Some(password)) = (
                self.kafka_sasl_mechanism,
                &self.kafka_sasl_username,
                &self.kafka_sasl_password,
            ) else {
                return Err(SettingsError::Inconsistent(format!(
                    "--kafka-security-protocol {} needs --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password (KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)",
                    protocol.property().to_lowercase()
                )));
            };
            properties
                .set("sasl.mechanism", mechanism.property())
                .set("sasl.username", username)
                .set("sasl.password", password.expose());
        } else if sasl_given.contains(&true) {
            return Err(SettingsError::Inconsistent(
                "the SASL settings (KAFKA_SASL_*) need --kafka-security-protocol (KAFKA_SECURITY_PROTOCOL) sasl_plaintext or sasl_ssl".to_owned(),
            ));
        }

        let files = [
            (
                &self.kafka_ssl_ca_location,
                "ssl.ca.location",
                "--kafka-ssl-ca-location",
                "KAFKA_SSL_CA_LOCATION",
            ),
            (
                &self.kafka_ssl_certificate_location,
                "ssl.certificate.location",
                "--kafka-ssl-certificate-location",
                "KAFKA_SSL_CERTIFICATE_LOCATION",
            ),
            (
                &self.kafka_ssl_key_location,
                "ssl.key.location",
                "--kafka-ssl-key-location",
                "KAFKA_SSL_KEY_LOCATION",
            ),
        ];
        let tls_given =
            files.iter().any(|(path, ..)| path.is_some()) || self.kafka_ssl_key_password.is_some();
        if tls_given && !protocol.tls() {
            return Err(SettingsError::Inconsistent(
                "the TLS settings (KAFKA_SSL_*) need --kafka-security-protocol (KAFKA_SECURITY_PROTOCOL) ssl or sasl_ssl".to_owned(),
            ));
        }
        if self.kafka_ssl_certificate_location.is_some() != self.kafka_ssl_key_location.is_some() {
            return Err(SettingsError::Inconsistent(
                "--kafka-ssl-certificate-location and --kafka-ssl-key-location (KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION) go together".to_owned(),
            ));
        }
        for (path, key, flag, env) in files {
            let Some(path) = path else { continue };
            std::fs::File::open(path).map_err(|e| SettingsError::Unreadable {
                flag,
                env,
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            properties.set(key, path.display().to_string());
        }
        if let Some(password) = &self.kafka_ssl_key_password {
            properties.set("ssl.key.password", password.expose());
        }

        let flags = self
            .kafka_properties
            .iter()
            .map(|p| ("--kafka-property".to_owned(), p.clone()));
        let from_env = env.into_iter().filter_map(|(name, value)| {
            let key = name.strip_prefix(PROPERTY_ENV_PREFIX)?;
            let key = key.to_lowercase().replace('_', ".");
            Some((name, Property::new(key, value)))
        });
        // The environment first, so a flag overrides a variable.
        let mut passed: Vec<(String, Property)> = from_env.collect();
        passed.sort_by(|a, b| a.0.cmp(&b.0));
        passed.extend(flags);
        let flagged: Vec<String> = properties.iter().map(|(key, _)| key.to_owned()).collect();
        for (origin, property) in passed {
            let owner = if MANAGED.contains(&property.key.as_str()) {
                Some("the service sets itself".to_owned())
            } else if flagged.contains(&property.key)
                || property.key.starts_with("sasl.")
                    && !property.key.starts_with("sasl.oauthbearer")
                || property.key == "security.protocol"
            {
                Some("a --kafka-* flag sets".to_owned())
            } else {
                None
            };
            if let Some(owner) = owner {
                return Err(SettingsError::Managed {
                    origin,
                    key: property.key,
                    owner,
                });
            }
            properties.set(property.key, property.value.value);
        }
        Ok(properties)
    }

    /// Which settings a failed connection points at.
    fn hint(&self, failure: &ConnectError, bootstrap: &str) -> String {
        match failure {
            ConnectError::Authentication(_) => format!(
                "Kafka refused the credentials of --kafka-sasl-username {:?} and --kafka-sasl-password (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD) with --kafka-sasl-mechanism {}",
                self.kafka_sasl_username.as_deref().unwrap_or_default(),
                self.kafka_sasl_mechanism
                    .map_or("?", SaslMechanism::property),
            ),
            ConnectError::Tls(_) => format!(
                "TLS with the brokers at {bootstrap} failed: check --kafka-ssl-ca-location (KAFKA_SSL_CA_LOCATION); where the brokers ask for a client certificate, --kafka-ssl-certificate-location and --kafka-ssl-key-location (KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION); and that --kafka-security-protocol {} is what their listener speaks",
                self.kafka_security_protocol.property().to_lowercase()
            ),
            ConnectError::Unreachable { .. } => format!(
                "no Kafka broker answered at --kafka-bootstrap-servers {bootstrap} (KAFKA_BOOTSTRAP_SERVERS) with --kafka-security-protocol {}",
                self.kafka_security_protocol.property().to_lowercase()
            ),
            ConnectError::Settings(_) => {
                "librdkafka refused the client settings (--kafka-property, KAFKA_PROPERTY_*)"
                    .to_owned()
            }
        }
    }

    /// Builds the client settings and checks them against the cluster once:
    /// a wrong password, CA or address is an error that names the setting.
    pub async fn connect(
        &self,
        bootstrap_servers: &str,
        client_id: &str,
    ) -> Result<KafkaConfig, ConnectionError> {
        let mut kafka = KafkaConfig::new(bootstrap_servers, client_id);
        kafka.properties = self.properties(std::env::vars())?;
        match check_connection(&kafka, CONNECT_TIMEOUT).await {
            Ok(brokers) => {
                tracing::debug!(brokers, "connected to the Kafka cluster");
                Ok(kafka)
            }
            Err(source) => Err(ConnectionError::Failed {
                hint: self.hint(&source, bootstrap_servers),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{KafkaClientArgs, SettingsError};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaClientArgs,
    }

    fn parse(args: &[&str]) -> KafkaClientArgs {
        let mut argv = vec!["svc"];
        argv.extend(args);
        Cli::try_parse_from(argv).expect("parses").kafka
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sasl_over_tls_becomes_librdkafka_properties() {
        let ca = std::env::current_exe().expect("a readable file");
        let ca = ca.to_str().expect("utf-8 path");
        let args = parse(&[
            "--kafka-security-protocol=sasl_ssl",
            "--kafka-sasl-mechanism=SCRAM-SHA-512",
            "--kafka-sasl-username=orders",
            "--kafka-sasl-password=hunter2",
            "--kafka-ssl-ca-location",
            ca,
            "--kafka-property=socket.keepalive.enable=true",
        ]);
        let properties = args
            .properties(env(&[
                ("KAFKA_PROPERTY_MESSAGE_MAX_BYTES", "2000000"),
                ("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE", "false"),
                ("PATH", "/bin"),
            ]))
            .expect("valid");
        let expected = [
            ("message.max.bytes", "2000000"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.password", "hunter2"),
            ("sasl.username", "orders"),
            ("security.protocol", "SASL_SSL"),
            // The flag wins over the variable.
            ("socket.keepalive.enable", "true"),
            ("ssl.ca.location", ca),
        ];
        assert_eq!(properties.iter().collect::<Vec<_>>(), expected);
        let shown = format!("{args:?} {properties:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn help_never_shows_a_secret_from_the_environment() {
        use clap::CommandFactory;
        let command = Cli::command();
        let secrets: Vec<_> = command
            .get_arguments()
            .filter(|a| a.get_id().as_str().contains("password"))
            .collect();
        assert_eq!(secrets.len(), 2, "the SASL and the key password");
        assert!(secrets.iter().all(|a| a.is_hide_env_values_set()));
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        let refused = |args: &[&str], env_pairs: &[(&str, &str)]| {
            parse(args)
                .properties(env(env_pairs))
                .expect_err("refused")
                .to_string()
        };
        let missing = refused(&["--kafka-security-protocol=sasl_ssl"], &[]);
        assert!(missing.contains("--kafka-sasl-password"), "{missing}");
        let stray = refused(&["--kafka-sasl-username=orders"], &[]);
        assert!(stray.contains("KAFKA_SECURITY_PROTOCOL"), "{stray}");
        let no_tls = refused(&["--kafka-ssl-ca-location=/etc/hostname"], &[]);
        assert!(no_tls.contains("ssl or sasl_ssl"), "{no_tls}");
        let unreadable = refused(
            &[
                "--kafka-security-protocol=ssl",
                "--kafka-ssl-ca-location=/no/such/ca.pem",
            ],
            &[],
        );
        assert!(
            unreadable.starts_with(
                "--kafka-ssl-ca-location (KAFKA_SSL_CA_LOCATION): cannot read /no/such/ca.pem"
            ),
            "{unreadable}"
        );
        let managed = refused(
            &[],
            &[("KAFKA_PROPERTY_ISOLATION_LEVEL", "read_uncommitted")],
        );
        assert!(
            managed.contains("KAFKA_PROPERTY_ISOLATION_LEVEL sets `isolation.level`"),
            "{managed}"
        );
        let flagged = refused(&["--kafka-property=sasl.password=x"], &[]);
        assert!(flagged.contains("a --kafka-* flag sets"), "{flagged}");
        let malformed = Cli::try_parse_from(["svc", "--kafka-property=novalue"]);
        assert!(malformed.is_err());
        assert_eq!(
            parse(&[]).properties(env(&[])).map(|p| p.iter().count()),
            Ok::<_, SettingsError>(1),
            "plaintext by default"
        );
    }
}
