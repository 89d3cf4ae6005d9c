//! SQL: whether a string looks like SQL, its statements in every dialect, and what they do.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{visit_relations, visit_statements, ObjectType, Statement};
use sqlparser::dialect::{Dialect, GenericDialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect};

use super::{normal_name, SqlFacts};

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
pub(super) fn sql_key(key: &str) -> bool {
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
pub(super) fn looks_like_sql(s: &str, under_sql_key: bool) -> bool {
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
pub(super) fn sql_facts(s: &str, under_sql_key: bool, facts: &mut SqlFacts, roles: &mut BTreeSet<String>) {
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
