//! Black-box attacks on the reference gateway's guarantees (issue 9): a second key for one person,
//! self-approval by spelling, secrets shown to the wrong approver, grants used beyond what was
//! approved, removal that does not end access, readable files, and plain transport.
//! Each test runs the real `countersign-gateway` process on loopback.
//! Longer than the ~450-line guide on purpose: one test per attack class of issue 9, each with its
//! own set-up, kept together so the findings map to one file.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use countersign_blackbox::*;
use countersign_protocol::{
    self as protocol, AuthClaims, Jwk, RotationClaims, Verdict, TYP_AUTH, TYP_ROTATION,
};
use serde_json::{json, Value};

const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";

async fn setup() -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    (dir, gw)
}

/// Run `countersign-gateway ARGS…`, whatever its exit status.
fn gateway_run(args: &[&str]) -> Output {
    Command::new(bin("countersign-gateway")).args(args).output().expect("run countersign-gateway")
}

/// Try to enrol `a` for `principal`; the CLI's output.
fn enrol(gw: &Gateway, a: &Approver, principal: &str, extra: &[&str]) -> Output {
    let file = gw.data.join(format!("{}.jwk", a.kid));
    std::fs::write(&file, serde_json::to_string(&Jwk::from_key(&a.key.verifying_key())).unwrap()).unwrap();
    let mut args = vec![
        "approvers",
        "add",
        "--data",
        gw.data.to_str().unwrap(),
        "--name",
        "Someone",
        "--principal",
        principal,
        "--jwk",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    gateway_run(&args)
}

/// A pending request of the test policy: (id, verified claims, the agent's first answer).
async fn pending_request(gw: &Gateway, agent: &Agent, draft_body: &Value) -> (String, Value, Value) {
    let (status, body) = submit(gw, agent, draft_body).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    let items = pending(gw, &gw.approver_probe()).await;
    let jwt =
        items.iter().find(|i| i["id"] == id.as_str()).expect("listed")["jwt"].as_str().unwrap().to_string();
    (id, verify_request(gw, &jwt).await, body)
}

/// GET a request's status with any bearer token; (status, body text).
async fn status_text(gw: &Gateway, bearer: &str, id: &str) -> (u16, String) {
    let r =
        http().get(gw.at(&format!("/v1/step-ups/{id}"))).bearer_auth(bearer).send().await.expect("status");
    (r.status().as_u16(), r.text().await.expect("text"))
}

trait Probe {
    /// An approver enrolled only to read the pending list.
    fn approver_probe(&self) -> Approver;
}

impl Probe for Gateway {
    fn approver_probe(&self) -> Approver {
        let p = format!("probe-{}@acme.example", &protocol::new_id()[..8].to_lowercase());
        self.approver("Probe", &p)
    }
}

#[tokio::test]
async fn one_person_cannot_meet_a_two_person_rule_with_a_second_key() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");

    // A second key for alice, under any spelling of her principal, is refused and changes nothing.
    for spelling in [
        "alice@acme.example",
        " ALICE@acme.example",
        "\u{00A0}alice@acme.example",
        "\u{0430}lice@acme.example",
    ] {
        let second = Approver::new(spelling);
        let out = enrol(&gw, &second, spelling, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "second key for {spelling:?} must be refused");
        assert!(err.contains("already has an active key") || err.contains("looks like"), "{err}");
        let (code, _) = status_text(&gw, &second.auth(&gw.ep), "nothing").await;
        assert_eq!(code, 401, "the refused key does not authenticate");
    }

    // Alice approves a two-person request with her key.
    let (id, claims, body) = pending_request(&gw, &agent, &draft(AGENT, "test.critical")).await;
    let code = body["binding_code"].as_str().unwrap().to_string();
    let (s, b) =
        post_decision(&gw, &alice, &id, &alice.decision(&claims, Verdict::Approve, "checked", Some(&code)))
            .await;
    assert_eq!((s, b["approvals"].as_i64()), (200, Some(1)), "{b}");

    // She replaces her key (--replace): the old key is retired, the new one is still alice.
    let alice2 = Approver::new("alice@acme.example");
    let out = enrol(&gw, &alice2, "Alice@ACME.example", &["--replace"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = post_decision(
        &gw,
        &alice2,
        &id,
        &alice2.decision(&claims, Verdict::Approve, "second vote", Some(&code)),
    )
    .await;
    assert_eq!(s, 409, "alice's new key is still alice: one voice per principal: {b}");
    let (code_old, _) = status_text(&gw, &alice.auth(&gw.ep), &id).await;
    assert_eq!(code_old, 401, "the replaced key no longer authenticates");
    assert_eq!(status_of_agent(&gw, &agent, &id).await["state"], "pending", "still 1 of 2");

    // A second person completes it.
    let bob = gw.approver("Bob", "bob@acme.example");
    let (s, b) =
        post_decision(&gw, &bob, &id, &bob.decision(&claims, Verdict::Approve, "agreed", Some(&code))).await;
    assert_eq!((s, b["state"].as_str(), b["approvals"].as_i64()), (200, Some("approved"), Some(2)), "{b}");
}

async fn status_of_agent(gw: &Gateway, agent: &Agent, id: &str) -> Value {
    let (s, text) = status_text(gw, &agent.token, id).await;
    assert_eq!(s, 200, "{text}");
    serde_json::from_str(&text).expect("json")
}

fn rotation(old: &Approver, new: &Approver, aud: &str, lifetime: i64) -> String {
    let t = now();
    let claims = RotationClaims {
        iss: old.kid.clone(),
        aud: aud.into(),
        iat: t,
        exp: t + lifetime,
        jti: protocol::new_id(),
        new_key: Jwk::from_key(&new.key.verifying_key()),
    };
    protocol::sign(&claims, TYP_ROTATION, &old.key).expect("sign rotation")
}

async fn post_rotation(gw: &Gateway, statement: &str) -> (u16, Value) {
    let r = http()
        .post(gw.at("/v1/approvers/rotate"))
        .header("content-type", "application/jwt")
        .body(statement.to_string())
        .send()
        .await
        .expect("rotate");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rotation_retires_the_old_key_and_keeps_one_voice() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let bob = gw.approver("Bob", "bob@acme.example");
    let (id, claims, body) = pending_request(&gw, &agent, &draft(AGENT, "test.critical")).await;
    let code = body["binding_code"].as_str().unwrap().to_string();
    let (s, _) =
        post_decision(&gw, &alice, &id, &alice.decision(&claims, Verdict::Approve, "ok", Some(&code))).await;
    assert_eq!(s, 200);

    let new = Approver::new("alice@acme.example");
    // Bad statements change nothing: wrong audience, too long-lived, signed by someone else's
    // key for alice's kid, garbage, a new key that is already enrolled (bob's).
    assert_eq!(post_rotation(&gw, &rotation(&alice, &new, "ep-someoneelse", 60)).await.0, 401);
    assert_eq!(post_rotation(&gw, &rotation(&alice, &new, &gw.ep, 3600)).await.0, 400);
    let forged = {
        let mut c = Approver::new("mallory@evil.example");
        c.kid = alice.kid.clone();
        rotation(&c, &new, &gw.ep, 60)
    };
    assert_eq!(post_rotation(&gw, &forged).await.0, 401, "a statement not signed by alice's key");
    assert_eq!(post_rotation(&gw, "not.a.jws").await.0, 400);
    let (s, b) = post_rotation(&gw, &rotation(&alice, &bob, &gw.ep, 60)).await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = status_text(&gw, &alice.auth(&gw.ep), &id).await;
    assert_eq!(s, 200, "alice's key still works after refused statements");

    let statement = rotation(&alice, &new, &gw.ep, 60);
    let (s, b) = post_rotation(&gw, &statement).await;
    assert_eq!((s, b["kid"].as_str()), (200, Some(new.kid.as_str())), "{b}");
    assert_eq!(post_rotation(&gw, &statement).await.0, 401, "a statement is accepted once");
    // The old key can no longer authenticate or decide; the new one is alice and has voted already.
    assert_eq!(status_text(&gw, &alice.auth(&gw.ep), &id).await.0, 401);
    let (s, _) =
        post_decision(&gw, &new, &id, &new.decision(&claims, Verdict::Approve, "again", Some(&code))).await;
    assert_eq!(s, 409, "one voice per principal across rotation");
    let list = gateway_cli(&["approvers", "list", "--data", gw.data.to_str().unwrap(), "--all"]);
    assert!(list.contains(&format!("[rotated, now {}]", new.kid)), "{list}");
    // What the old key signed stays verifiable: its decision is listed under alice (as bob reads it).
    let s: Value = serde_json::from_str(&status_text(&gw, &bob.auth(&gw.ep), &id).await.1).unwrap();
    assert_eq!(s["decisions"][0]["kid"], alice.kid.as_str());
    assert_eq!(s["decisions"][0]["principal"], "alice@acme.example");
}

#[tokio::test]
async fn self_approval_is_judged_on_principals_not_spellings() {
    let (_d, gw) = setup().await;
    let owned = "spiffe://acme.example/ns/test/sa/owned";
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let bob = gw.approver("Bob", "bob@acme.example");
    self_approval_is_refused_for(
        &gw,
        &agent,
        &alice,
        &bob,
        &[
            "alice@acme.example ",
            "\u{00A0}alice@acme.example",
            "\u{0430}lice@acme.example",
            "ALICE@ACME.EXAMPLE",
            "alice@acme.exa\u{200B}mple",
            "ａｌｉｃｅ@acme.example",
        ],
    )
    .await;

    // An agent registered with alice as owner cannot be approved by her, whatever it declares.
    let token = gateway_cli(&[
        "agents",
        "add",
        "--data",
        gw.data.to_str().unwrap(),
        "--workload",
        owned,
        "--owner",
        "Alice@acme.example",
    ]);
    let owned_agent = Agent { token: token.trim().into(), workload: owned.into() };
    let mut d = draft(owned, "test.medium");
    d["identity"]["on_behalf_of"] = json!([]);
    let (id, claims, _) = pending_request(&gw, &owned_agent, &d).await;
    let (s, b) = post_decision(&gw, &alice, &id, &alice.decision(&claims, Verdict::Approve, "", None)).await;
    assert_eq!(s, 403, "{b}");
    assert!(b["message"].as_str().unwrap().contains("owner"), "{b}");
    let (s, _) = post_decision(&gw, &bob, &id, &bob.decision(&claims, Verdict::Approve, "", None)).await;
    assert_eq!(s, 200);
    // Bad owners are refused and register nothing.
    let out = gateway_run(&[
        "agents",
        "add",
        "--data",
        gw.data.to_str().unwrap(),
        "--workload",
        "spiffe://acme.example/x",
        "--owner",
        "not an address",
    ]);
    assert!(!out.status.success());
    assert!(
        !gateway_cli(&["agents", "list", "--data", gw.data.to_str().unwrap()]).contains("acme.example/x ")
    );
}

#[tokio::test]
async fn approvers_never_see_binding_codes_decision_tokens_or_grants() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let carol = gw.approver("Carol", "carol@acme.example");
    let dave = gw.approver("Dave", "dave@acme.example");
    let erin = gw.approver("Erin", "erin@acme.example");
    let (id, claims, body) = pending_request(&gw, &agent, &draft(AGENT, "test.critical")).await;
    let code = body["binding_code"].as_str().unwrap().to_string();
    let carols = carol.decision(&claims, Verdict::Approve, "called the requester", Some(&code));
    assert_eq!(post_decision(&gw, &carol, &id, &carols).await.0, 200);

    let (s, text) = status_text(&gw, &dave.auth(&gw.ep), &id).await;
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains(&code), "dave must not read carol's binding code: {text}");
    assert!(!text.contains(&carols), "nor her decision token");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        seen["decisions"][0],
        json!({"approver": "Carol", "principal": "carol@acme.example", "kid": carol.kid, "verdict": "approve",
               "at": seen["decisions"][0]["at"], "reason": "called the requester"})
    );
    // Guessing is still limited to three attempts, and a code read nowhere cannot be replayed.
    let (s, _) =
        post_decision(&gw, &dave, &id, &dave.decision(&claims, Verdict::Approve, "guess", Some("123456")))
            .await;
    assert_eq!(s, 403);

    let (s, _) =
        post_decision(&gw, &erin, &id, &erin.decision(&claims, Verdict::Approve, "agree", Some(&code))).await;
    assert_eq!(s, 200);
    let (s, text) = status_text(&gw, &dave.auth(&gw.ep), &id).await;
    assert_eq!(s, 200);
    assert!(!text.contains("grant"), "an approver never receives the grant: {text}");
    assert!(status_of_agent(&gw, &agent, &id).await["grant"].is_string(), "the agent that asked does");
    // Another agent cannot read it either.
    let other = gw.agent("spiffe://acme.example/ns/test/sa/other");
    assert_eq!(status_text(&gw, &other.token, &id).await.0, 403);
}

fn add_system(gw: &Gateway, system: &str, env: &str) -> String {
    gateway_cli(&[
        "systems",
        "add",
        "--data",
        gw.data.to_str().unwrap(),
        "--system",
        system,
        "--environment",
        env,
    ])
    .trim()
    .to_string()
}

async fn redeem(gw: &Gateway, token: &str, body: &Value) -> (u16, Value) {
    let r =
        http().post(gw.at("/v1/grants/redeem")).bearer_auth(token).json(body).send().await.expect("redeem");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// An approved test.high request whose approver allowed `max_uses`; (id, claims, grant).
async fn approved_grant(
    gw: &Gateway,
    agent: &Agent,
    approver: &Approver,
    max_uses: u32,
) -> (String, Value, String) {
    let (id, claims, _) = pending_request(gw, agent, &draft(AGENT, "test.high")).await;
    let mut c = approver.decision_claims(&claims, Verdict::Approve, "fine", None);
    c.constraints = Some(protocol::Constraints { ttl_s: Some(120), max_uses: Some(max_uses) });
    let token = protocol::sign(&c, protocol::TYP_DECISION, &approver.key).unwrap();
    let (s, b) = post_decision(gw, approver, &id, &token).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("approved")), "{b}");
    let grant = status_of_agent(gw, agent, &id).await["grant"].as_str().unwrap().to_string();
    (id, claims, grant)
}

#[tokio::test]
async fn grants_are_credentials_redeemed_and_counted_by_the_gateway() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let crm = add_system(&gw, "crm", "production");
    let crm_staging = add_system(&gw, "crm", "staging");
    let billing = add_system(&gw, "billing", "production");
    let (id, claims, grant) = approved_grant(&gw, &agent, &alice, 2).await;

    // Refusals change nothing: no token, an agent's token, another system, another environment,
    // a tampered grant, a body that is not the expected shape.
    assert_eq!(redeem(&gw, "cst_nope", &json!({"grant": grant})).await.0, 401);
    assert_eq!(redeem(&gw, &agent.token, &json!({"grant": grant})).await.0, 401);
    assert_eq!(redeem(&gw, &billing, &json!({"grant": grant})).await.0, 403);
    assert_eq!(redeem(&gw, &crm_staging, &json!({"grant": grant})).await.0, 403);
    let mut tampered = grant.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(redeem(&gw, &crm, &json!({"grant": tampered})).await.0, 401);
    assert_eq!(redeem(&gw, &crm, &json!({"grant": grant, "uses": 0})).await.0, 400);
    assert_eq!(redeem(&gw, &crm, &json!({"token": grant})).await.0, 400);

    let (s, b) = redeem(&gw, &crm, &json!({"grant": grant})).await;
    assert_eq!((s, b["uses"].as_i64(), b["max_uses"].as_i64()), (200, Some(1), Some(2)), "{b}");
    assert_eq!(b["request"], id.as_str());
    assert_eq!(b["digest"], protocol::request_digest(&claims).unwrap().as_str());
    assert_eq!(b["actions"], claims["actions"], "the system learns exactly the approved chain");
    assert_eq!(b["environment"], "production");
    let (s, b) = redeem(&gw, &crm, &json!({"grant": grant})).await;
    assert_eq!((s, b["uses"].as_i64()), (200, Some(2)));
    let (s, b) = redeem(&gw, &crm, &json!({"grant": grant})).await;
    assert_eq!(s, 409, "max_uses is enforced: {b}");

    // Concurrent redemptions never exceed max_uses.
    let (_, _, grant) = approved_grant(&gw, &agent, &alice, 3).await;
    let tries = (0..12).map(|_| {
        let (gw_url, crm, grant) = (gw.url.clone(), crm.clone(), grant.clone());
        tokio::spawn(async move {
            http()
                .post(format!("{gw_url}/v1/grants/redeem"))
                .bearer_auth(crm)
                .json(&json!({"grant": grant}))
                .send()
                .await
                .expect("redeem")
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(tries).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");

    // A revoked grant is refused.
    let (_, _, grant) = approved_grant(&gw, &agent, &alice, 5).await;
    let jti = protocol::jws::decode_unverified(&grant).unwrap()["jti"].as_str().unwrap().to_string();
    gateway_cli(&["grants", "revoke", "--data", gw.data.to_str().unwrap(), "--jti", &jti]);
    let (s, b) = redeem(&gw, &crm, &json!({"grant": grant})).await;
    assert_eq!(s, 403, "{b}");
    assert!(b["message"].as_str().unwrap().contains("revoked"));
    assert!(!gateway_run(&["grants", "revoke", "--data", gw.data.to_str().unwrap(), "--jti", "nope"])
        .status
        .success());
}

/// Read an SSE response until it ends; how long it stayed open, or `None` if still open after `limit`.
async fn open_for(resp: reqwest::Response, limit: Duration) -> Option<Duration> {
    use futures::StreamExt as _;
    let start = Instant::now();
    let mut body = resp.bytes_stream();
    let ended = tokio::time::timeout(limit, async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    ended.ok().map(|_| start.elapsed())
}

async fn stream(gw: &Gateway, token: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap();
    let resp = client.get(gw.at("/v1/events")).bearer_auth(token).send().await.expect("events");
    assert_eq!(resp.status().as_u16(), 200);
    resp
}

#[tokio::test]
async fn event_streams_end_with_their_token_and_when_the_approver_is_removed() {
    let (_d, gw) = setup().await;
    let alice = gw.approver("Alice", "alice@acme.example");
    let bob = gw.approver("Bob", "bob@acme.example");

    // The control: a stream with a 4-minute token stays open.
    let control = stream(&gw, &bob.auth(&gw.ep)).await;
    // A token that expires in 3 s: the stream ends then (not at the 15 s keep-alive or later).
    let t = now();
    let short = protocol::sign(
        &AuthClaims {
            iss: alice.kid.clone(),
            aud: gw.ep.clone(),
            iat: t,
            exp: t + 3,
            jti: protocol::new_id(),
        },
        TYP_AUTH,
        &alice.key,
    )
    .unwrap();
    let short_stream = stream(&gw, &short).await;
    let open = open_for(short_stream, Duration::from_secs(10)).await.expect("the stream must end");
    assert!(open <= Duration::from_secs(5), "ended {open:?} after opening, token lived 3 s");

    // Removal ends an open stream at once (within the 0.5 s enrolment cache and a 0.25 s recheck).
    let alices = stream(&gw, &alice.auth(&gw.ep)).await;
    gateway_cli(&["approvers", "remove", "--data", gw.data.to_str().unwrap(), "--kid", &alice.kid]);
    let removed_at = Instant::now();
    let ended = open_for(alices, Duration::from_secs(10)).await;
    assert!(ended.is_some(), "a removed approver's stream must end");
    assert!(removed_at.elapsed() <= Duration::from_secs(3), "ended {:?} after removal", removed_at.elapsed());
    // Bob's control stream, opened before both, is still open; alice's key is refused from now on.
    assert!(open_for(control, Duration::from_secs(2)).await.is_none(), "the control stream stays open");
    let (s, _) = status_text(&gw, &alice.auth(&gw.ep), "x").await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn data_files_are_private_to_the_gateway_user() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let (s, _) = submit(&gw, &agent, &draft(AGENT, "test.critical")).await;
    assert_eq!(s, 201);
    let mode = |name: &str| {
        std::fs::metadata(gw.data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")).permissions().mode()
            & 0o777
    };
    assert_eq!(std::fs::metadata(&gw.data).unwrap().permissions().mode() & 0o777, 0o700, "data dir");
    for f in ["gateway.key", "gateway.db", "gateway.db-wal", "gateway.db-shm"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }

    // Files an older version left readable are tightened on the next start.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("old");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("gateway.db"), b"").unwrap();
    std::fs::set_permissions(data.join("gateway.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let old = Gateway::start(&data, &[]);
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(data.join("gateway.db")).unwrap().permissions().mode() & 0o777, 0o600);
    drop(old);
}

#[tokio::test]
async fn the_gateway_serves_tls_and_plain_http_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = countersign_blackbox::tls::TestPki::new(dir.path());
    let data = dir.path().join("gw");
    let gw = Gateway::start(&data, &pki.serve_flags());
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    let wk: Value =
        pki.client().get(gw.at("/.well-known/countersign")).send().await.unwrap().json().await.unwrap();
    assert_eq!(wk["ep"], gw.ep.as_str());
    // A client that does not trust the CA is refused, and plain http on the TLS port gets no answer.
    assert!(http().get(gw.at("/.well-known/countersign")).send().await.is_err());
    let plain = gw.at("/.well-known/countersign").replacen("https://", "http://", 1);
    let r = http().get(&plain).send().await;
    assert!(r.is_err() || !r.unwrap().status().is_success(), "plain http must not be served");

    // A certificate that does not load stops the start with a clear error.
    let out = gateway_run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        dir.path().join("gw2").to_str().unwrap(),
        "--policy",
        test_policy().to_str().unwrap(),
        "--tls-cert",
        pki.key.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_long_backlog_is_replayed_page_by_page_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &["--rate-limit", "100000"]);
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let mut ids = Vec::new();
    for _ in 0..450 {
        let (s, b) = submit(&gw, &agent, &draft(AGENT, "test.medium")).await;
        assert_eq!(s, 201, "{b}");
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    // Replaying from the start crosses several backlog pages; every event arrives once, in order.
    let mut events = Events::connect(&gw, &alice, Some("0")).await;
    let mut got = Vec::new();
    let mut last_seq = 0i64;
    while got.len() < ids.len() {
        let (seq, kind, data) = events.next(10).await.expect("replayed event");
        let seq: i64 = seq.parse().unwrap();
        assert!(seq > last_seq, "in order, no repeats: {seq} after {last_seq}");
        last_seq = seq;
        assert_eq!(kind, "step-up");
        got.push(data["id"].as_str().unwrap().to_string());
    }
    assert_eq!(got, ids);
    // And the stream goes on live after the backlog.
    let (_, b) = submit(&gw, &agent, &draft(AGENT, "test.medium")).await;
    let (_, _, data) = events.next(10).await.expect("live event after the backlog");
    assert_eq!(data["id"], b["id"]);
}

#[tokio::test]
async fn a_grant_names_the_catalogued_environment_whatever_the_agent_declares() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &["--default-policy"]);
    let agent = gw.agent(AGENT);
    let data = gw.data.to_str().unwrap().to_string();
    let staging = gateway_cli(&[
        "systems",
        "add",
        "--data",
        &data,
        "--system",
        " Feature-Flags-Staging",
        "--environment",
        "STAGING",
    ])
    .trim()
    .to_string();
    let prod = gateway_cli(&[
        "systems",
        "add",
        "--data",
        &data,
        "--system",
        "feature-flags-staging",
        "--environment",
        "production",
    ])
    .trim()
    .to_string();
    // The catalogue knows feature-flags-staging in staging; the agent declares "dev".
    let d = json!({
        "identity": {"workload": AGENT, "display": "Agent", "on_behalf_of": []},
        "purpose": {"code": "docs", "statement": "find the release notes"},
        "data": {"class": "internal", "categories": []},
        "target": {"system": "Feature-Flags-Staging", "environment": "dev"},
        "actions": [{"tool": "confluence.pages.search", "args": {"q": "release notes"}, "reversible": true}]
    });
    let (s, b) = submit(&gw, &agent, &d).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("approved")), "{b}");
    let grant = b["grant"].as_str().unwrap();
    let claims = protocol::jws::decode_unverified(grant).unwrap();
    assert_eq!(claims["aud"], "feature-flags-staging", "the system in its normal form");
    assert_eq!(claims["environment"], "staging", "the catalogue's environment, not the declared one");
    assert_eq!(redeem(&gw, &prod, &json!({"grant": grant})).await.0, 403, "not redeemable in production");
    let (s, b) = redeem(&gw, &staging, &json!({"grant": grant})).await;
    assert_eq!((s, b["uses"].as_i64()), (200, Some(1)), "{b}");
    assert_eq!(redeem(&gw, &staging, &json!({"grant": grant})).await.0, 409, "an allow grant is good once");
}

/// Attack review, round two: spellings the first normalizer did not fold.
#[tokio::test]
async fn principal_spellings_from_the_attack_review_are_one_person() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let bob = gw.approver("Bob", "bob@acme.example");
    // A second enrolment under any of these spellings is refused: she is one principal.
    for spelling in [
        "alice@acme.example\u{2800}",
        "alice\u{2800}@acme.example",
        "alice@acme.example.",
        "alice@acme\u{3002}example",
        "alice@acme\u{2027}example",
        "alice+x@acme.example",
        "\"alice\"@acme.example",
        "alice(comment)@acme.example",
        "alice@acme.example\u{1D159}",
    ] {
        let out = enrol(&gw, &Approver::new(spelling), spelling, &[]);
        assert!(!out.status.success(), "{spelling:?} must be refused");
    }
    // IDNA: the Unicode and punycode forms of one domain are one principal.
    gw.approver("Carol", "carol@bücher.example");
    assert!(!enrol(&gw, &Approver::new("x"), "carol@xn--bcher-kva.example", &[]).status.success());

    // An agent acting for any of these spellings cannot be approved by alice.
    self_approval_is_refused_for(
        &gw,
        &agent,
        &alice,
        &bob,
        &[
            "alice@acme.example.",
            "\"alice\"@acme.example",
            "alice+agent@acme.example",
            "alice@acme\u{3002}example",
            "alice\u{2800}@acme.example",
            "alice(x)@acme.example",
            "alice@acme\u{2027}example",
        ],
    )
    .await;
}

/// For each spelling of alice as the person an agent acts for: alice's approval is refused as
/// self-approval, and bob's (the control) is accepted.
async fn self_approval_is_refused_for(
    gw: &Gateway,
    agent: &Agent,
    alice: &Approver,
    bob: &Approver,
    subs: &[&str],
) {
    for sub in subs {
        let mut d = draft(AGENT, "test.medium");
        d["identity"]["on_behalf_of"] = json!([{"sub": sub, "display": "Alice"}]);
        let (id, claims, _) = pending_request(gw, agent, &d).await;
        let (s, b) =
            post_decision(gw, alice, &id, &alice.decision(&claims, Verdict::Approve, "", None)).await;
        assert_eq!(s, 403, "{sub:?}: {b}");
        assert!(b["message"].as_str().unwrap().contains("self-approval"), "{b}");
        let (s, b) = post_decision(gw, bob, &id, &bob.decision(&claims, Verdict::Approve, "", None)).await;
        assert_eq!(s, 200, "{sub:?}: the control: {b}");
    }
}

#[tokio::test]
async fn a_removed_approvers_earlier_vote_no_longer_counts() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let mallory = gw.approver("Mallory", "mallory@acme.example");
    let bob = gw.approver("Bob", "bob@acme.example");
    let carol = gw.approver("Carol", "carol@acme.example");
    let (id, claims, body) = pending_request(&gw, &agent, &draft(AGENT, "test.critical")).await;
    let code = body["binding_code"].as_str().unwrap().to_string();
    let (s, b) =
        post_decision(&gw, &mallory, &id, &mallory.decision(&claims, Verdict::Approve, "ok", Some(&code)))
            .await;
    assert_eq!((s, b["approvals"].as_i64()), (200, Some(1)));
    gateway_cli(&["approvers", "remove", "--data", gw.data.to_str().unwrap(), "--kid", &mallory.kid]);
    let (s, b) =
        post_decision(&gw, &bob, &id, &bob.decision(&claims, Verdict::Approve, "ok", Some(&code))).await;
    assert_eq!((s, b["state"].as_str(), b["approvals"].as_i64()), (200, Some("pending"), Some(1)), "{b}");
    let (s, b) =
        post_decision(&gw, &carol, &id, &carol.decision(&claims, Verdict::Approve, "ok", Some(&code))).await;
    assert_eq!((s, b["state"].as_str(), b["approvals"].as_i64()), (200, Some("approved"), Some(2)), "{b}");
}

#[tokio::test]
async fn the_agent_learns_progress_not_who_approved() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let (id, claims, body) = pending_request(&gw, &agent, &draft(AGENT, "test.critical")).await;
    let code = body["binding_code"].as_str().unwrap().to_string();
    assert_eq!(
        post_decision(
            &gw,
            &alice,
            &id,
            &alice.decision(&claims, Verdict::Approve, "looked fine", Some(&code))
        )
        .await
        .0,
        200
    );
    let (s, text) = status_text(&gw, &agent.token, &id).await;
    assert_eq!(s, 200);
    for secret in [alice.kid.as_str(), "alice@acme.example", "Alice", "looked fine"] {
        assert!(!text.contains(secret), "the agent must not learn {secret:?}: {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["approvals"].as_i64(), v["approvals_required"].as_i64()), (Some(1), Some(2)));
}

#[tokio::test]
async fn allowed_requests_name_their_actions_at_redemption_and_removed_agents_lose_their_grants() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let crm = add_system(&gw, "crm", "production");
    let (s, b) = submit(&gw, &agent, &draft(AGENT, "test.allow")).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("approved")), "{b}");
    let (s, r) = redeem(&gw, &crm, &json!({"grant": b["grant"]})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["actions"], draft(AGENT, "test.allow")["actions"], "the allowed chain, exactly");

    let (s, b) = submit(&gw, &agent, &draft(AGENT, "test.allow")).await;
    assert_eq!(s, 200);
    let out = gateway_cli(&["agents", "remove", "--data", gw.data.to_str().unwrap(), "--workload", AGENT]);
    assert!(out.contains("1 usable grant"), "{out}");
    let (s, r) = redeem(&gw, &crm, &json!({"grant": b["grant"]})).await;
    assert_eq!(s, 403, "a removed agent's grant is revoked: {r}");
}

#[tokio::test]
async fn agents_are_registered_under_one_canonical_unlookalike_id_with_owners() {
    let (_d, gw) = setup().await;
    let data = gw.data.to_str().unwrap().to_string();
    let add = |workload: &str, extra: &[&str]| {
        let mut args = vec!["agents", "add", "--data", &data, "--workload", workload];
        args.extend_from_slice(extra);
        gateway_run(&args)
    };
    assert!(add("spiffe://acme.example/sa/agent-1", &["--owner", "alice@acme.example"]).status.success());
    for (workload, extra, why) in [
        ("spiffe://acme.example/sa/agent-1/", &["--owner", "alice@acme.example"][..], "trailing slash"),
        ("spiffe://ACME.example/sa/agent-1", &["--owner", "alice@acme.example"][..], "upper-case domain"),
        ("spiffe://acme.example/sa/agent-l", &["--owner", "alice@acme.example"][..], "look-alike of agent-1"),
        ("spiffe://acme.example/sa/other", &[][..], "no owner and no --no-owner"),
    ] {
        let out = add(workload, extra);
        assert!(!out.status.success(), "{why}: must be refused");
    }
    assert!(add("spiffe://acme.example/sa/nobodys", &["--no-owner"]).status.success());
    let listed = gateway_cli(&["agents", "list", "--data", &data]);
    assert!(!listed.contains("agent-l") && !listed.contains("agent-1/"), "{listed}");
}

#[tokio::test]
async fn a_removed_approver_receives_nothing_submitted_after_removal_and_late_tokens_are_refused() {
    let (_d, gw) = setup().await;
    let agent = gw.agent(AGENT);
    let alice = gw.approver("Alice", "alice@acme.example");
    let mut events = Events::connect(&gw, &alice, None).await;
    gateway_cli(&["approvers", "remove", "--data", gw.data.to_str().unwrap(), "--kid", &alice.kid]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, _) = submit(&gw, &agent, &draft(AGENT, "test.medium")).await;
    assert_eq!(s, 201);
    // Closed or quiet, either way nothing reaches it.
    if let Some((_, kind, data)) = events.next(3).await {
        panic!("a removed approver received {kind} {data}");
    }
    // A token that expired a few seconds ago (inside the verification leeway) opens no stream.
    let bob = gw.approver("Bob", "bob@acme.example");
    let t = now();
    let late = protocol::sign(
        &AuthClaims {
            iss: bob.kid.clone(),
            aud: gw.ep.clone(),
            iat: t - 60,
            exp: t - 5,
            jti: protocol::new_id(),
        },
        TYP_AUTH,
        &bob.key,
    )
    .unwrap();
    let r = http().get(gw.at("/v1/events")).bearer_auth(late).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
