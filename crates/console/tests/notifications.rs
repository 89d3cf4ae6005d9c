//! Desktop notifications against the real notification daemon (dunst, on the private session of
//! `scripts/with-session.sh`): clicks come back over the one connection, and only real ones.

use std::time::Duration;

use countersign_console::notify::desktop::{Desktop, Note, Urgency};
use tokio::sync::broadcast::error::TryRecvError;

fn note(id: &str) -> Note {
    Note {
        summary: format!("MEDIUM · test {id}"),
        body: "a request".into(),
        urgency: Urgency::Normal,
        request: ("ep-test".into(), id.into()),
    }
}

fn dunstctl(args: &[&str]) {
    let status = std::process::Command::new("dunstctl")
        .args(args)
        .status()
        .expect("dunstctl (run in scripts/with-session.sh)");
    assert!(status.success(), "dunstctl {args:?}: {status}");
}

/// One test, not several: the daemon's list of shown notifications is shared.
///
/// Many notifications go out over the one connection, each with its own id. Another process on
/// the session bus emits `ActionInvoked` for a notification of ours, broadcast and then addressed to
/// us after a forged `NameOwnerChanged`: nothing opens. The daemon's
/// own click on the next notification does open its request, and it is the first click heard (a
/// spoof that got through would have come first).
#[tokio::test]
async fn only_the_daemons_own_click_opens_a_request() {
    let desktop = Desktop::default();
    let mut clicks = desktop.clicks();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(desktop.show(note(&format!("n{i}"))).await.expect("dunst accepts the notification"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each notification has its own id");
    dunstctl(&["close-all"]);
    let spoofed = desktop.show(note("spoofed")).await.expect("dunst accepts the notification");

    let other = zbus::Connection::session().await.expect("a second connection");
    other
        .emit_signal(
            None::<&str>,
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications",
            "ActionInvoked",
            &(spoofed, "default"),
        )
        .await
        .expect("the spoof is sent");
    // Addressed straight to every connection (no match rule filters those): a forged
    // `NameOwnerChanged` naming the spoofer as the daemon, then the click and a close.
    let bus = zbus::fdo::DBusProxy::new(&other).await.expect("bus proxy");
    let name: zbus::names::BusName<'_> = "org.freedesktop.Notifications".try_into().expect("name");
    let dunst = bus.get_name_owner(name).await.expect("dunst owns the name");
    let me = other.unique_name().expect("a unique name").to_string();
    for target in bus.list_names().await.expect("names") {
        if !target.starts_with(':') || target.as_str() == dunst.as_str() || target.as_str() == me {
            continue;
        }
        let target = Some(target.as_str());
        let forged = ("org.freedesktop.Notifications", dunst.as_str(), me.as_str());
        let sent = other.emit_signal(
            target,
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameOwnerChanged",
            &forged,
        );
        sent.await.expect("the forged owner change is sent");
        let path = "/org/freedesktop/Notifications";
        let iface = "org.freedesktop.Notifications";
        other.emit_signal(target, path, iface, "ActionInvoked", &(spoofed, "default")).await.expect("sent");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(clicks.try_recv(), Err(TryRecvError::Empty), "a spoofed click opened a request");

    dunstctl(&["close-all"]);
    let real = desktop.show(note("real")).await.expect("dunst accepts the notification");
    assert_ne!(real, spoofed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    dunstctl(&["action", "0"]);
    let clicked = tokio::time::timeout(Duration::from_secs(10), clicks.recv()).await;
    assert_eq!(
        clicked.expect("the daemon's click is heard").expect("click"),
        ("ep-test".to_string(), "real".to_string())
    );
    dunstctl(&["close-all"]);
}
