//! Tests of the history: the chain, the filters, checkpoints and the anchor, and the kinds' stored text.

use serde_json::json;
use sqlx::SqlitePool;

use super::anchor::{checkpoint_message, SEARCH_BODY};
use super::query::fts_query;
use super::*;
use crate::profile::hex;
use crate::{Console, ConsoleError};

async fn db() -> (tempfile::TempDir, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::profile::open_db(&dir.path().join("h.db")).await.unwrap();
    (dir, db)
}

/// A `request received` detail of this tier, class and workload, acting for `ann@x`.
fn received(tier: countersign_protocol::Tier, who: &str) -> HistoryDetail {
    HistoryDetail::RequestReceived(Received {
        jwt: "j".into(),
        digest: "d".into(),
        workload: who.into(),
        display: "Agent".into(),
        on_behalf_of: vec!["ann@x".into()],
        purpose: "p".into(),
        statement: "s".into(),
        class: countersign_protocol::DataClass::Internal,
        tier,
        target: "crm/production".into(),
        policy_reason: "r".into(),
    })
}

async fn fill(db: &SqlitePool, n: i64) {
    for i in 0..n {
        let mut c = db.acquire().await.unwrap();
        let d = received(countersign_protocol::Tier::Low, &format!("spiffe://w{i}"));
        append(&mut c, 1000 + i, Some("ep"), Some(&format!("r{i}")), &d).await.unwrap();
    }
}

#[tokio::test]
async fn intact_chain_verifies() {
    let (_d, db) = db().await;
    fill(&db, 5).await;
    assert_eq!(verify(&db).await.unwrap(), 5);
}

#[tokio::test]
async fn append_only_triggers() {
    let (_d, db) = db().await;
    fill(&db, 2).await;
    assert!(sqlx::query("UPDATE history SET at = 0").execute(&db).await.is_err());
    assert!(sqlx::query("DELETE FROM history").execute(&db).await.is_err());
}

async fn tamper(db: &SqlitePool, sql: &str) {
    sqlx::query("DROP TRIGGER history_no_update").execute(db).await.unwrap();
    sqlx::query("DROP TRIGGER history_no_delete").execute(db).await.unwrap();
    sqlx::query(sql).execute(db).await.unwrap();
}

fn bad_row(e: ConsoleError) -> i64 {
    match e {
        ConsoleError::Tampered { seq, .. } => seq,
        other => panic!("expected Tampered, got {other}"),
    }
}

#[tokio::test]
async fn edit_is_caught_at_that_row() {
    let (_d, db) = db().await;
    fill(&db, 5).await;
    tamper(&db, r#"UPDATE history SET detail = '{"i":99}' WHERE seq = 3"#).await;
    assert_eq!(bad_row(verify(&db).await.unwrap_err()), 3);
}

#[tokio::test]
async fn delete_is_caught() {
    let (_d, db) = db().await;
    fill(&db, 5).await;
    tamper(&db, "DELETE FROM history WHERE seq = 2").await;
    assert_eq!(bad_row(verify(&db).await.unwrap_err()), 2);
}

#[tokio::test]
async fn reorder_is_caught() {
    let (_d, db) = db().await;
    fill(&db, 4).await;
    // Swap rows 2 and 3 wholesale, renumbering them.
    tamper(&db, "UPDATE history SET seq = -2 WHERE seq = 2; UPDATE history SET seq = 2 WHERE seq = 3; UPDATE history SET seq = 3 WHERE seq = -2").await;
    assert_eq!(bad_row(verify(&db).await.unwrap_err()), 2);
}

#[tokio::test]
async fn filters_by_request_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Console::open(dir.path(), std::sync::Arc::new(crate::keys::MemoryStore::default())).await.unwrap();
    let mut conn = c.db().acquire().await.unwrap();
    use countersign_protocol::{Tier, Verdict};
    append(&mut conn, 1, Some("ep"), Some("r1"), &received(Tier::High, "spiffe://a")).await.unwrap();
    append(&mut conn, 2, Some("ep"), Some("r2"), &received(Tier::Low, "spiffe://b")).await.unwrap();
    let signed = HistoryDetail::DecisionSigned(Signed {
        jti: "d1".into(),
        verdict: Verdict::Deny,
        reason: "late payment".into(),
        kid: "k".into(),
        digest: "d".into(),
        constraints: None,
        token: "t".into(),
    });
    append(&mut conn, 3, Some("ep"), Some("r1"), &signed).await.unwrap();
    drop(conn);
    let ids = |rows: Vec<Row>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    let f = Filter { tier: Some("high".into()), ..Filter::default() };
    assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 1]);
    let f = Filter { identity: Some("spiffe://b".into()), ..Filter::default() };
    assert_eq!(ids(c.history(&f).await.unwrap()), vec![2]);
    let f = Filter { identity: Some("ann@x".into()), ..Filter::default() };
    assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 2, 1]);
    let f = Filter { outcome: Some(Outcome::Deny), ..Filter::default() };
    assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 1]);
    let f = Filter { search: Some("late".into()), ..Filter::default() };
    assert_eq!(ids(c.history(&f).await.unwrap()), vec![3]);
}

/// The search index leaves out the signed tokens a row carries (a verified request's `jwt`, a
/// decision's `token`) and keeps every other field, a rejected request's text included; rebuilding the index (re-anchoring)
/// writes the same text the insert trigger does.
#[tokio::test]
async fn search_leaves_out_signed_tokens_only() {
    let (_dir, db) = db().await;
    let mut conn = db.acquire().await.unwrap();
    let mut r = received(countersign_protocol::Tier::High, "spiffe://acme/quokka-agent");
    if let HistoryDetail::RequestReceived(r) = &mut r {
        r.jwt = "eyJhbGci.zebra-payload.sig_nature".into();
        r.digest = "deadbeef01".into();
    }
    append(&mut conn, 1, Some("ep"), Some("r1"), &r).await.unwrap();
    let rejected = HistoryDetail::RequestRejected(Rejected {
        reason: "bad signature".into(),
        jwt: "aa.giraffe.bb".into(),
    });
    append(&mut conn, 2, Some("ep"), None, &rejected).await.unwrap();
    let signed = HistoryDetail::DecisionSigned(Signed {
        jti: "d1".into(),
        verdict: countersign_protocol::Verdict::Approve,
        reason: "ticket 4711".into(),
        kid: "k".into(),
        digest: "deadbeef01".into(),
        constraints: None,
        token: "hh.wombat.ss".into(),
    });
    append(&mut conn, 3, Some("ep"), Some("r1"), &signed).await.unwrap();
    for word in ["zebra", "payload", "wombat", "eyJhbGci"] {
        assert!(found(&mut conn, word).await.is_empty(), "{word} is in a token only");
    }
    assert_eq!(found(&mut conn, "deadbeef01").await, vec![1, 3]);
    assert_eq!(found(&mut conn, "quokka").await, vec![1]);
    assert_eq!(found(&mut conn, "signature").await, vec![2]);
    // What an enforcement point sent that did not verify stays searchable: it need not be a token.
    assert_eq!(found(&mut conn, "giraffe").await, vec![2]);
    assert_eq!(found(&mut conn, "4711").await, vec![3]);
    let indexed: Vec<String> = sqlx::query_scalar("SELECT body FROM history_fts ORDER BY rowid")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let rebuilt: Vec<String> = sqlx::query_scalar(&format!("SELECT {SEARCH_BODY} FROM history ORDER BY seq"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(indexed, rebuilt);
}

/// The history rows whose search entry matches `word`.
async fn found(conn: &mut sqlx::SqliteConnection, word: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT rowid FROM history_fts WHERE history_fts MATCH ? ORDER BY rowid")
        .bind(fts_query(word))
        .fetch_all(conn)
        .await
        .unwrap()
}

/// Rewrite every row from `from` on with recomputed hashes, as someone with the file but
/// without the key could.
async fn rewrite_chain(db: &SqlitePool, from: i64, new_detail: &str) {
    sqlx::query("DROP TRIGGER IF EXISTS history_no_update").execute(db).await.unwrap();
    let rows = sqlx::query_as::<_, Row>("SELECT * FROM history ORDER BY seq").fetch_all(db).await.unwrap();
    let mut prev = GENESIS.to_string();
    for mut r in rows {
        if r.seq == from {
            r.detail = new_detail.to_string();
        }
        let hash = row_hash(&prev, r.seq, r.at, &r.kind, r.ep.as_deref(), r.request_id.as_deref(), &r.detail)
            .unwrap();
        sqlx::query("UPDATE history SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&r.detail)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(db)
            .await
            .unwrap();
        prev = hash;
    }
}

/// A console over a fresh profile (in-memory key store) whose history has `n` filler rows.
async fn console_with_rows(n: i64) -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Console::open(dir.path(), std::sync::Arc::new(crate::keys::MemoryStore::default())).await.unwrap();
    c.key().await.unwrap();
    fill(c.db(), n).await;
    (dir, c)
}

#[tokio::test]
async fn signed_checkpoints_catch_a_recomputed_chain_and_survive_rotation() {
    let (_dir, c) = console_with_rows(10).await;
    assert_eq!(c.checkpoint(false).await.unwrap(), None, "not due yet");
    let cp = c.checkpoint(true).await.unwrap().expect("forced checkpoint");
    fill(c.db(), 3).await;
    c.rotate_key().await.unwrap();
    fill(c.db(), 2).await;
    c.verify_history().await.expect("intact history with a rotation verifies");

    rewrite_chain(c.db(), 4, r#"{"i":"forged"}"#).await;
    verify(c.db()).await.expect("the bare chain was recomputed consistently");
    match c.verify_history().await.unwrap_err() {
        ConsoleError::Tampered { seq, .. } => assert_eq!(seq, cp, "caught at the first checkpoint"),
        other => panic!("expected Tampered, got {other}"),
    }
}

#[tokio::test]
async fn rows_deleted_from_the_end_are_caught_by_the_keyring_anchor() {
    let (_dir, c) = console_with_rows(10).await;
    let first = c.checkpoint(true).await.unwrap().expect("checkpoint");
    fill(c.db(), 5).await;
    let second = c.checkpoint(true).await.unwrap().expect("checkpoint");
    fill(c.db(), 2).await;
    c.verify_history().await.expect("intact");

    // Someone with the file removes everything after the first checkpoint (the second one too):
    // what is left is a consistent chain under a valid checkpoint.
    sqlx::query("DROP TRIGGER history_no_delete").execute(c.db()).await.unwrap();
    sqlx::query("DELETE FROM history WHERE seq > ?").bind(first).execute(c.db()).await.unwrap();
    verify(c.db()).await.expect("the shortened chain is consistent");
    match c.verify_history().await.unwrap_err() {
        ConsoleError::Tampered { seq, message } => {
            assert_eq!(seq, first + 1, "{message}");
            assert!(message.contains(&format!("checkpoint row {second}")), "{message}");
            assert!(message.contains("deleted from the end"), "{message}");
        }
        other => panic!("expected Tampered, got {other}"),
    }

    // The console goes on recording (the deleted rows' search entries are replaced), and signing
    // new rows does not paper over the gap: the anchor stays where it was.
    fill(c.db(), 2).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    assert!(matches!(c.verify_history().await, Err(ConsoleError::Tampered { .. })), "still caught");
    let first = first + 3;

    // The approver restored this on purpose: re-anchoring accepts it, the gap stays on record.
    let done = c.reanchor_history().await.unwrap().expect("re-anchored");
    assert_eq!((done.previous, done.rows), (second, first));
    c.verify_history().await.expect("accepted history verifies");
    let (kind, detail): (String, String) = sqlx::query_as("SELECT kind, detail FROM history WHERE seq = ?")
        .bind(first + 1)
        .fetch_one(c.db())
        .await
        .unwrap();
    assert_eq!(kind, HistoryKind::Reanchored.as_str());
    assert!(detail.contains(&format!("\"seq\":{second}")), "{detail}");
    assert_eq!(c.reanchor_history().await.unwrap(), None, "nothing to accept twice");
    fill(c.db(), 3).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    c.verify_history().await.expect("the anchor moves forward again");
}

#[tokio::test]
async fn an_edited_history_is_never_re_anchored() {
    let (_dir, c) = console_with_rows(10).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    fill(c.db(), 4).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    rewrite_chain(c.db(), 4, r#"{"i":"forged"}"#).await;
    assert!(matches!(c.reanchor_history().await, Err(ConsoleError::Tampered { .. })));
    assert_eq!(count_kind(&c, HistoryKind::Reanchored.as_str()).await, 0);
}

/// Finding 13: someone with the file but not the keyring rewrites the history, re-signs every
/// checkpoint with a key of their own labelled with the real kid, and puts their public key in
/// the `keys` table under that kid. Only keys recorded in the chain itself count, so the
/// forgery is caught, and re-anchoring (which ignores the keyring's anchor) refuses it too.
#[tokio::test]
async fn checkpoints_are_verified_against_keys_from_the_chain_not_the_key_table() {
    let (_dir, c) = console_with_rows(10).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    fill(c.db(), 3).await;
    c.checkpoint(true).await.unwrap().expect("checkpoint");
    c.verify_history().await.expect("intact");
    let real_kid = c.key().await.unwrap().kid;
    let forger = countersign_protocol::generate_key();

    sqlx::query("DROP TRIGGER IF EXISTS history_no_update").execute(c.db()).await.unwrap();
    let rows =
        sqlx::query_as::<_, Row>("SELECT * FROM history ORDER BY seq").fetch_all(c.db()).await.unwrap();
    let mut prev = GENESIS.to_string();
    for mut r in rows {
        if r.seq == 4 {
            r.detail = r#"{"i":"forged"}"#.into();
        }
        if r.kind == HistoryKind::Checkpoint.as_str() {
            let message = checkpoint_message(&c.profile().id, r.seq - 1, &prev);
            let sig = hex(&ed25519_dalek::Signer::sign(&forger, message.as_bytes()).to_bytes());
            r.detail = json!({"upto": r.seq - 1, "head": prev, "kid": real_kid, "sig": sig}).to_string();
        }
        let hash = row_hash(&prev, r.seq, r.at, &r.kind, r.ep.as_deref(), r.request_id.as_deref(), &r.detail)
            .unwrap();
        sqlx::query("UPDATE history SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&r.detail)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(c.db())
            .await
            .unwrap();
        prev = hash;
    }
    let forged_jwk = countersign_protocol::Jwk::from_key(&forger.verifying_key());
    sqlx::query("UPDATE keys SET jwk = ? WHERE kid = ?")
        .bind(serde_json::to_string(&forged_jwk).unwrap())
        .bind(&real_kid)
        .execute(c.db())
        .await
        .unwrap();
    verify(c.db()).await.expect("the bare chain was recomputed consistently");

    let err = c.verify_history().await.unwrap_err();
    assert!(
        matches!(&err, ConsoleError::Tampered { message, .. } if message.contains("does not verify")),
        "{err}"
    );
    assert!(matches!(c.reanchor_history().await, Err(ConsoleError::Tampered { .. })), "never accepted");
    assert_eq!(count_kind(&c, HistoryKind::Reanchored.as_str()).await, 0);
}

async fn count_kind(c: &Console, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE kind = ?")
        .bind(kind)
        .fetch_one(c.db())
        .await
        .unwrap()
}

#[test]
fn fts_query_is_literal() {
    assert_eq!(fts_query(r#"pay "now" OR"#), r#""pay" """now""" "OR""#);
}

/// The outcome filter's `expired` and `withdrawn` select the requests that ended that way (their
/// every row), as recorded by `resolved` rows, and expired also the requests still pending here
/// after their expiry; `approve` and `deny` stay this console's own decisions.
#[tokio::test]
async fn outcome_filter_finds_expired_and_withdrawn_requests() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Console::open(dir.path(), std::sync::Arc::new(crate::keys::MemoryStore::default())).await.unwrap();
    let key = countersign_protocol::generate_key();
    let ep = crate::testing::pin_key(&c, &key.verifying_key(), "http://127.0.0.1:9").await;
    let t = crate::now();
    // (id, expiry): r-late expired an hour ago without the enforcement point saying so.
    let requests =
        [("r-exp", t + 60), ("r-wd", t + 60), ("r-ok", t + 60), ("r-late", t - 3600), ("r-live", t + 600)];
    for (id, exp) in requests {
        sqlx::query(
            "INSERT INTO requests (ep, id, jwt, claims, digest, tier, workload, iat, exp, received_at, glance)
             VALUES (?, ?, 'j', '{}', 'd', 'low', 'spiffe://w', 0, ?, 0, '{}')",
        )
        .bind(&ep)
        .bind(id)
        .bind(exp)
        .execute(c.db())
        .await
        .unwrap();
        let mut conn = c.db().acquire().await.unwrap();
        append(
            &mut conn,
            t - 7200,
            Some(&ep),
            Some(id),
            &received(countersign_protocol::Tier::Low, "spiffe://w"),
        )
        .await
        .unwrap();
    }
    for (id, state) in [("r-exp", "expired"), ("r-wd", "withdrawn"), ("r-ok", "approved")] {
        assert!(c.apply_state(&ep, id, state).await.unwrap());
    }
    let requests_of = |rows: Vec<Row>| {
        let mut ids: Vec<String> = rows.into_iter().filter_map(|r| r.request_id).collect();
        ids.sort();
        ids
    };
    let of = |outcome| Filter { outcome: Some(outcome), ..Filter::default() };
    assert_eq!(
        requests_of(c.history(&of(Outcome::Expired)).await.unwrap()),
        ["r-exp", "r-exp", "r-late"],
        "the expired request's received and resolved rows, and the one that lapsed while pending"
    );
    assert_eq!(c.history_count(&of(Outcome::Expired)).await.unwrap(), 3);
    assert_eq!(requests_of(c.history(&of(Outcome::Withdrawn)).await.unwrap()), ["r-wd", "r-wd"]);
    assert!(c.history(&of(Outcome::Approve)).await.unwrap().is_empty(), "this console signed nothing");
}

/// New rows are stored as the same text the untyped writers produced (so old and new rows read
/// alike), and stored rows of every kind read back typed.
#[test]
fn typed_details_keep_the_stored_text() {
    let kid = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    let jwk = countersign_protocol::Jwk::from_key(&countersign_protocol::generate_key().verifying_key());
    let cases: Vec<(HistoryDetail, serde_json::Value)> = vec![
        (
            received(countersign_protocol::Tier::High, "spiffe://a"),
            json!({"jwt": "j", "digest": "d", "workload": "spiffe://a", "display": "Agent",
                "on_behalf_of": ["ann@x"], "purpose": "p", "statement": "s", "class": "internal",
                "tier": "high", "target": "crm/production", "policy_reason": "r"}),
        ),
        (
            HistoryDetail::RequestRejected(Rejected { reason: "bad sig".into(), jwt: "j".into() }),
            json!({"reason": "bad sig", "jwt": "j"}),
        ),
        (
            HistoryDetail::DecisionSigned(Signed {
                jti: "d1".into(),
                verdict: countersign_protocol::Verdict::Approve,
                reason: "".into(),
                kid: kid.into(),
                digest: "d".into(),
                constraints: None,
                token: "t".into(),
            }),
            json!({"jti": "d1", "verdict": "approve", "reason": "", "kid": kid, "digest": "d",
                "constraints": null, "token": "t"}),
        ),
        (
            HistoryDetail::DeliveryRefused(DeliveryAnswer {
                jti: "d1".into(),
                status: 409,
                answer: json!({"error": "conflict"}),
            }),
            json!({"jti": "d1", "status": 409, "answer": {"error": "conflict"}}),
        ),
        (HistoryDetail::Resolved(Resolved { state: Resolution::Withdrawn }), json!({"state": "withdrawn"})),
        (
            HistoryDetail::KeyRotated(KeyRecorded {
                kid: kid.into(),
                jwk: jwk.clone(),
                retired: vec!["old".into()],
            }),
            json!({"kid": kid, "jwk": jwk, "retired": ["old"]}),
        ),
        (
            HistoryDetail::KeyRotationSent(RotationSent {
                old_kid: None,
                new_kid: kid.into(),
                outcome: crate::keys::RotationOutcome::Refused { status: 401, message: "no".into() },
            }),
            json!({"old_kid": null, "new_kid": kid, "outcome": {"result": "refused", "status": 401, "message": "no"}}),
        ),
        (
            HistoryDetail::Checkpoint(Checkpoint {
                upto: 9,
                head: "h".into(),
                kid: kid.into(),
                sig: "s".into(),
            }),
            json!({"upto": 9, "head": "h", "kid": kid, "sig": "s"}),
        ),
        (
            HistoryDetail::Reanchored(ReanchorRecord {
                previous_anchor: ChainPoint { seq: 40, hash: "h".into() },
                rows: 12,
                missing_from: Some(13),
                diverged_at: None,
            }),
            json!({"previous_anchor": {"seq": 40, "hash": "h"}, "rows": 12, "missing_from": 13, "diverged_at": null}),
        ),
    ];
    for (typed, before) in cases {
        let kind = typed.kind().unwrap();
        let text = serde_json::to_string(&before).unwrap();
        assert_eq!(typed.to_text().unwrap(), text, "{kind:?} is stored as before");
        assert_eq!(HistoryDetail::parse(kind.as_str(), &text), typed, "{kind:?} reads back");
        assert_eq!(HistoryKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "{kind:?} serializes as its name");
    }
    assert!(matches!(
        HistoryDetail::parse("something new", r#"{"a":1}"#),
        HistoryDetail::Unreadable { kind, .. } if kind == "something new"
    ));
}
