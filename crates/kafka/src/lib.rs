//! How every Channelshift client reaches Kafka: the security protocol (TLS,
//! SASL or both), the SASL mechanism and credentials, the CA and client
//! certificate, and any further librdkafka properties. Ingest, reconcile,
//! the simulator and the benches all apply the same [`KafkaSecurity`] to
//! each client they create, so a council's broker settings are given once.
//!
//! The default is plaintext without authentication, for the local broker on
//! loopback. Anything else is checked before a client is created: a missing
//! credential or an unreadable file is a configuration error that names the
//! setting, not a connection that fails later with a librdkafka message.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// librdkafka's `security.protocol`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    #[serde(rename = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    #[serde(rename = "SSL", alias = "ssl")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// librdkafka's `sasl.mechanism`: the ones with a user name and password.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Mechanism {
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The `[kafka.security]` section of a service's configuration. Secrets
/// (`password`, `key_password`) are best given as environment variables,
/// e.g. `CHANNELSHIFT_KAFKA__SECURITY__PASSWORD`; they never reach a log.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSecurity {
    /// `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: Protocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with SASL.
    pub sasl_mechanism: Option<Mechanism>,
    /// The SASL user name; required with SASL.
    pub username: Option<String>,
    /// The SASL password; required with SASL.
    pub password: Option<SecretString>,
    /// PEM file of the CA(s) that signed the brokers' certificates; without
    /// it the system's CAs are trusted.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that authenticate clients by TLS
    /// (mutual TLS); given together with `key_file`.
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of `certificate_file`.
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted `key_file`.
    pub key_password: Option<SecretString>,
    /// Whether the broker's certificate must name the host connected to
    /// (librdkafka's `ssl.endpoint.identification.algorithm = https`).
    /// On by default; turn it off only for brokers reached by an address
    /// their certificates do not carry.
    pub verify_hostname: Option<bool>,
    /// Further librdkafka client properties, set as given (e.g.
    /// `"client.rack" = "eu-west-2a"`). They may not set what the fields
    /// above own.
    pub properties: BTreeMap<String, String>,
}

/// A `[kafka.security]` section that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecurityError {
    #[error("kafka.security.{0} is required with protocol {1}")]
    Missing(&'static str, &'static str),
    #[error("kafka.security.{0} is only used with protocol SASL_PLAINTEXT or SASL_SSL, not {1}")]
    NeedsSasl(&'static str, &'static str),
    #[error("kafka.security.{0} is only used with protocol SSL or SASL_SSL, not {1}")]
    NeedsTls(&'static str, &'static str),
    #[error("kafka.security.certificate_file and key_file are given together or not at all")]
    CertificateWithoutKey,
    #[error("kafka.security.{setting} = {path}: {reason}")]
    Unreadable {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "kafka.security.properties sets {0}, which kafka.security's own settings own; use those"
    )]
    Owned(String),
}

/// librdkafka properties the typed settings own.
const OWNED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
];

impl KafkaSecurity {
    /// Checks that the settings can work together and that every file named
    /// can be read.
    pub fn check(&self) -> Result<(), SecurityError> {
        let protocol = self.protocol.as_str();
        if self.protocol.uses_sasl() {
            if self.sasl_mechanism.is_none() {
                return Err(SecurityError::Missing("sasl_mechanism", protocol));
            }
            if self.username.as_deref().is_none_or(str::is_empty) {
                return Err(SecurityError::Missing("username", protocol));
            }
            if self
                .password
                .as_ref()
                .is_none_or(|password| password.expose_secret().is_empty())
            {
                return Err(SecurityError::Missing("password", protocol));
            }
        } else {
            for (setting, given) in [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("username", self.username.is_some()),
                ("password", self.password.is_some()),
            ] {
                if given {
                    return Err(SecurityError::NeedsSasl(setting, protocol));
                }
            }
        }
        let files = [
            ("ca_file", &self.ca_file),
            ("certificate_file", &self.certificate_file),
            ("key_file", &self.key_file),
        ];
        if !self.protocol.uses_tls() {
            for (setting, file) in files {
                if file.is_some() {
                    return Err(SecurityError::NeedsTls(setting, protocol));
                }
            }
            if self.key_password.is_some() {
                return Err(SecurityError::NeedsTls("key_password", protocol));
            }
            if self.verify_hostname.is_some() {
                return Err(SecurityError::NeedsTls("verify_hostname", protocol));
            }
        }
        if self.certificate_file.is_some() != self.key_file.is_some() {
            return Err(SecurityError::CertificateWithoutKey);
        }
        for (setting, file) in files {
            if let Some(path) = file {
                readable(setting, path)?;
            }
        }
        if let Some(key) = self
            .properties
            .keys()
            .find(|key| OWNED.contains(&key.as_str()))
        {
            return Err(SecurityError::Owned(key.clone()));
        }
        Ok(())
    }

    /// Sets these settings on `config` (after [`check`](Self::check)ing
    /// them). Call it on every client: consumer, producer and admin alike.
    pub fn apply(&self, config: &mut ClientConfig) -> Result<(), SecurityError> {
        self.check()?;
        config.set("security.protocol", self.protocol.as_str());
        if self.protocol.uses_sasl() {
            if let (Some(mechanism), Some(username), Some(password)) =
                (self.sasl_mechanism, &self.username, &self.password)
            {
                config
                    .set("sasl.mechanism", mechanism.as_str())
                    .set("sasl.username", username)
                    .set("sasl.password", password.expose_secret());
            }
        }
        if self.protocol.uses_tls() {
            let path = |file: &Path| file.to_string_lossy().into_owned();
            if let Some(file) = &self.ca_file {
                config.set("ssl.ca.location", path(file));
            }
            if let (Some(certificate), Some(key)) = (&self.certificate_file, &self.key_file) {
                config
                    .set("ssl.certificate.location", path(certificate))
                    .set("ssl.key.location", path(key));
            }
            if let Some(password) = &self.key_password {
                config.set("ssl.key.password", password.expose_secret());
            }
            let verify = self.verify_hostname.unwrap_or(true);
            config.set(
                "ssl.endpoint.identification.algorithm",
                if verify { "https" } else { "none" },
            );
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        Ok(())
    }

    /// A client configuration for `brokers` with these settings applied.
    pub fn client_config(&self, brokers: &str) -> Result<ClientConfig, SecurityError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        self.apply(&mut config)?;
        Ok(config)
    }
}

impl KafkaSecurity {
    /// Why `brokers` cannot be used with these settings, in librdkafka's
    /// words (a refused login, a failed TLS handshake, an unknown host), or
    /// `None` when a metadata request succeeds. Blocks for up to about 10 s:
    /// call it off the async runtime, after an operation failed, so that the
    /// error an operator reads says why.
    pub fn diagnose(&self, brokers: &str) -> Option<String> {
        let errors = Errors::default();
        let consumer: BaseConsumer<Errors> = match self.client_config(brokers) {
            Ok(mut config) => match config
                .set("group.id", "channelshift-connection-check")
                .create_with_context(errors.clone())
            {
                Ok(consumer) => consumer,
                Err(error) => return Some(error.to_string()),
            },
            Err(error) => return Some(error.to_string()),
        };
        let result = consumer.fetch_metadata(None, std::time::Duration::from_secs(10));
        // The error callback is served by a poll.
        let _ = consumer.poll(std::time::Duration::from_millis(200));
        let reported = errors.0.lock().map(|e| e.clone()).unwrap_or_default();
        match result {
            Ok(_) if reported.is_empty() => None,
            Ok(_) => Some(reported.join("; ")),
            Err(error) if reported.is_empty() => Some(error.to_string()),
            Err(_) => Some(reported.join("; ")),
        }
    }
}

/// Collects what librdkafka reports through the error callback.
#[derive(Clone, Default)]
struct Errors(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl rdkafka::ClientContext for Errors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if let Ok(mut errors) = self.0.lock() {
            let text = format!("{error}: {reason}");
            if !errors.contains(&text) {
                errors.push(text);
            }
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

fn readable(setting: &'static str, path: &Path) -> Result<(), SecurityError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|error| SecurityError::Unreadable {
            setting,
            path: path.display().to_string(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> KafkaSecurity {
        toml::from_str(text).expect("test settings parse")
    }

    #[test]
    fn the_default_is_plaintext_and_sets_nothing_else() {
        let config = KafkaSecurity::default()
            .client_config("127.0.0.1:9092")
            .expect("default settings are valid");
        assert_eq!(config.get("security.protocol"), Some("PLAINTEXT"));
        assert_eq!(config.get("sasl.username"), None);
        assert_eq!(config.get("ssl.ca.location"), None);
    }

    #[test]
    fn sasl_ssl_sets_the_mechanism_credentials_ca_and_hostname_check() {
        let ca = std::env::temp_dir().join("channelshift-kafka-test-ca.pem");
        std::fs::write(&ca, "test").expect("temp file is writable");
        let security = parse(&format!(
            "protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nusername = \"ingest\"\n\
             password = \"s3cret\"\nca_file = {:?}\n[properties]\n\"client.rack\" = \"a\"\n",
            ca.display().to_string()
        ));
        let config = security
            .client_config("b:9093")
            .expect("settings are valid");
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("ingest"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(
            config.get("ssl.ca.location"),
            Some(ca.to_string_lossy().as_ref())
        );
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        assert_eq!(config.get("client.rack"), Some("a"));
        assert!(!format!("{security:?}").contains("s3cret"));
    }

    #[test]
    fn settings_that_cannot_work_are_refused_naming_the_setting() {
        let cases = [
            (
                "protocol = \"SASL_SSL\"\nusername = \"u\"\npassword = \"p\"",
                SecurityError::Missing("sasl_mechanism", "SASL_SSL"),
            ),
            (
                "protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nusername = \"u\"",
                SecurityError::Missing("password", "SASL_PLAINTEXT"),
            ),
            (
                "username = \"u\"",
                SecurityError::NeedsSasl("username", "PLAINTEXT"),
            ),
            (
                "protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nusername = \"u\"\n\
                 password = \"p\"\nca_file = \"/x\"",
                SecurityError::NeedsTls("ca_file", "SASL_PLAINTEXT"),
            ),
            (
                "protocol = \"SSL\"\nkey_file = \"/x\"",
                SecurityError::CertificateWithoutKey,
            ),
            (
                "[properties]\n\"sasl.password\" = \"p\"",
                SecurityError::Owned("sasl.password".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).check(), Err(expected), "{text}");
        }
        let missing = parse("protocol = \"SSL\"\nca_file = \"/no/such/ca.pem\"").check();
        assert!(
            matches!(
                &missing,
                Err(SecurityError::Unreadable {
                    setting: "ca_file",
                    ..
                })
            ),
            "{missing:?}"
        );
    }

    #[test]
    fn an_unknown_protocol_or_setting_does_not_parse() {
        assert!(toml::from_str::<KafkaSecurity>("protocol = \"TLS\"").is_err());
        assert!(toml::from_str::<KafkaSecurity>("pasword = \"x\"").is_err());
    }
}
