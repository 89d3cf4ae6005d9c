//! How each answer is printed: every line terminal-safe (see [`out!`]), every field from an
//! enforcement point or an agent kept on its own line.

use std::io::Write as _;
use std::path::Path;

use countersign_console::display::{json_safe, padding, smuggled, visible, visible_line};
use countersign_console::ep::{Connection, Ep, WellKnown};
use countersign_console::history::{HistoryDetail, Reanchored, Row};
use countersign_console::keys::{KeyInfo, Rotation, RotationOutcome};
use countersign_console::outbox::Delivery;
use countersign_console::requests::RequestDetail;
use countersign_console::review::{answer_words, row_summary, ExportFormat};
use countersign_console::sync::SyncReport;
use countersign_console::watch::WatchEvent;
use countersign_console::{now, Console, ConsoleError, Result};
use countersign_protocol::{jwk::fingerprint, Action, Verdict};
use serde_json::Value;

/// `println!` that ends the process quietly when stdout is closed (e.g. piped into `head`).
/// Every line goes through [`visible`]: whatever a caller forgot, no control character (ESC, CSI
/// U+009B, BEL, backspace, CR), bidi control or invisible character reaches the terminal raw.
/// Fields from an enforcement point or an agent are passed through [`visible_line`] as well, so
/// they also stay on their own line.
macro_rules! out {
    ($($arg:tt)*) => {{
        let line = countersign_console::display::visible(&format!($($arg)*)).0;
        let mut stdout = std::io::stdout().lock();
        if std::io::Write::write_fmt(&mut stdout, format_args!("{line}\n")).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Pretty JSON, terminal-safe.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(value).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
    out!("{}", json_safe(&s));
    Ok(())
}

/// `key show`: the current key, then the retired ones (newest first).
pub fn key(key: &KeyInfo, history: &[(KeyInfo, Option<i64>)]) {
    out!("kid          {}\nfingerprint  {}\ncreated      {}", key.kid, key.fingerprint, key.created_at);
    for (old, retired) in history.iter().skip(1) {
        out!("retired      {} (until {})", old.kid, retired.unwrap_or_default());
    }
}

/// `key rotate`: the new key and what each enforcement point did with the rotation statement.
pub fn rotation(rotation: &Rotation) {
    let key = &rotation.key;
    out!("new key {} ({})", key.kid, key.fingerprint);
    for e in &rotation.eps {
        let outcome = match &e.outcome {
            RotationOutcome::Accepted => "rotated: the new key replaces the old one there".into(),
            RotationOutcome::Refused { status, message } => {
                format!("NOT rotated (HTTP {status}: {})", visible_line(message))
            }
            RotationOutcome::Unreachable { error } => {
                format!("NOT rotated (unreachable: {})", visible_line(error))
            }
            RotationOutcome::NotSent { reason } => format!("NOT rotated ({})", visible_line(reason)),
        };
        out!("{} ({}): {outcome}", visible_line(&e.ep), visible_line(&e.url));
    }
    let missing = rotation.needs_enrolment().count();
    if missing > 0 {
        out!(
            "{missing} enforcement point(s) need the new key enrolled by hand: \
             countersign key export > me.jwk, then `countersign-gateway approvers add` there"
        );
    }
}

/// `ep add` without `--trust`: what the enforcement point says about itself.
pub fn well_known(wk: &WellKnown) {
    out!("name  {}\nep    {}\nurl   {}", visible_line(&wk.name), visible_line(&wk.ep), visible_line(&wk.url));
    for (kid, _) in &wk.keys {
        out!("key   {}  fingerprint {}", visible_line(kid), visible_line(&fingerprint(kid)));
    }
}

/// The error `ep add` without `--trust` ends with: the command that pins it.
pub fn not_pinned(wk: &WellKnown, ca_cert: Option<&Path>) -> ConsoleError {
    ConsoleError::Untrusted(format!(
        "not pinned: compare the fingerprint with the gateway's operator, then run\n  countersign ep add {} --trust KID{}",
        visible_line(&wk.url),
        ca_cert.map(|f| format!(" --ca-cert {}", visible_line(&f.display().to_string()))).unwrap_or_default()
    ))
}

/// `ep add --trust`.
pub fn pinned(ep: &Ep) {
    out!(
        "pinned {} ({}) key {} ({})",
        visible_line(&ep.ep),
        visible_line(&ep.name),
        visible_line(&ep.kid),
        visible_line(&fingerprint(&ep.kid))
    );
}

/// `ep list`.
pub fn eps(eps: &[Ep], json: bool) -> Result<()> {
    if json {
        let out: Vec<Value> = eps
            .iter()
            .map(|e| {
                serde_json::json!({"ep": e.ep, "name": e.name, "url": e.url, "kid": e.kid,
                "connection": connection(e), "last_event_id": e.last_event_id})
            })
            .collect();
        return print_json(&out);
    }
    for e in eps {
        out!(
            "{}  {}  {}  key {}  {}",
            visible_line(&e.ep),
            visible_line(&e.name),
            visible_line(&e.url),
            visible_line(&fingerprint(&e.kid)),
            visible_line(&connection(e))
        );
    }
    Ok(())
}

/// An enforcement point's last known connection, in words.
fn connection(e: &Ep) -> String {
    match (e.connection(), &e.last_error, e.last_ok_at) {
        (Connection::Offline, Some(error), _) => format!("error: {error}"),
        (Connection::Connected, _, Some(t)) => format!("ok ({}s ago)", (now() - t).max(0)),
        _ => "never synced".into(),
    }
}

/// `ep remove`.
pub fn removed(ep: &Ep) {
    out!("removed {} ({})", visible_line(&ep.ep), visible_line(&ep.url));
}

/// `sync`: one line per enforcement point.
pub fn sync_reports(reports: &[SyncReport]) {
    for r in reports {
        out!(
            "{}: {} new, {} rejected, {} resolved, {} delivered, {} queued{}",
            visible_line(&r.ep),
            r.new,
            r.rejected,
            r.resolved,
            r.delivered,
            r.queued,
            r.error.as_ref().map(|e| format!(" — error: {}", visible_line(e))).unwrap_or_default()
        );
    }
}

/// `watch`: one line per event, flushed at once (a pipe reader sees it as it happens).
pub fn watch_event(event: &WatchEvent, json: bool) {
    let line =
        if json { json_safe(&serde_json::to_string(event).unwrap_or_default()) } else { describe(event) };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", visible_line(&line));
    let _ = out.flush();
}

/// A watch event in one line; every field from an enforcement point through [`visible_line`].
fn describe(event: &WatchEvent) -> String {
    let l = |s: &str| visible_line(s);
    match event {
        WatchEvent::Connected { ep } => format!("{}: connected", l(ep)),
        WatchEvent::Backfilled { ep, new, resolved } => {
            format!("{}: caught up ({new} new, {resolved} resolved)", l(ep))
        }
        WatchEvent::Request { ep, id } => {
            format!("{ep}: new request {id} (countersign show {id} --ep {ep})", ep = l(ep), id = l(id))
        }
        WatchEvent::Rejected { ep, reason } => format!("{}: REJECTED a request: {}", l(ep), l(reason)),
        WatchEvent::Resolved { ep, id, state } => format!("{}: {} is {}", l(ep), l(id), l(state)),
        WatchEvent::Disconnected { ep, error, retry_ms } => {
            format!("{}: disconnected ({}); retrying in {retry_ms} ms", l(ep), l(error))
        }
    }
}

/// `pending`: one line per request.
pub fn pending(items: &[RequestDetail]) {
    if items.is_empty() {
        out!("no pending requests");
    }
    for r in items {
        let l = &r.line;
        out!(
            "{}  {:8}  {:>5}s left  {}  {}  {}",
            visible_line(&l.id),
            l.tier.as_str(),
            r.seconds_left,
            visible_line(&l.agent),
            visible_line(&l.purpose_code),
            l.state.words()
        );
    }
}

/// `show`: everything about one request, from its typed claims.
pub fn request(r: &RequestDetail) {
    let (c, l) = (&r.claims, &r.line);
    out!("request   {}  ({})", visible_line(&l.id), visible_line(&l.ep));
    out!("state     {}", l.state.words());
    out!("tier      {} — {} approval(s) required", l.tier.as_str(), l.approvals_required);
    out!("policy    {} ({})", visible_line(&c.policy.reason), visible_line(&c.policy.id));
    out!("expires   in {}s", r.seconds_left);
    out!("agent     {} <{}>", visible_line(&c.identity.display), visible_line(&c.identity.workload));
    for (i, p) in c.identity.on_behalf_of.iter().enumerate() {
        out!("{}for {} <{}>", "  ".repeat(i + 5), visible_line(&p.display), visible_line(&p.sub));
    }
    if let Some(cred) = &c.identity.credential {
        let expires = cred.expires_at.as_deref().unwrap_or("");
        out!("credential {} (expires {})", visible_line(&cred.kind), visible_line(expires));
    }
    out!("purpose   {}: {}", visible_line(&c.purpose.code), visible_line(&c.purpose.statement));
    let cats: Vec<String> = c.data.categories.iter().map(|s| visible_line(s)).collect();
    out!("data      {} [{}]", c.data.class.as_str(), cats.join(", "));
    out!("target    {} / {}", visible_line(&c.target.system), visible_line(&c.target.environment));
    out!("actions");
    for (i, a) in c.actions.iter().enumerate() {
        action(i + 1, a);
    }
    if l.binding_required {
        out!("binding   REQUIRED: approve with --code CODE, read to you by the person the agent acts for");
    }
    if let Some(d) = &r.decision {
        let outcome = d.outcome.as_deref().unwrap_or("not delivered");
        let verdict = if d.verdict == Verdict::Deny { "deny" } else { "approve" };
        out!("decision  {verdict} ({}): {}", visible_line(outcome), visible_line(&d.reason));
    }
    for w in &r.warnings {
        out!("WARNING   {}", visible_line(&w.message()));
    }
    out!("digest    {}", visible_line(&r.digest));
}

/// One numbered action of `show`, its arguments, and what hides in them.
fn action(n: usize, a: &Action) {
    let op = a.operation.as_deref().map(|o| format!(".{}", visible_line(o))).unwrap_or_default();
    let target = a.target.as_deref().map(|t| format!(" on {}", visible_line(t))).unwrap_or_default();
    let rev = if a.reversible { "reversible" } else { "IRREVERSIBLE" };
    out!("  {n}. {}{op}{target}  ({rev})", visible_line(&a.tool));
    let args = Value::Object(a.args.clone());
    let pretty = serde_json::to_string_pretty(&args).unwrap_or_default();
    for line in visible(&pretty).0.lines() {
        out!("       {line}");
    }
    // Text smuggled in invisible characters (tag characters, variation selectors), decoded.
    let mut strings = Vec::new();
    collect_strings(&args, &mut strings);
    for hidden in strings.iter().flat_map(|s| smuggled(s)) {
        out!("       ⚠ HIDDEN TEXT in invisible characters: {hidden}");
    }
    // Text pushed out of view by padding (a terminal that does not wrap, a pager with -S).
    for n in strings.iter().filter_map(|s| padding(s)) {
        out!("       ⚠ PADDED with {n} blank characters in a row: the text continues beyond view");
    }
}

/// Every string in `v` (keys included), depth first.
fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k);
            collect_strings(x, out)
        }),
        _ => {}
    }
}

/// `approve` / `deny`: what became of the signed decision.
pub fn decided(verdict: Verdict, id: &str, delivery: &Delivery) {
    let what = if verdict == Verdict::Approve { "approved" } else { "denied" };
    match delivery {
        Delivery::Accepted { state, .. } => {
            out!("{what} {}: delivered; the request is now {}", visible_line(id), visible_line(state))
        }
        Delivery::Refused { status, answer } => {
            out!(
                "{what} {}: the enforcement point refused the decision (HTTP {status}): {}",
                visible_line(id),
                visible_line(&answer_words(answer))
            )
        }
        Delivery::Queued { error } => {
            out!(
                "{what} {}: decided, not delivered ({}); `countersign sync` retries",
                visible_line(id),
                visible_line(error)
            )
        }
    }
}

/// `history verify`.
pub fn verified(rows: i64) {
    out!("history intact: {rows} rows");
}

/// `history reanchor --yes`.
pub fn reanchored(r: Option<&Reanchored>) {
    match r {
        Some(r) => out!(
            "history re-anchored at checkpoint row {} ({} rows accepted; the keyring's anchor was at row {})",
            r.anchored,
            r.rows,
            r.previous
        ),
        None => out!("the history already matches the keyring's anchor: nothing to re-anchor"),
    }
}

/// `history checkpoint`.
pub fn checkpointed(seq: Option<i64>) {
    match seq {
        Some(seq) => out!("checkpoint signed at row {seq}"),
        None => out!("nothing new to sign"),
    }
}

/// `history export`: into a file or a pipe the export is exact; on a terminal it is shown like any
/// output.
pub async fn export(console: &Console, format: ExportFormat) -> Result<()> {
    let io = |e: std::io::Error| ConsoleError::Invalid(e.to_string());
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let mut buf = Vec::new();
        console.export_history(format, &mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        let mut out = std::io::stdout().lock();
        write!(out, "{}", visible(&text).0).map_err(io)
    } else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        console.export_history(format, &mut out).await?;
        out.flush().map_err(io)
    }
}

/// `history`: one row in one line.
pub fn row(r: &Row) {
    let detail = r.typed_detail();
    // Request-derived text: hidden characters made visible and one row stays one line (a newline
    // in a statement must not print a fake row).
    let words = visible_line(&row_summary(&detail));
    let summary = match &detail {
        HistoryDetail::RequestReceived(d) => {
            format!("{} {} {words}", d.tier.as_str(), visible_line(&d.workload))
        }
        _ => words,
    };
    let id = visible_line(r.request_id.as_deref().unwrap_or("-"));
    out!("{:>6}  {}  {:16}  {}  {}", r.seq, r.at, r.kind, id, summary);
}
