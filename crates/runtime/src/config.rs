//! Configuration in layers: the type's serde defaults, then an optional TOML
//! file, then `CHANNELSHIFT_*` environment variables (`__` separates levels:
//! `CHANNELSHIFT_CLICKHOUSE__URL` sets `clickhouse.url`).

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use std::path::Path;

pub const ENV_PREFIX: &str = "CHANNELSHIFT_";

/// Loads `T` from `file` (if given) overlaid by the environment.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> Result<T> {
    let mut figment = Figment::new();
    if let Some(file) = file {
        if !file.exists() {
            anyhow::bail!("configuration file {} does not exist", file.display());
        }
        figment = figment.merge(Toml::file(file));
    }
    figment
        .merge(Env::prefixed(ENV_PREFIX).split("__"))
        .extract()
        .context("reading configuration (file, then CHANNELSHIFT_* variables)")
}
