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
    assert!(key["jwk"].as_str().expect("jwk text").contains("\"OKP\""));
    assert!(!key.to_string().contains("\"d\""), "no private key material crosses IPC");

    assert_eq!(
        invoke(&w, "list_requests", json!({"offset": 0, "limit": 100})).expect("list"),
        json!({"rows": [], "offset": 0, "total": 0, "pending": 0, "nextExpiry": null})
    );
    let err = invoke(&w, "list_requests", json!({"offset": 0, "limit": 100_000})).expect_err("page too big");
    assert_eq!(err["code"], "invalid_input", "{err}");
    assert_eq!(invoke(&w, "list_eps", json!({})).expect("eps"), json!([]));

    let err = invoke(&w, "get_request", json!({"id": "nope"})).expect_err("unknown request");
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke(
        &w,
        "decide",
        json!({"args": {"id": "nope", "verdict": "approve", "reason": "", "ttlS": null, "maxUses": null, "bindingCode": null}}),
    )
    .expect_err("decision on an unknown request");
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke(
        &w,
        "decide",
        json!({"args": {"id": "x", "verdict": "maybe", "reason": "", "ttlS": null, "maxUses": null, "bindingCode": null}}),
    )
    .expect_err("unknown verdict");
    assert!(err.to_string().contains("maybe"), "{err}");

    let s = invoke(&w, "get_settings", json!({})).expect("settings");
    assert_eq!(s, json!({"notifyThreshold": "medium", "notificationsPaused": false}));
    let saved = invoke(
        &w,
        "set_settings",
        json!({"settings": {"notifyThreshold": "high", "notificationsPaused": true}}),
    )
    .expect("set settings");
    assert_eq!(saved, json!({"notifyThreshold": "high", "notificationsPaused": true}));
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
