//! The notifier against a bad notification daemon, on real parts: a private `dbus-daemon` started
//! by each test, and fake daemons that are real second connections owning
//! `org.freedesktop.Notifications` on it — one that never answers `Notify`, and ones that answer
//! and click. Needs the `dbus-daemon` binary (package dbus), no desktop session.

use std::io::{BufRead as _, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_console::notify::desktop::{Desktop, Note, ShowError, Urgency, NOTIFY_TIMEOUT};
use futures::StreamExt as _;
use tokio::sync::mpsc;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// A `dbus-daemon --session` of the test's own, listening at one socket path; killed on drop.
struct PrivateBus {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// The address it printed (with its GUID).
    address: String,
}

impl PrivateBus {
    fn start(socket: &Path) -> PrivateBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            // It says it cannot raise its fd limit when not run as root.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (package dbus)");
        let mut stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut address = String::new();
        stdout.read_line(&mut address).expect("dbus-daemon prints its address");
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        PrivateBus { child, _stdout: stdout, address: address.trim().to_owned() }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake notification daemon: a real connection that owns the name (taking it over from any
/// owner) and reads `Notify` calls; it answers them with ids from `first_id` on, or never.
struct FakeDaemon {
    conn: zbus::Connection,
    /// The unique name of each `Notify` call's sender, in order.
    calls: mpsc::UnboundedReceiver<String>,
    reader: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    async fn start(address: &str, answer_from: Option<u32>) -> FakeDaemon {
        let conn = zbus::connection::Builder::address(address)
            .name(NAME)
            .build()
            .await
            .expect("the fake daemon owns the notification name");
        let mut messages = zbus::MessageStream::from(&conn);
        let (tx, calls) = mpsc::unbounded_channel();
        let replier = conn.clone();
        let reader = tokio::spawn(async move {
            let mut next = answer_from;
            while let Some(Ok(m)) = messages.next().await {
                let h = m.header();
                if h.message_type() != zbus::message::Type::MethodCall
                    || h.member().is_none_or(|m| m.as_str() != "Notify")
                {
                    continue;
                }
                let _ = tx.send(h.sender().map(|s| s.to_string()).unwrap_or_default());
                if let Some(id) = next.as_mut() {
                    replier.reply(&h, &(*id,)).await.expect("the answer is sent");
                    *id += 1;
                }
            }
        });
        FakeDaemon { conn, calls, reader }
    }

    /// Emit `ActionInvoked(id, key)` from this daemon, to everyone.
    async fn click(&self, id: u32, key: &str) {
        emit_click(&self.conn, id, key).await;
    }

    /// The sender of the next `Notify` call it received.
    async fn next_call(&mut self) -> String {
        let call = tokio::time::timeout(Duration::from_secs(5), self.calls.recv()).await;
        call.expect("a Notify call arrives").expect("the reader runs")
    }

    /// Give up the connection, and with it the name.
    fn stop(self) {
        self.reader.abort();
    }
}

async fn emit_click(conn: &zbus::Connection, id: u32, key: &str) {
    let args = (id, key);
    let sent = conn.emit_signal(None::<&str>, PATH, NAME, "ActionInvoked", &args);
    sent.await.expect("the signal is sent");
}

fn note(id: &str) -> Note {
    Note {
        summary: format!("MEDIUM · test {id}"),
        body: "a request".into(),
        urgency: Urgency::Normal,
        request: ("ep-test".into(), id.into()),
    }
}

fn req(id: &str) -> (String, String) {
    ("ep-test".into(), id.into())
}

/// The next click heard, within a few seconds.
async fn next_click(clicks: &mut tokio::sync::broadcast::Receiver<(String, String)>) -> (String, String) {
    let heard = tokio::time::timeout(Duration::from_secs(5), clicks.recv()).await;
    heard.expect("a click is heard").expect("the click channel is open")
}

/// A daemon that takes `Notify` calls and never answers: every waiting notification returns the
/// timeout error within the bound (several at once: no task waits forever), the connection is
/// dropped, and once an answering daemon owns the name the next notification goes out over a new
/// connection, whose clicks are heard.
#[tokio::test]
async fn a_daemon_that_never_answers_costs_a_bounded_wait_and_the_next_notification_reconnects() {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let bus = PrivateBus::start(&dir.path().join("bus"));
    let mut hung = FakeDaemon::start(&bus.address, None).await;
    let desktop = Desktop::on_bus(&bus.address);
    let mut clicks = desktop.clicks();

    let t0 = Instant::now();
    let waiting = futures::future::join_all((0..3).map(|i| desktop.show(note(&format!("hung{i}")))));
    let results = tokio::time::timeout(NOTIFY_TIMEOUT + Duration::from_secs(5), waiting).await;
    let elapsed = t0.elapsed();
    let results = results.expect("a notification the daemon never answers must not wait forever");
    for r in results {
        assert!(matches!(r, Err(ShowError::NotAnswered(d)) if d == NOTIFY_TIMEOUT), "{r:?}");
    }
    assert!(elapsed >= NOTIFY_TIMEOUT, "returned before the bound: {elapsed:?}");
    assert!(elapsed < NOTIFY_TIMEOUT + Duration::from_millis(1500), "well after the bound: {elapsed:?}");
    let first = hung.next_call().await;
    for _ in 0..2 {
        assert_eq!(hung.next_call().await, first, "the three went out over one connection");
    }

    hung.stop();
    let mut answering = FakeDaemon::start(&bus.address, Some(1)).await;
    let shown = tokio::time::timeout(Duration::from_secs(5), desktop.show(note("after"))).await;
    let id = shown.expect("answered in time").expect("the answering daemon accepts it");
    let second = answering.next_call().await;
    assert_ne!(second, first, "the next notification went out over a new connection");

    answering.click(id, "default").await;
    assert_eq!(next_click(&mut clicks).await, req("after"), "clicks are heard on the new connection");
}

/// Log lines, as the test's tracing subscriber writes them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn contain(&self, s: &str) -> bool {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).contains(s)
    }
}

/// Clicks count before and after the connection is lost, with the same rules: the bus dies under
/// the notifier (its click listener says so), comes back at the same address with another daemon,
/// and the next notification's connection carries clicks again. Each time, a spoof from another
/// connection, another action of the owner, and (after the restart) the new daemon's click on an
/// id the old daemon handed out come first and open nothing: the first click heard is the real one.
#[tokio::test]
async fn clicks_come_back_with_the_next_connection_after_the_bus_is_lost() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("a temporary dir");
    let socket = dir.path().join("bus");
    // Without the GUID: the restarted bus at the same path has another one.
    let address = format!("unix:path={}", socket.display());
    let bus = PrivateBus::start(&socket);
    let daemon = FakeDaemon::start(&bus.address, Some(1)).await;
    let desktop = Desktop::on_bus(&address);
    let mut clicks = desktop.clicks();

    let stale = desktop.show(note("stale")).await.expect("accepted");
    let id = desktop.show(note("before")).await.expect("accepted");
    let spoofer = zbus::connection::Builder::address(bus.address.as_str()).build().await.expect("connects");
    emit_click(&spoofer, id, "default").await;
    daemon.click(id, "approve").await;
    daemon.click(id, "default").await;
    assert_eq!(next_click(&mut clicks).await, req("before"), "only the owner's default action counts");

    daemon.stop();
    drop(bus);
    let t0 = Instant::now();
    while !logs.contain("connection to the notification daemon ended") {
        assert!(t0.elapsed() < Duration::from_secs(5), "the listener's end is not logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let bus = PrivateBus::start(&socket);
    let daemon = FakeDaemon::start(&bus.address, Some(stale + 10)).await;
    let spoofer = zbus::connection::Builder::address(bus.address.as_str()).build().await.expect("connects");
    let shown = tokio::time::timeout(Duration::from_secs(5), desktop.show(note("after"))).await;
    let id = shown.expect("answered in time").expect("the new daemon accepts it over a new connection");
    emit_click(&spoofer, id, "default").await;
    daemon.click(id, "approve").await;
    // `stale` is still open, but under the old daemon: to this one it is another notification.
    daemon.click(stale, "default").await;
    daemon.click(id, "default").await;
    assert_eq!(next_click(&mut clicks).await, req("after"), "clicks are heard again, with the same rules");
    daemon.stop();
}
