//! Command wiring: the real commands, state and core over Tauri's mock runtime (`tauri::test`),
//! with the core's in-memory key store (the real Secret Service is covered by the black-box tests).

use std::sync::Arc;

use countersign_console::keys::SecretStore;
use countersign_console::{Console, Sensitive};
use countersign_console_app::{handler, Shell};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

/// A map instead of the keyring: a unit-test double, as the core's own unit tests use.
#[derive(Debug, Default)]
struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> countersign_console::Result<Option<Sensitive<String>>> {
        Ok(self.0.lock().expect("lock").get(account).cloned().map(Sensitive::new))
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> countersign_console::Result<()> {
        self.0.lock().expect("lock").insert(account.to_string(), secret.expose().clone());
        Ok(())
    }
}

fn app(dir: &std::path::Path) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let console = tauri::async_runtime::block_on(Console::open(dir, Arc::new(MemoryStore::default())))
        .expect("console");
    let app = mock_builder()
        .manage(Shell::new(console))
        .on_window_event(countersign_console_app::on_window_event)
        .invoke_handler(handler())
        // The real context: the real capabilities (ACL) decide what the window may invoke.
        .build(tauri::generate_context!(test = true))
        .expect("mock app");
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("window");
    (app, window)
}

fn invoke(w: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    invoke_from(w, "tauri://localhost", cmd, args)
}

fn invoke_from(w: &WebviewWindow<MockRuntime>, origin: &str, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: origin.parse().expect("url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().expect("json"))
}

#[test]
fn commands_reach_the_core_and_errors_carry_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_app, w) = app(dir.path());

    let key = invoke(&w, "key_info", json!({})).expect("key_info");
    assert_eq!(key["kid"].as_str().map(str::len), Some(43), "{key}");
    assert_eq!(key["jwk"]["kty"], "OKP", "{key}");
    assert!(!key.to_string().contains("\"d\""), "no private key material crosses IPC");

    assert_eq!(
        invoke(&w, "list_requests", json!({"offset": 0, "limit": 100})).expect("list"),
        json!({"rows": [], "offset": 0, "total": 0, "pending": 0, "nextExpiry": null})
    );
    let err = invoke(&w, "list_requests", json!({"offset": 0, "limit": 100_000})).expect_err("page too big");
    assert_eq!(err["code"], "invalid_input", "{err}");
    assert_eq!(invoke(&w, "list_eps", json!({})).expect("eps"), json!([]));

    let err =
        invoke(&w, "get_request", json!({"ep": "ep-nobody", "id": "nope"})).expect_err("unknown request");
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke(
        &w,
        "decide",
        json!({"args": {"ep": "ep-nobody", "id": "nope", "verdict": "approve", "reason": "", "ttlS": null, "maxUses": null, "bindingCode": null}}),
    )
    .expect_err("decision on an unknown request");
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke(
        &w,
        "decide",
        json!({"args": {"ep": "ep-nobody", "id": "x", "verdict": "maybe", "reason": "", "ttlS": null, "maxUses": null, "bindingCode": null}}),
    )
    .expect_err("unknown verdict");
    assert!(err.to_string().contains("maybe"), "{err}");

    let s = invoke(&w, "get_settings", json!({})).expect("settings");
    assert_eq!(s, json!({"notify_threshold": "medium", "notifications_paused": false}));
    let saved = invoke(
        &w,
        "set_settings",
        json!({"settings": {"notify_threshold": "high", "notifications_paused": true}}),
    )
    .expect("set settings");
    assert_eq!(saved, json!({"notify_threshold": "high", "notifications_paused": true}));
    assert_eq!(invoke(&w, "get_settings", json!({})).expect("settings"), saved);

    let v = invoke(&w, "history_verify", json!({})).expect("verify");
    assert_eq!(v["intact"], true, "{v}");
    let err = invoke(&w, "history_export", json!({"format": "xml"})).expect_err("bad format");
    assert_eq!(err["code"], "invalid_input", "{err}");
    let path = invoke(&w, "history_export", json!({"format": "jsonl"})).expect("export");
    assert!(std::path::Path::new(path.as_str().expect("path")).exists());

    let err = invoke(&w, "preview_ep", json!({"url": "not a url"})).expect_err("bad url");
    assert!(err["code"] == "invalid_input" || err["code"] == "network", "{err}");
}

#[test]
fn capabilities_allow_only_the_apps_own_commands_from_its_own_pages() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_app, w) = app(dir.path());
    // A remote page (were one ever loaded) may not call anything.
    let err = invoke_from(&w, "https://evil.example", "key_info", json!({})).expect_err("remote origin");
    assert!(err.to_string().contains("not allowed"), "{err}");
    // No plugin command is granted: no shell, fs, opener, …
    let err = invoke(&w, "plugin:shell|open", json!({"path": "https://evil.example"}))
        .expect_err("no shell plugin");
    assert!(err.to_string().contains("not allowed") || err.to_string().contains("not found"), "{err}");
}

/// An embedded reference gateway on a loopback port (no demo stream), pinned by `console`; its
/// signing key, to sign requests as it would.
fn pinned_gateway(
    console: &Console,
    data: &std::path::Path,
    name: &str,
) -> (countersign_gateway::Running, countersign_protocol::SigningKey) {
    tauri::async_runtime::block_on(async {
        let running = countersign_gateway::start(countersign_gateway::ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data: data.to_path_buf(),
            policy: None,
            policy_data: None,
            demo: None,
            config: countersign_gateway::Config { name: name.into(), ..Default::default() },
            tls: None,
        })
        .await
        .expect("gateway");
        let kid = running.app.jwks().keys[0].thumbprint();
        console.add_ep(&format!("http://{}", running.addr), &kid).await.expect("pin");
        let key = countersign_gateway::keys::load_or_create(data).expect("the gateway's key");
        (running, key)
    })
}

/// A high-tier step-up request `jti` issued by `ep`, signed with its key.
fn step_up(ep: &str, jti: &str, key: &countersign_protocol::SigningKey, purpose: &str) -> String {
    let t = countersign_gateway::app::now();
    let claims = json!({
        "iss": ep, "jti": jti, "iat": t, "exp": t + 300,
        "identity": {"workload": "spiffe://acme.example/ns/test/sa/agent", "display": "Test agent",
            "on_behalf_of": [{"sub": "owner@acme.example", "display": "Owner"}]},
        "purpose": {"code": purpose, "statement": "command test"},
        "data": {"class": "confidential", "categories": ["pii"]},
        "target": {"system": "crm", "environment": "production"},
        "actions": [{"tool": "crm", "operation": "export", "args": {"rows": "10"}, "reversible": false}],
        "policy": {"id": "test.high", "reason": "high step-up", "tier": "high", "approvals_required": 1},
    });
    countersign_protocol::sign(&claims, countersign_protocol::TYP_STEP_UP, key).expect("sign")
}

/// Finding 13 in the app: a second enforcement point reuses the id of another's request. The
/// inbox lists both, each under its enforcement point, and the app's commands open and decide
/// each one by (ep, id) — neither is made undecidable, and a decision lands on the one named.
#[test]
fn two_enforcement_points_using_one_request_id_are_each_opened_and_decided() {
    let dir = tempfile::tempdir().expect("tmp");
    let console = tauri::async_runtime::block_on(Console::open(
        &dir.path().join("profile"),
        Arc::new(MemoryStore::default()),
    ))
    .expect("console");
    let (genuine, genuine_key) = pinned_gateway(&console, &dir.path().join("a"), "Genuine");
    let (reuser, reuser_key) = pinned_gateway(&console, &dir.path().join("b"), "Reuser");
    let (a, b) = (genuine.app.ep.clone(), reuser.app.ep.clone());
    assert_ne!(a, b);
    let id = countersign_protocol::new_id();
    tauri::async_runtime::block_on(async {
        let jwt = step_up(&a, &id, &genuine_key, "genuine.export");
        console.ingest(&console.ep(&a).await.expect("ep"), Some(&id), &jwt).await.expect("ingest a");
        let jwt = step_up(&b, &id, &reuser_key, "reused.export");
        console.ingest(&console.ep(&b).await.expect("ep"), Some(&id), &jwt).await.expect("ingest b");
    });

    let app = mock_builder()
        .manage(Shell::new(console))
        .invoke_handler(handler())
        .build(tauri::generate_context!(test = true))
        .expect("mock app");
    let w = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("window");

    let inbox = invoke(&w, "list_requests", json!({"offset": 0, "limit": 100})).expect("list");
    let rows: Vec<(String, String)> = inbox["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["ep"].as_str().expect("ep").to_string(), r["id"].as_str().expect("id").to_string()))
        .collect();
    assert_eq!(rows.len(), 2, "{inbox}");
    assert!(rows.contains(&(a.clone(), id.clone())) && rows.contains(&(b.clone(), id.clone())), "{inbox}");

    for (ep, purpose) in [(&a, "genuine.export"), (&b, "reused.export")] {
        let d = invoke(&w, "get_request", json!({"ep": ep, "id": id})).expect("get_request");
        assert_eq!(d["summary"]["ep"], ep.as_str(), "{d}");
        assert_eq!(d["summary"]["id"], id.as_str(), "{d}");
        assert_eq!(d["summary"]["purposeCode"], purpose, "each EP's own request: {d}");
        assert!(d["decision"].is_null(), "{d}");
    }
    let err = invoke(&w, "get_request", json!({"ep": "ep-nobody", "id": id})).expect_err("unknown ep");
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke(&w, "get_request", json!({"id": id})).expect_err("an id alone is not an address");
    assert!(err.to_string().contains("ep"), "{err}");

    let decide = |ep: &str, verdict: &str, reason: &str| {
        invoke(
            &w,
            "decide",
            json!({"args": {"ep": ep, "id": id, "verdict": verdict, "reason": reason,
                "ttlS": null, "maxUses": null, "bindingCode": null}}),
        )
    };
    let denied = decide(&b, "deny", "not an enforcement point I know for this").expect("decide b");
    assert!(denied["outcome"].is_string() && denied["message"].is_string(), "{denied}");
    let d = invoke(&w, "get_request", json!({"ep": b, "id": id})).expect("get b");
    assert_eq!(d["decision"]["verdict"], "deny", "{d}");
    let d = invoke(&w, "get_request", json!({"ep": a, "id": id})).expect("get a");
    assert!(d["decision"].is_null(), "the decision on b's request did not touch a's: {d}");

    let approved = decide(&a, "approve", "ticket 1").expect("decide a");
    assert!(approved["outcome"].is_string() && approved["message"].is_string(), "{approved}");
    let d = invoke(&w, "get_request", json!({"ep": a, "id": id})).expect("get a");
    assert_eq!(d["decision"]["verdict"], "approve", "{d}");

    // Rotation: the genuine gateway, where this key is enrolled, takes the new key; the other,
    // where it is not, refuses it, and the report says it needs enrolling there by hand, and why.
    let key = invoke(&w, "key_info", json!({})).expect("key_info");
    let approver = countersign_gateway::store::Approver::enrol(
        key["kid"].as_str().expect("kid").into(),
        "Approver".into(),
        "alice@acme.example",
        key["jwk"].to_string(),
        countersign_gateway::app::now(),
    )
    .expect("approver");
    tauri::async_runtime::block_on(countersign_gateway::store::add_approver(
        genuine.app.db(),
        &approver,
        false,
    ))
    .expect("enrol");
    let rotation = invoke(&w, "rotate_key", json!({})).expect("rotate_key");
    assert_ne!(rotation["key"]["kid"], key["kid"], "{rotation}");
    assert_eq!(rotation["oldKid"], key["kid"], "{rotation}");
    let eps = rotation["eps"].as_array().expect("eps");
    let of = |ep: &str| eps.iter().find(|e| e["ep"] == ep).expect("every pinned EP is reported").clone();
    let (took, refused) = (of(&a), of(&b));
    assert_eq!(
        (&took["result"], &took["needsEnrolment"], &took["name"]),
        (&json!("accepted"), &json!(false), &json!("Genuine"))
    );
    assert!(took.get("status").is_none(), "{took}");
    assert_eq!(
        (&refused["result"], &refused["needsEnrolment"]),
        (&json!("refused"), &json!(true)),
        "{refused}"
    );
    assert_eq!(refused["status"], 401, "{refused}");
    drop((genuine, reuser));
}
