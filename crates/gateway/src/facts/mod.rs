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

mod data;
mod hosts;
mod names;
mod readings;
mod sql;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use countersign_protocol::StepUpDraft;
use serde::{Deserialize, Serialize};

use data::READ_VOCABULARY;
pub use data::{
    DataError, PolicyData, SystemEntry, ToolEntry, ToolKind, DEFAULT_POLICY_DATA, REQUIRED_VOCABULARY,
};
pub use hosts::{hosts_in, parse_host};
pub use names::{name_words, normal_name};
use names::{named_in, names_production, plain_name, resembled, vocabulary_parts, workload_facts};
use readings::{collect_sql_keyed, collect_strings, keyed_facts, other_readings};
use sql::sql_facts;

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
