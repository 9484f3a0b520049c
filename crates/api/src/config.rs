//! API configuration: where to listen, the read-only ClickHouse user, the
//! accepted bearer tokens (as SHA-256 hashes, never the tokens) and KPI settings.

use channelshift_kpi::take_up::TakeUpDefinition;
use channelshift_store::ClickHouseConfig;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Debug, Deserialize)]
pub struct ApiConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Must be a read-only user (ClickHouse profile `readonly = 2`).
    pub clickhouse: ClickHouseConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub kpi: KpiSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuthConfig {
    /// Lower-case hex SHA-256 of each accepted token: `printf %s "$TOKEN" | sha256sum`.
    pub token_sha256: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct KpiSettings {
    /// `current` (assisted digital counts as digital) or `gds_2014`.
    #[serde(default = "default_take_up_definition")]
    pub take_up_definition: String,
    /// Counts below this, and rates over denominators below it, are suppressed.
    #[serde(default = "default_suppression_threshold")]
    pub suppression_threshold: u64,
}

impl Default for KpiSettings {
    fn default() -> Self {
        Self {
            take_up_definition: default_take_up_definition(),
            suppression_threshold: default_suppression_threshold(),
        }
    }
}

impl KpiSettings {
    pub fn take_up_definition(&self) -> anyhow::Result<TakeUpDefinition> {
        self.take_up_definition
            .parse()
            .map_err(|error| anyhow::anyhow!("kpi.take_up_definition: {error}"))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_take_up_definition() -> String {
    "current".into()
}
fn default_suppression_threshold() -> u64 {
    channelshift_kpi::suppression::DEFAULT_THRESHOLD
}
