//! Desktop notifications for new verified requests: which requests notify, and what they say.
//!
//! A notification only leads to the request: it carries a single default action ("open"),
//! never an approve button (see [`desktop`] for how a click is heard). Text
//! is escaped for markup (notification daemons such as dunst render it) and hidden characters are
//! made visible. A burst from one workload (more than [`BURST_LIMIT`] requests of one tier in
//! [`BURST_WINDOW`]) becomes one summarizing notification and a flood flag, not a storm.
//!
//! Bursts are counted per workload *and tier*: a flood of low-tier requests folds only low-tier
//! notifications, so it can never silence a higher tier. Critical requests are never folded: each
//! one gets its own notification, flood or not.

pub mod desktop;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_protocol::Tier;

use self::desktop::{Desktop, Note, Urgency};
use crate::display::visible_line;
use crate::requests::RequestDetail;
use crate::{Console, ConsoleError, Result};

/// Requests of one tier from one workload within [`BURST_WINDOW`] above which they count as a flood.
pub const BURST_LIMIT: usize = 5;
/// The window of the burst count.
pub const BURST_WINDOW: Duration = Duration::from_secs(60);
/// Longest notification body, in characters.
const MAX_BODY: usize = 300;

/// Escape markup and neutralize hidden characters; cut to `max` characters. One line: a newline in
/// a request's text is shown as `<U+000A>`, so it cannot start a line of the notification's own
/// (a fake "on behalf of" line, say).
pub fn safe_text(s: &str, max: usize) -> String {
    let shown = visible_line(s);
    let mut out = String::with_capacity(shown.len());
    for (i, c) in shown.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a notification says about a request: (summary, body).
pub fn describe(v: &RequestDetail) -> (String, String) {
    let l = &v.line;
    let summary = format!("{} · {}", l.tier.as_str().to_uppercase(), safe_text(&l.agent, 60));
    let behalf: Vec<String> = l.on_behalf_of.iter().map(|d| safe_text(d, 40)).collect();
    let mut body = format!(
        "{}\n{} ({}) · {} data",
        safe_text(&l.purpose_statement, MAX_BODY),
        safe_text(&l.system, 60),
        safe_text(&l.environment, 30),
        safe_text(l.data_class.as_str(), 20),
    );
    if !behalf.is_empty() {
        body.push_str(&format!("\non behalf of {}", behalf.join(", ")));
    }
    if !v.warnings.is_empty() {
        body.push_str("\n⚠ hidden or look-alike characters flagged");
    }
    (summary, body)
}

/// What [`Notifier::request_arrived`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Below the threshold, paused, or part of a flood already summarized.
    Quiet,
    /// A notification for this request, accepted by the daemon under this id.
    Shown(u32),
    /// The workload crossed the burst limit: one summarizing notification, under this id.
    Flood(u32),
}

/// Decides which requests notify, tracks bursts per workload and tier, and shows them on the
/// desktop's notification server.
#[derive(Debug, Default)]
pub struct Notifier {
    desktop: Arc<Desktop>,
    recent: Mutex<HashMap<(String, Tier), VecDeque<Instant>>>,
}

/// Whether a request of `tier` that is number `count` of its workload and tier within the window
/// is folded into a flood (`Some(first)`, `first` when it is the one that starts the flood) or
/// notified on its own (`None`). Critical requests are never folded.
pub fn folded(tier: Tier, count: usize) -> Option<bool> {
    (tier != Tier::Critical && count > BURST_LIMIT).then_some(count == BURST_LIMIT + 1)
}

impl Notifier {
    /// A notifier with its own burst counts that shows on `desktop` (one connection shared by
    /// several notifiers).
    pub fn new(desktop: Arc<Desktop>) -> Notifier {
        Notifier { desktop, recent: Mutex::default() }
    }

    /// The notification server it shows on; its clicks open requests.
    pub fn desktop(&self) -> &Arc<Desktop> {
        &self.desktop
    }

    /// Count a request of `tier` from `workload`; the number of that workload's requests of that
    /// tier within the window, this one included.
    pub fn record(&self, workload: &str, tier: Tier) -> usize {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let q = recent.entry((workload.to_owned(), tier)).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) > BURST_WINDOW) {
            q.pop_front();
        }
        q.push_back(now);
        q.len()
    }

    /// Whether `workload` is flooding right now, at any tier.
    pub fn is_flooded(&self, workload: &str) -> bool {
        let now = Instant::now();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().any(|((w, _), q)| {
            w == workload
                && q.iter().filter(|t| now.duration_since(**t) <= BURST_WINDOW).count() > BURST_LIMIT
        })
    }

    /// A verified request `id` of enforcement point `ep` was stored: notify when the settings say
    /// so. Addressed by both, as ids are only unique per enforcement point.
    pub async fn request_arrived(&self, console: &Console, ep: &str, id: &str) -> Result<Notice> {
        let v = console.request_at(Some(ep), id).await?;
        let settings = console.settings().await?;
        let (tier, workload) = (v.line.tier, &v.line.workload);
        let count = self.record(workload, tier);
        match folded(tier, count) {
            Some(true) if !settings.notifications_paused => {
                let summary = format!("Flood: {count} {} requests in a minute", tier.as_str().to_uppercase());
                let body = format!(
                    "from {}\nFurther {} requests from this workload are flagged and not notified; \
                     higher tiers still are.",
                    safe_text(workload, 120),
                    tier.as_str()
                );
                return Ok(Notice::Flood(self.show(summary, body, Urgency::Critical, ep, id).await?));
            }
            Some(_) => return Ok(Notice::Quiet),
            None => {}
        }
        if settings.notifications_paused || tier < settings.notify_threshold {
            return Ok(Notice::Quiet);
        }
        let urgency = match tier {
            Tier::Low => Urgency::Low,
            Tier::Medium | Tier::High => Urgency::Normal,
            Tier::Critical => Urgency::Critical,
        };
        let (summary, body) = describe(&v);
        Ok(Notice::Shown(self.show(summary, body, urgency, ep, id).await?))
    }

    async fn show(&self, summary: String, body: String, urgency: Urgency, ep: &str, id: &str) -> Result<u32> {
        let note = Note { summary, body, urgency, request: (ep.to_string(), id.to_string()) };
        self.desktop
            .show(note)
            .await
            .map_err(|e| ConsoleError::Invalid(format!("notification not shown: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_hidden_characters_shown() {
        assert_eq!(safe_text("<b>pay</b> & go", 100), "&lt;b&gt;pay&lt;/b&gt; &amp; go");
        assert_eq!(safe_text("a\u{202E}b", 100), "a&lt;U+202E&gt;b");
        assert_eq!(safe_text("abcdef", 3), "abc…");
        assert_eq!(safe_text("Pay\non behalf of the CEO", 100), "Pay&lt;U+000A&gt;on behalf of the CEO");
        assert_eq!(safe_text("ls\u{FE00}\u{2800}", 100), "ls&lt;U+FE00&gt;&lt;U+2800&gt;");
    }

    #[test]
    fn bursts_become_a_flood() {
        let n = Notifier::default();
        for i in 1..=BURST_LIMIT {
            assert_eq!(n.record("w", Tier::Low), i);
        }
        assert!(!n.is_flooded("w"));
        n.record("w", Tier::Low);
        assert!(n.is_flooded("w"));
        assert!(!n.is_flooded("other"));
    }

    /// A low-tier burst folds low-tier notifications only: the next high or critical request of
    /// the same workload is counted on its own and notified.
    #[test]
    fn a_low_tier_flood_never_silences_a_higher_tier() {
        let n = Notifier::default();
        for _ in 0..50 {
            n.record("w", Tier::Low);
        }
        let low = n.record("w", Tier::Low);
        assert_eq!(folded(Tier::Low, low), Some(false), "the low flood is folded");
        for tier in [Tier::Medium, Tier::High, Tier::Critical] {
            let count = n.record("w", tier);
            assert_eq!(count, 1, "{tier:?} counts apart from the low flood");
            assert_eq!(folded(tier, count), None, "{tier:?} is notified on its own");
        }
        assert_eq!(folded(Tier::High, BURST_LIMIT + 1), Some(true), "a high flood starts its own summary");
        assert_eq!(folded(Tier::Critical, 1000), None, "critical requests are never folded");
    }
}
