//! The proxy's TOML configuration: where the gateway is, who the agent is, what it works on, and each tool's risk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use countersign_protocol::{DataClass, Principal};
use serde::Deserialize;
use url::Url;

/// Why a configuration cannot be used. Each names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("the config {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of bounds or inconsistent.
    #[error("the config is not valid: {0}")]
    Invalid(String),
    /// A secret (token) could not be loaded.
    #[error("{0}")]
    Secret(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The enforcement point.
    pub gateway: GatewayConfig,
    /// Who is acting, and for whom.
    pub agent: AgentConfig,
    /// The system the proxied server acts on (one proxy fronts one server).
    pub target: TargetConfig,
    /// Why the agent acts.
    pub purpose: PurposeConfig,
    /// How long to hold a call, and how often to report progress.
    #[serde(default)]
    pub approval: ApprovalConfig,
    /// Risk of tools the config does not name: the strictest by default.
    #[serde(default = "ToolConfig::strictest")]
    pub defaults: ToolConfig,
    /// Risk per tool, by its exact MCP name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolConfig>,
    /// The coding-agent hook.
    #[serde(default)]
    pub hook: HookConfig,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Base URL of the enforcement point, `http(s)://host:port`.
    pub url: String,
    /// File holding the agent token (`csa_…`), relative to the config file.
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the agent token.
    pub token_env: Option<String>,
    /// File holding the target-system token (`cst_…`) the proxy redeems grants with.
    pub system_token_file: Option<PathBuf>,
    /// Environment variable holding the target-system token.
    pub system_token_env: Option<String>,
    /// Timeout of each call to the gateway, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// `[agent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Workload identity, `spiffe://…`; must match the agent token's.
    pub workload: String,
    /// Display name.
    pub display: String,
    /// Who the agent acts for; default: the OS user.
    pub on_behalf_of: Option<Vec<Principal>>,
}

/// `[target]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// System name.
    pub system: String,
    /// Environment.
    pub environment: String,
}

/// `[purpose]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeConfig {
    /// Purpose code.
    pub code: String,
    /// Statement of intent.
    pub statement: String,
}

/// `[approval]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Requested lifetime of a step-up, in seconds (the gateway caps it).
    pub ttl_s: Option<u64>,
    /// How often a held call reports progress, in milliseconds.
    #[serde(default = "default_progress_ms")]
    pub progress_interval_ms: u64,
}

fn default_progress_ms() -> u64 {
    1_000
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig { ttl_s: None, progress_interval_ms: default_progress_ms() }
    }
}

/// `[tools.NAME]` and `[defaults]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// Data class (default: restricted).
    #[serde(default = "strictest_class")]
    pub class: DataClass,
    /// Data categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Whether the tool's effect can be undone (default: no).
    #[serde(default)]
    pub reversible: bool,
    /// Operation name shown to the approver.
    pub operation: Option<String>,
}

fn strictest_class() -> DataClass {
    DataClass::Restricted
}

impl ToolConfig {
    /// Restricted data, irreversible: what a tool nobody described is taken to be.
    pub fn strictest() -> Self {
        ToolConfig {
            class: DataClass::Restricted,
            categories: Vec::new(),
            reversible: false,
            operation: None,
        }
    }
}

/// `[hook]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Longest the hook waits for a human before it blocks the call, in seconds; keep it below the hook
    /// timeout in the coding agent's settings.
    #[serde(default = "default_hook_wait")]
    pub max_wait_s: u64,
}

fn default_hook_wait() -> u64 {
    540
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig { max_wait_s: default_hook_wait() }
    }
}

/// A configuration with its secrets loaded and paths resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's content.
    pub config: Config,
    /// The gateway's base URL, parsed.
    pub gateway: Url,
    /// The agent token.
    pub agent_token: String,
    /// The target-system token.
    pub system_token: String,
    /// Who the agent acts for.
    pub on_behalf_of: Vec<Principal>,
}

impl Config {
    /// Parse a configuration's text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Check every value that does not need the environment.
    pub fn validate(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(&self.gateway.url)
            .map_err(|e| ConfigError::Invalid(format!("gateway.url {:?}: {e}", self.gateway.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::Invalid(format!(
                "gateway.url {:?} must be http(s)://host[:port]",
                self.gateway.url
            )));
        }
        // Plain http only on this machine: elsewhere the tokens would travel in clear, and whoever is on the
        // path could answer the redeem with arguments of their choosing (the Python client's rule too).
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "http" && !loopback {
            return Err(ConfigError::Invalid(format!(
                "gateway.url {:?}: plain http is only allowed to a loopback gateway; use https",
                self.gateway.url
            )));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(ConfigError::Invalid("gateway.url must not carry credentials or a query".into()));
        }
        if !self.agent.workload.starts_with("spiffe://") {
            return Err(ConfigError::Invalid(format!(
                "agent.workload {:?} must be a spiffe:// id",
                self.agent.workload
            )));
        }
        for (key, value) in [
            ("agent.display", &self.agent.display),
            ("target.system", &self.target.system),
            ("target.environment", &self.target.environment),
            ("purpose.code", &self.purpose.code),
            ("purpose.statement", &self.purpose.statement),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Invalid(format!("{key} must not be empty")));
            }
        }
        if self.agent.on_behalf_of.as_ref().is_some_and(|p| p.iter().any(|p| p.sub.trim().is_empty())) {
            return Err(ConfigError::Invalid("agent.on_behalf_of: every principal needs a sub".into()));
        }
        if self.gateway.timeout_ms == 0 || self.approval.progress_interval_ms < 100 {
            return Err(ConfigError::Invalid(
                "gateway.timeout_ms must be > 0 and approval.progress_interval_ms ≥ 100".into(),
            ));
        }
        if self.hook.max_wait_s == 0 {
            return Err(ConfigError::Invalid("hook.max_wait_s must be > 0".into()));
        }
        Ok(url)
    }

    /// The risk of a tool by its exact name; a tool the config does not name gets `[defaults]`.
    pub fn tool(&self, name: &str) -> &ToolConfig {
        self.tools.get(name).unwrap_or(&self.defaults)
    }
}

/// Read, validate and complete a configuration: tokens from files or the environment, the OS user as the
/// default principal. Relative paths resolve against the config file's folder.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let config = Config::parse(&text, path)?;
    let gateway = config.validate()?;
    let base = path.parent().unwrap_or(Path::new("."));
    let g = &config.gateway;
    let agent_token =
        secret("agent token", "csa_", base, g.token_file.as_deref(), g.token_env.as_deref(), env)?;
    let system_token = secret(
        "target-system token",
        "cst_",
        base,
        g.system_token_file.as_deref(),
        g.system_token_env.as_deref(),
        env,
    )?;
    let on_behalf_of = match &config.agent.on_behalf_of {
        Some(p) => p.clone(),
        None => {
            let user =
                env("USER").or_else(|| env("LOGNAME")).filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                    ConfigError::Invalid(
                        "agent.on_behalf_of is not set and the OS user is unknown ($USER, $LOGNAME)".into(),
                    )
                })?;
            vec![Principal { sub: user.clone(), display: user }]
        }
    };
    Ok(Loaded { config, gateway, agent_token, system_token, on_behalf_of })
}

/// A token from exactly one of a file and an environment variable. A file others can read is refused.
fn secret(
    what: &str,
    prefix: &str,
    base: &Path,
    file: Option<&Path>,
    var: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let value = match (file, var) {
        (Some(f), None) => {
            let f = base.join(f);
            check_private(&f)
                .map_err(|e| ConfigError::Secret(format!("the {what} file {}: {e}", f.display())))?;
            std::fs::read_to_string(&f).map_err(|e| {
                ConfigError::Secret(format!("cannot read the {what} file {}: {e}", f.display()))
            })?
        }
        (None, Some(v)) => {
            env(v).ok_or_else(|| ConfigError::Secret(format!("the {what} variable ${v} is not set")))?
        }
        _ => {
            return Err(ConfigError::Invalid(format!(
                "the {what} must come from exactly one of a file and an environment variable"
            )))
        }
    };
    let value = value.trim().to_owned();
    if !value.starts_with(prefix)
        || value.len() <= prefix.len()
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ConfigError::Secret(format!(
            "the {what} does not look like one (it starts with {prefix})"
        )));
    }
    Ok(value)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!("readable by others (mode {:o}); chmod 600 it", mode & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> Result<Url, ConfigError> {
        let text = format!(
            "[gateway]\nurl = \"{url}\"\n[agent]\nworkload = \"spiffe://acme.example/a\"\ndisplay = \"A\"\n\
             [target]\nsystem = \"crm\"\nenvironment = \"production\"\n[purpose]\ncode = \"c\"\nstatement = \"s\"\n"
        );
        Config::parse(&text, Path::new("c.toml")).expect("parses").validate()
    }

    #[test]
    fn plain_http_reaches_only_a_loopback_gateway() {
        // Over plain http to another host the tokens travel in clear, and whoever is on the path answers the
        // redeem: the arguments the proxy forwards as "approved" would be theirs.
        for url in ["http://gateway.acme.example:8787", "http://10.0.0.5:8787", "http://[fe80::1]:8787"] {
            let e = with_url(url).expect_err(url).to_string();
            assert!(e.contains("https"), "{url}: {e}");
        }
        for url in [
            "http://127.0.0.1:8787",
            "http://localhost:8787",
            "http://[::1]:8787",
            "https://gateway.acme.example",
        ] {
            assert!(with_url(url).is_ok(), "{url}");
        }
    }
}
