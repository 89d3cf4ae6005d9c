//! The organisation's data file: systems, tools, domains, hosts and vocabularies, checked on load.

use std::collections::{BTreeMap, BTreeSet};

use countersign_protocol::DataClass;
use serde::{Deserialize, Serialize};

use super::{normal_name, parse_host, HostZone};

/// The organisation data file shipped with the gateway (`--policy-data` replaces it).
pub const DEFAULT_POLICY_DATA: &str = include_str!("../../policy/data.json");

/// Vocabulary lists the default policy reads; a data file must define each of them.
pub const REQUIRED_VOCABULARY: &[&str] = &[
    "read",
    "write",
    "money",
    "payment",
    "refund",
    "secret",
    "schema",
    "schema_verb",
    "schema_object",
    "iam",
    "deploy",
    "export",
    "network",
    "mail",
    "mail_verb",
];

/// The vocabulary list that is never matched inside longer tokens (see the module documentation).
pub(super) const READ_VOCABULARY: &str = "read";

/// The organisation's data, beside the policy: loaded into the engine as `data` and read by the facts step.
///
/// Every name (system, tool, host, domain, word) must already be in normal form (NFKC, trimmed,
/// lower case), since the facts and the policy look them up in that form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyData {
    /// SPIFFE trust domains whose workloads may submit requests at all.
    pub trust_domains: BTreeSet<String>,
    /// DNS domains that belong to the organisation: a host equal to one of them or under it is internal.
    pub internal_domains: BTreeSet<String>,
    /// Outside hosts under contract (processors): exact host names.
    pub approved_hosts: BTreeSet<String>,
    /// The system catalogue: what the organisation knows about its systems, whatever an agent says.
    pub systems: BTreeMap<String, SystemEntry>,
    /// The tool catalogue: the tools agents may use without a human seeing the name first.
    pub tools: BTreeMap<String, ToolEntry>,
    /// Named word lists for tool and operation names (see [`REQUIRED_VOCABULARY`]).
    pub vocabulary: BTreeMap<String, BTreeSet<String>>,
}

/// A catalogued system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEntry {
    /// The environment the system runs in (`production`, `staging`, `sandbox`, …); an agent cannot change it.
    pub environment: String,
    /// The class of the data the system holds; the effective class is never lower.
    pub class: DataClass,
    /// What the system is, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A declared tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    /// What the tool does; kinds other than `read` and `write` add to what its name says, never remove.
    pub kind: ToolKind,
    /// The catalogued systems the tool belongs to; when given, using it against any other system
    /// is a step-up (`tool-outside-its-systems` in the default policy). Empty: any system.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub systems: BTreeSet<String>,
    /// What the tool is, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a declared tool does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// Reads only.
    Read,
    /// Changes data.
    Write,
    /// Moves money out.
    Payment,
    /// Returns money.
    Refund,
    /// Reads or changes secret material.
    Secret,
    /// Changes database schemas.
    Schema,
    /// Changes roles or permissions.
    Iam,
    /// Deploys software.
    Deploy,
    /// Sends data elsewhere.
    Export,
    /// Sends mail.
    Mail,
}

/// The data file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Not I-JSON or not the expected shape.
    #[error("the policy data file is not valid: {0}")]
    Shape(String),
    /// A value is well-formed but unusable.
    #[error("the policy data file is not valid: {0}")]
    Invalid(String),
}

impl PolicyData {
    /// Parse and check a data file (I-JSON, the documented shape, names in normal form).
    pub fn from_json(text: &str) -> Result<Self, DataError> {
        let value = countersign_protocol::ijson::parse(text.as_bytes())
            .map_err(|e| DataError::Shape(format!("not I-JSON: {e}")))?;
        let data: PolicyData = serde_json::from_value(value).map_err(|e| DataError::Shape(e.to_string()))?;
        data.check()?;
        Ok(data)
    }

    /// The data file shipped with the gateway.
    pub fn default_data() -> Self {
        Self::from_json(DEFAULT_POLICY_DATA).expect("the default policy data is tested to load")
    }

    fn check(&self) -> Result<(), DataError> {
        let names = self
            .trust_domains
            .iter()
            .chain(&self.internal_domains)
            .chain(&self.approved_hosts)
            .chain(self.systems.keys())
            .chain(self.tools.keys())
            .chain(self.vocabulary.values().flatten());
        for name in names {
            if name.is_empty() || normal_name(name) != *name {
                return Err(DataError::Invalid(format!(
                    "{name:?} is not in normal form (NFKC, trimmed, lower case, not empty)"
                )));
            }
        }
        for host in self.internal_domains.iter().chain(&self.approved_hosts).chain(&self.trust_domains) {
            if parse_host(host).as_deref() != Some(host.as_str()) {
                return Err(DataError::Invalid(format!("{host:?} is not a host name in canonical form")));
            }
        }
        for (name, system) in &self.systems {
            if system.environment.is_empty() || normal_name(&system.environment) != system.environment {
                return Err(DataError::Invalid(format!(
                    "system {name:?}: environment {:?} is not in normal form",
                    system.environment
                )));
            }
        }
        for (name, tool) in &self.tools {
            if let Some(s) = tool.systems.iter().find(|s| !self.systems.contains_key(*s)) {
                return Err(DataError::Invalid(format!(
                    "tool {name:?}: system {s:?} is not in the catalogue"
                )));
            }
        }
        for list in REQUIRED_VOCABULARY {
            if self.vocabulary.get(*list).is_none_or(BTreeSet::is_empty) {
                return Err(DataError::Invalid(format!("vocabulary.{list} is missing or empty")));
            }
        }
        Ok(())
    }

    pub(super) fn host_zone(&self, host: &str) -> HostZone {
        let internal = self.internal_domains.iter().any(|d| {
            host == d
                || (host.len() > d.len()
                    && host.ends_with(d.as_str())
                    && host[..host.len() - d.len()].ends_with('.'))
        });
        if internal {
            HostZone::Internal
        } else if self.approved_hosts.contains(host) {
            HostZone::Approved
        } else {
            HostZone::External
        }
    }
}
