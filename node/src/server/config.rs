//! Node configuration: a TOML file, overridden by `RUSTORIUM_*` environment
//! variables, overridden by command-line flags (flags win). Every field of
//! the seed's `StorageConfig` is settable under `[storage]`.

use crate::store::StorageConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address for gRPC, gRPC-web, /metrics and the dashboard.
    pub listen: SocketAddr,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub tls: Option<TlsConfig>,
    pub limits: LimitsConfig,
    /// The dashboard's built files; served at `/` when the directory exists.
    pub dashboard_dir: PathBuf,
    pub log_format: LogFormat,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When set, writes need `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Reads need the token too.
    pub protect_reads: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request or response message.
    pub max_message_bytes: usize,
    /// Requests served at once; more wait.
    pub max_concurrent_requests: usize,
    /// Deadline of one unary request; streams are not cut.
    pub request_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 << 20,
            max_concurrent_requests: 1024,
            request_timeout_ms: 30_000,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            limits: LimitsConfig::default(),
            dashboard_dir: PathBuf::from("web-demo/dist"),
            log_format: LogFormat::Text,
        }
    }
}

impl NodeConfig {
    /// Parses a TOML file; unknown keys are errors that name the key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_matches_the_defaults() {
        let sample = NodeConfig::from_toml(include_str!("../../../rustorium.example.toml")).expect("sample parses");
        let defaults = NodeConfig::default();
        assert_eq!(toml::to_string(&sample).unwrap(), toml::to_string(&defaults).unwrap());
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = NodeConfig::from_toml("[storage]\nsync_mod = \"full\"\n").unwrap_err();
        assert!(error.contains("sync_mod"), "{error}");
        let error = NodeConfig::from_toml("[storage]\nsync_mode = \"sometimes\"\n").unwrap_err();
        assert!(error.contains("sometimes"), "{error}");
    }
}
