//! End to end over WebDriver: the real desktop app (built with the bundled UI) on Xvfb, inside the
//! private session (gnome-keyring, dunst), driven through tauri-driver + WebKitWebDriver, against
//! the real gateway process. Screenshots of each screen are kept in `target/artifacts/`.

use std::path::PathBuf;

use countersign_blackbox::app::AppProcess;
use countersign_blackbox::console::Console;
use countersign_blackbox::panel::Panel;
use countersign_blackbox::webdriver::{Driver, Session};
use countersign_blackbox::x11::Display;
use countersign_blackbox::*;
use serde_json::json;

const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";

fn app_bin() -> PathBuf {
    bin("countersign-console")
}

fn artifacts() -> PathBuf {
    bin_dir().join("../artifacts")
}

fn driver(home: &std::path::Path) -> Driver {
    Driver::start(&[
        ("COUNTERSIGN_HOME", home.to_str().expect("utf-8")),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ("RUST_LOG", "info,sqlx=warn"),
    ])
}

/// One app at a time: tauri-driver drives one session, and single-instance is per bus.
static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn hostile_draft() -> serde_json::Value {
    let mut d = draft(AGENT, "test.medium");
    d["purpose"]["statement"] = json!("Send the report\u{202E}fdp.exe to finance");
    d["actions"][0]["args"] = json!({
        "note": "<img src=x onerror=\"window.__pwned=1\">",
        "html": "<script>window.__pwned=2</script>",
        "file": "invoice\u{202E}txt.exe",
    });
    d
}

/// The app's turn (one app at a time), a gateway, and a console profile enrolled with it and pinned.
async fn connected() -> (tokio::sync::MutexGuard<'static, ()>, tempfile::TempDir, Console, Gateway, Agent) {
    let one = ONE_APP.lock().await;
    let console = Console::new();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    console.connect(&gw, "approver@acme.example").await;
    (one, dir, console, gw, agent)
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_deny_and_hostile_text_in_the_real_window() {
    let (_one, _dir, console, gw, agent) = connected().await;
    let (code, hostile) = submit(&gw, &agent, &hostile_draft()).await;
    assert_eq!(code, 201, "{hostile}");
    let (_, high) = submit(&gw, &agent, &draft(AGENT, "test.high")).await;
    let hostile_id = hostile["id"].as_str().unwrap().to_string();
    let high_id = high["id"].as_str().unwrap().to_string();

    let driver = driver(console.dir());
    let s = Session::new(&driver, &app_bin(), &[]).await;
    let rows = s.wait_for("[data-testid=inbox-row]", 2, 60).await;
    assert_eq!(rows.len(), 2);
    s.screenshot(&artifacts().join("inbox.png")).await;

    // Most urgent first: the high request above the medium one.
    assert_eq!(s.attr(&rows[0], "data-id").await.as_deref(), Some(high_id.as_str()));

    // Open the hostile request: its markup is literal text, nothing ran, bidi is flagged.
    let hostile_row = s.wait_for(&format!("[data-testid=inbox-row][data-id='{hostile_id}']"), 1, 10).await;
    s.click(&hostile_row[0]).await;
    s.wait_for("[data-testid=request-detail]", 1, 10).await;
    let args = s.wait_for("[data-testid=action-args]", 1, 10).await;
    let text = s.text(&args[0]).await;
    assert!(text.contains("<img src=x onerror="), "args shown as text: {text}");
    assert!(text.contains("<script>window.__pwned=2</script>"), "args shown as text: {text}");
    let ran = s
        .script(
            "return [window.__pwned === undefined, document.querySelectorAll('img[src=\"x\"]').length, \
             Array.from(document.scripts).filter(s => !s.src).length]",
            json!([]),
        )
        .await;
    assert_eq!(ran, json!([true, 0, 0]), "no injected element exists and nothing ran");
    assert!(!s.find_all("[data-testid=warning]").await.is_empty(), "bidirectional characters are flagged");
    s.screenshot(&artifacts().join("request-hostile.png")).await;

    // Deny without a reason is refused and changes nothing.
    s.click(&s.wait_for("[data-testid=deny-button]", 1, 10).await[0]).await;
    s.click(&s.wait_for("[data-testid=confirm-button]", 1, 10).await[0]).await;
    let error = s.wait_for("[data-testid=decision-error]", 1, 10).await;
    let said = s.text(&error[0]).await;
    assert!(said.contains("A reason is required to deny."), "the UI says why: {said}");
    assert!(s.find_all("[data-testid=decision-result]").await.is_empty(), "no decision was made");
    assert_eq!(status(&gw, &agent, &hostile_id, 0).await["state"], "pending", "nothing was sent");
    s.screenshot(&artifacts().join("deny-without-reason.png")).await;
    s.keys("\u{E00C}").await; // Esc cancels

    // Approve the high request with a reason: the gateway reports it approved with a decision that verifies.
    let high_row = s.wait_for(&format!("[data-testid=inbox-row][data-id='{high_id}']"), 1, 10).await;
    s.click(&high_row[0]).await;
    s.click(&s.wait_for("[data-testid=approve-button]", 1, 10).await[0]).await;
    let reason = s.wait_for("[data-testid=reason-input]", 1, 10).await;
    s.type_text(&reason[0], "Change ticket CHG-2211 approved by the data owner").await;
    // High tier: a first confirm, then the explicit second one.
    for _ in 0..2 {
        if let Some(c) = s.find_all("[data-testid=confirm-button]").await.first() {
            s.click(c).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    let st = status(&gw, &agent, &high_id, 15).await;
    // The result shows right away: the result box, or the request's own decided state once it refreshed.
    let shown =
        s.script("return document.body.innerText", json!([])).await.as_str().unwrap_or_default().to_string();
    let delivered = s.wait_for("[data-testid=decision-result].delivered", 1, 10).await;
    let said = s.text(&delivered[0]).await;
    assert!(said.contains("Approved") && said.contains("— delivered"), "the UI shows the delivery: {said}");
    s.screenshot(&artifacts().join("approved.png")).await;
    assert_eq!(st["state"], "approved", "gateway state; the UI said: {shown}");
    let tokens = decision_tokens(&gw, &high_id);
    let decision = tokens.first().expect("decision");
    let jwk = console.jwk();
    protocol_check(decision, &jwk, &gw.ep);

    // History lists the decision.
    s.click(&s.wait_for("[data-testid=nav-history]", 1, 10).await[0]).await;
    let rows = s.wait_for("[data-testid=history-row]", 3, 20).await;
    assert!(rows.len() >= 3);
    s.screenshot(&artifacts().join("history.png")).await;
    s.click(&s.wait_for("[data-testid=nav-eps]", 1, 10).await[0]).await;
    s.wait_for("[data-testid=ep-row]", 1, 10).await;
    s.screenshot(&artifacts().join("enforcement-points.png")).await;
    s.click(&s.wait_for("[data-testid=nav-key]", 1, 10).await[0]).await;
    s.wait_for("[data-testid=key-fingerprint]", 1, 10).await;
    s.screenshot(&artifacts().join("key.png")).await;

    // On call: a new request's desktop notification, clicked (its default action, through dunst),
    // brings the app to that request — here from the Key screen.
    let _ = std::process::Command::new("dunstctl").arg("close-all").status();
    let (_, fresh) = submit(&gw, &agent, &draft(AGENT, "test.high")).await;
    let fresh_id = fresh["id"].as_str().expect("id").to_string();
    eventually(15, &format!("no notification displayed for {fresh_id}"), || async {
        notifications_displayed() > 0
    })
    .await;
    let clicked = std::process::Command::new("dunstctl").args(["action", "0"]).status().expect("dunstctl");
    assert!(clicked.success());
    // The notification names the request by its enforcement point and id.
    let ep = &gw.ep;
    s.wait_for(&format!("[data-testid=request-detail][data-ep='{ep}'][data-id='{fresh_id}']"), 1, 15).await;
    s.screenshot(&artifacts().join("notification-opened.png")).await;
    assert_eq!(
        status(&gw, &agent, &fresh_id, 0).await["state"],
        "pending",
        "a click only opens, never decides"
    );
    s.close().await;
}

/// Finding 13 in the window: another enforcement point reuses the id of the gateway's request.
/// The inbox lists both, each under its enforcement point; each opens as itself, and a decision
/// goes to the one it was made on — the genuine request is approved at the gateway.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_reused_by_another_enforcement_point_is_opened_and_decided_in_the_window() {
    let (_one, _dir, console, gw, agent) = connected().await;
    let (code, genuine) = submit(&gw, &agent, &draft(AGENT, "test.high")).await;
    assert_eq!(code, 201, "{genuine}");
    let id = genuine["id"].as_str().expect("id").to_string();
    let key = countersign_protocol::generate_key();
    let kid = countersign_protocol::jwk::kid_of(&key.verifying_key());
    let evil_ep = countersign_protocol::jwk::ep_id(&kid);
    let jwt = countersign_blackbox::console::signed_step_up(&evil_ep, &id, &key);
    let evil =
        countersign_blackbox::console::FakeEp::start(&evil_ep, &key, vec![json!({"id": id, "jwt": jwt})])
            .await;
    console.ok(&["ep", "add", &evil.url, "--trust", &kid]);
    console.json(&["sync"]);

    let driver = driver(console.dir());
    let s = Session::new(&driver, &app_bin(), &[]).await;
    let rows = s.wait_for(&format!("[data-testid=inbox-row][data-id='{id}']"), 2, 60).await;
    let mut eps = Vec::new();
    for r in &rows {
        eps.push(s.attr(r, "data-ep").await.unwrap_or_default());
    }
    eps.sort();
    let mut want = vec![gw.ep.clone(), evil_ep.clone()];
    want.sort();
    assert_eq!(eps, want, "both listed, each under its enforcement point");
    let row = |ep: &str| format!("[data-testid=inbox-row][data-ep='{ep}'][data-id='{id}']");
    let pane = |ep: &str| format!("[data-testid=request-detail][data-ep='{ep}'][data-id='{id}']");

    // The look-alike opens as itself and is denied there.
    s.click(&s.wait_for(&row(&evil_ep), 1, 10).await[0]).await;
    s.wait_for(&pane(&evil_ep), 1, 10).await;
    s.click(&s.wait_for("[data-testid=deny-button]", 1, 10).await[0]).await;
    let reason = s.wait_for("[data-testid=reason-input]", 1, 10).await;
    s.type_text(&reason[0], "Not an enforcement point this request came from").await;
    s.click(&s.wait_for("[data-testid=confirm-button]", 1, 10).await[0]).await;
    s.wait_for("[data-testid=decision-result]", 1, 15).await;
    s.screenshot(&artifacts().join("reused-id-denied.png")).await;
    assert_eq!(status(&gw, &agent, &id, 0).await["state"], "pending", "the denial went to the other EP");

    // The genuine one opens as itself and is approved at the gateway.
    s.click(&s.wait_for(&row(&gw.ep), 1, 10).await[0]).await;
    s.wait_for(&pane(&gw.ep), 1, 10).await;
    s.click(&s.wait_for("[data-testid=approve-button]", 1, 10).await[0]).await;
    let reason = s.wait_for("[data-testid=reason-input]", 1, 10).await;
    s.type_text(&reason[0], "Change ticket CHG-2212").await;
    for _ in 0..2 {
        if let Some(c) = s.find_all("[data-testid=confirm-button]").await.first() {
            s.click(c).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    assert_eq!(status(&gw, &agent, &id, 15).await["state"], "approved");
    s.wait_for("[data-testid=decision-result].delivered", 1, 10).await;
    s.screenshot(&artifacts().join("reused-id-approved.png")).await;
    s.close().await;
    drop(evil);
}

fn protocol_check(token: &str, jwk: &countersign_protocol::Jwk, ep: &str) {
    let v = countersign_protocol::verify::<countersign_protocol::DecisionClaims>(
        token,
        countersign_protocol::TYP_DECISION,
        &jwk.to_key().expect("key"),
        &countersign_protocol::Validation::at(now()).audience(ep),
    )
    .expect("the decision verifies against the console's key");
    assert_eq!(v.claims.decision, countersign_protocol::Verdict::Approve);
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_shows_live_requests() {
    let _one = ONE_APP.lock().await;
    let console = Console::new();
    let driver = driver(console.dir());
    let s = Session::new(&driver, &app_bin(), &["--demo"]).await;
    let rows = s.wait_for("[data-testid=inbox-row]", 3, 60).await;
    assert!(rows.len() >= 3);
    s.screenshot(&artifacts().join("demo-inbox.png")).await;
    s.click(&rows[0]).await;
    s.wait_for("[data-testid=request-detail]", 1, 10).await;
    s.screenshot(&artifacts().join("demo-request.png")).await;

    // A second launch hands over to the running console (which comes to the front) and exits.
    let mut second = AppProcess::spawn(console.dir(), std::process::Stdio::null());
    let exited = second.wait_exit(20).expect("a second launch kept running beside the first");
    assert!(exited.success(), "{exited}");
    assert!(!s.find_all("[data-testid=inbox-row]").await.is_empty(), "the first console still runs");
    s.close().await;
}

/// Displayed notifications, as dunst counts them.
fn notifications_displayed() -> u32 {
    let out = std::process::Command::new("dunstctl").args(["count", "displayed"]).output().expect("dunstctl");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Poll `check` every 100 ms for up to `secs`; panics with `what` when it never holds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} (waited {secs} s)");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The app's window, once it is shown (within 30 s).
async fn shown_window(x: &Display) -> u32 {
    let mut window = None;
    eventually(30, "the app's window is shown", || {
        window = x.windows_titled("Countersign").into_iter().find(|&w| x.is_shown(w));
        std::future::ready(window.is_some())
    })
    .await;
    window.expect("window")
}

#[tokio::test(flavor = "multi_thread")]
async fn tray_counts_pending_and_its_menu_pauses_opens_and_quits() {
    let (_one, _dir, console, gw, agent) = connected().await;
    for purpose in ["test.medium", "test.high"] {
        assert_eq!(submit(&gw, &agent, &draft(AGENT, purpose)).await.0, 201);
    }

    // The desktop panel is up before the app, as on a real desktop; the app's icon registers with it.
    let panel = Panel::start().await;
    let log = std::fs::File::create(console.dir().join("app.log")).expect("log file");
    let mut app = AppProcess::spawn(console.dir(), log.into());
    let tray = panel.item(60).await;

    // The count beside the icon and atop its menu.
    eventually(30, "the tray shows 2 pending", || async { tray.label().await == "2" }).await;
    let menu = tray.menu().await;
    let labels: Vec<&str> = menu.iter().filter(|e| !e.separator).map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["2 pending requests", "Open Countersign", "Pause notifications", "Quit"], "{menu:?}");
    assert!(!menu[0].enabled, "the count is a label, not an action");
    let pause = tray.entry("Pause notifications").await;
    assert_eq!(pause.checked, Some(0));

    // Pause from the tray: the check mark and the saved setting follow.
    tray.click(pause.id).await;
    eventually(10, "the pause entry is checked", || async {
        tray.entry("Pause notifications").await.checked == Some(1)
    })
    .await;
    // GTK ticks a check item itself when it is clicked, so the tick may show before the app has
    // saved the setting: wait for the saved row too.
    let saved = || {
        let out = std::process::Command::new("sqlite3")
            .arg(console.db())
            .arg("SELECT value FROM settings WHERE key = 'settings'")
            .output()
            .expect("sqlite3");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    eventually(10, "the pause is saved", || async { saved().contains("\"notifications_paused\":true") })
        .await;

    // A new request while paused: the count rises live, and no notification is shown.
    let _ = std::process::Command::new("dunstctl").arg("close-all").status();
    assert_eq!(submit(&gw, &agent, &draft(AGENT, "test.high")).await.0, 201);
    eventually(15, "the tray shows 3 pending", || async { tray.label().await == "3" }).await;
    assert!(!tray.entry("3 pending requests").await.enabled);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(notifications_displayed(), 0, "paused, yet a notification was shown");

    // Unpaused from the tray: the next request notifies again (the control for the check above).
    tray.click(pause.id).await;
    eventually(10, "the pause entry is unchecked", || async {
        tray.entry("Pause notifications").await.checked == Some(0)
    })
    .await;
    assert_eq!(submit(&gw, &agent, &draft(AGENT, "test.high")).await.0, 201);
    eventually(15, "unpaused, a new request is notified", || {
        std::future::ready(notifications_displayed() > 0)
    })
    .await;
    eventually(15, "the tray shows 4 pending", || async { tray.label().await == "4" }).await;

    // Closing the window (as its close button does) hides it to the tray: the app keeps running and
    // counting; Open from the tray shows it again; Quit ends it cleanly.
    let x = Display::open();
    let window = shown_window(&x).await;
    x.close(window);
    eventually(10, "closing hides the window", || std::future::ready(!x.is_shown(window))).await;
    assert!(x.exists(window), "hidden, not destroyed");
    assert!(app.child.try_wait().expect("try_wait").is_none(), "closing the window ended the app");
    assert_eq!(submit(&gw, &agent, &draft(AGENT, "test.high")).await.0, 201);
    eventually(15, "hidden, the tray still counts: 5 pending", || async { tray.label().await == "5" }).await;
    tray.click(tray.entry("Open Countersign").await.id).await;
    eventually(10, "Open shows the window again", || std::future::ready(x.is_shown(window))).await;
    tray.click_to_quit(tray.entry("Quit").await.id).await;
    let status = app.wait_exit(15).expect("Quit from the tray did not end the app");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_window_without_a_tray_quits() {
    // No panel on the bus: nothing to come back from, so closing must not leave an invisible app.
    let (_one, _dir, console, _gw, _agent) = connected().await;
    let mut app = AppProcess::spawn(console.dir(), std::process::Stdio::null());
    let x = Display::open();
    x.close(shown_window(&x).await);
    let status = app.wait_exit(15).expect("closing the window without a tray left the app running");
    assert!(status.success(), "{status}");
}
