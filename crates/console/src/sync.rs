//! One sync pass (`countersign sync`, and the backfill beside each new stream): the pending list
//! read page by page, the state of local pending requests refreshed, then the outbox delivered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ep::Ep;
use crate::requests::Ingested;
use crate::{Console, ConsoleError, Result};

/// What one `sync` pass did for one enforcement point.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// The enforcement point.
    pub ep: String,
    /// Requests stored for the first time.
    pub new: usize,
    /// Their ids, in the order stored (for `watch` to announce them).
    #[serde(skip)]
    pub new_ids: Vec<String>,
    /// Requests rejected (bad signature, wrong issuer, …).
    pub rejected: usize,
    /// Requests whose state was updated.
    pub resolved: usize,
    /// Decisions delivered (accepted or refused for good).
    pub delivered: usize,
    /// Decisions still queued.
    pub queued: usize,
    /// The error that stopped this pass, if any.
    pub error: Option<String>,
}

/// One page of an enforcement point's pending list.
#[derive(Deserialize)]
struct Items {
    items: Vec<Item>,
    /// The cursor of the next page, when more remain.
    #[serde(default)]
    next: Option<String>,
}

/// Items asked for per page of the pending list (the enforcement point also ends a page at about
/// 1 MiB of tokens): backfill holds one page at a time, whatever the backlog.
pub const BACKFILL_PAGE: u32 = 200;
/// Most pending requests one backfill reads from one enforcement point; beyond that, it stops
/// with an error instead of following pages forever.
pub const BACKFILL_MAX: usize = 100_000;

#[derive(Deserialize)]
struct Item {
    id: String,
    jwt: String,
}

impl Console {
    /// One pass over every enforcement point: backfill, state refresh, outbox delivery. Errors of
    /// one enforcement point are reported in its [`SyncReport`] and do not stop the others;
    /// keyring and database errors stop the pass.
    pub async fn sync(&self) -> Result<Vec<SyncReport>> {
        let mut reports = Vec::new();
        for ep in self.eps().await? {
            let mut report = SyncReport { ep: ep.ep.clone(), ..SyncReport::default() };
            match self.sync_ep(&ep, &mut report).await {
                Ok(()) => self.ep_status(&ep.ep, None).await?,
                Err(
                    e @ (ConsoleError::Network { .. }
                    | ConsoleError::Protocol(_)
                    | ConsoleError::Untrusted(_)
                    | ConsoleError::Invalid(_)),
                ) => {
                    report.error = Some(e.to_string());
                    self.ep_status(&ep.ep, Some(e.to_string())).await?;
                }
                Err(e) => return Err(e),
            }
            reports.push(report);
        }
        self.checkpoint_or_warn().await;
        Ok(reports)
    }

    /// Backfill pending requests page by page (one page in memory at a time), refresh the state of
    /// local pending ones the enforcement point no longer lists, then deliver the outbox.
    pub async fn sync_ep(&self, ep: &Ep, report: &mut SyncReport) -> Result<()> {
        let auth = self.auth_token(&ep.ep).await?;
        let mut listed: std::collections::HashSet<String> = Default::default();
        let mut after: Option<String> = None;
        loop {
            let mut url = url::Url::parse(&ep.at("/v1/step-ups"))
                .map_err(|e| ConsoleError::network(&ep.url, format!("bad URL: {e}")))?;
            url.query_pairs_mut()
                .append_pair("state", "pending")
                .append_pair("limit", &BACKFILL_PAGE.to_string());
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after", after);
            }
            let page: Items = serde_json::from_value(self.get_json(ep, url.as_str(), &auth).await?)
                .map_err(|e| ConsoleError::network(&ep.url, format!("bad pending list: {e}")))?;
            // What of this page is stored already, as it was stored (one query per page): a
            // re-listed request with the same token is known without a signature check or a
            // transaction. A different token under a known id still goes through the checks.
            let ids = serde_json::to_string(&page.items.iter().map(|i| &i.id).collect::<Vec<_>>())
                .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
            let stored: std::collections::HashMap<String, String> = sqlx::query_as(
                "SELECT id, jwt FROM requests
                  WHERE ep = ? AND state = 'pending' AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(&ep.ep)
            .bind(&ids)
            .fetch_all(self.db())
            .await?
            .into_iter()
            .collect();
            // A page that lists no request not seen in this pass moves nothing forward: the pass
            // ends there (a hostile enforcement point could otherwise alternate two cursors forever).
            let mut moved = false;
            for item in &page.items {
                if !listed.insert(item.id.clone()) {
                    continue;
                }
                moved = true;
                if stored.get(&item.id).is_some_and(|jwt| *jwt == item.jwt) {
                    continue;
                }
                match self.ingest(ep, Some(&item.id), &item.jwt).await? {
                    Ingested::New(id) => {
                        report.new += 1;
                        report.new_ids.push(id);
                    }
                    Ingested::Rejected(_) => report.rejected += 1,
                    Ingested::Known | Ingested::Expired => {}
                }
            }
            if listed.len() > BACKFILL_MAX {
                return Err(ConsoleError::network(
                    &ep.url,
                    format!("more than {BACKFILL_MAX} pending requests listed: backfill stopped"),
                ));
            }
            match page.next {
                // A page that does not move the cursor would be asked for again forever.
                Some(next) if moved && after.as_ref() != Some(&next) => after = Some(next),
                _ => break,
            }
        }
        let local: Vec<String> =
            sqlx::query_scalar("SELECT id FROM requests WHERE ep = ? AND state = 'pending'")
                .bind(&ep.ep)
                .fetch_all(self.db())
                .await?;
        for id in local.iter().filter(|id| !listed.contains(id.as_str())) {
            let status = self.get_json(ep, &ep.at(&format!("/v1/step-ups/{id}")), &auth).await?;
            if let Some(state) = status.get("state").and_then(Value::as_str) {
                if self.apply_state(&ep.ep, id, state).await? {
                    report.resolved += 1;
                }
            }
        }
        self.deliver_outbox(ep, true, Some(&auth), report).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::MemoryStore;
    use crate::now;
    use crate::testing::count;
    use countersign_protocol::{self as protocol, Jwk, SigningKey, TYP_STEP_UP};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn inbox_pages_are_most_urgent_first_and_skip_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let ep_key: SigningKey = protocol::generate_key();
        let jwk = Jwk::from_key(&ep_key.verifying_key());
        crate::testing::pin_key(&c, &ep_key.verifying_key(), "http://127.0.0.1:1").await;
        let ep = c.eps().await.unwrap().remove(0);
        let t = now();
        for (id, tier, ttl) in [
            ("low-soon", "low", 30),
            ("crit-late", "critical", 900),
            ("crit-soon", "critical", 100),
            ("high", "high", 50),
            ("medium", "medium", 20),
            ("gone", "critical", 300),
        ] {
            let claims = json!({
                "iss": protocol::jwk::ep_id(&jwk.thumbprint()), "jti": id, "iat": t, "exp": t + ttl,
                "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
                "purpose": {"code": "p", "statement": "s"}, "data": {"class": "internal", "categories": []},
                "target": {"system": "s", "environment": "e"},
                "actions": [{"tool": "t", "args": {}, "reversible": true}],
                "policy": {"id": "x", "reason": "r", "tier": tier, "approvals_required": 1},
            });
            let jwt = protocol::sign(&claims, TYP_STEP_UP, &ep_key).unwrap();
            assert_eq!(c.ingest(&ep, Some(id), &jwt).await.unwrap(), Ingested::New(id.into()));
        }
        // One expired since it was stored: no longer in the inbox.
        sqlx::query("UPDATE requests SET exp = ? WHERE id = 'gone'")
            .bind(t - 1)
            .execute(c.db())
            .await
            .unwrap();
        let ids = |p: &crate::requests::InboxPage| p.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        let all = c.inbox_page(0, 100).await.unwrap();
        assert_eq!(ids(&all), ["crit-soon", "crit-late", "high", "medium", "low-soon"]);
        assert_eq!((all.total, all.pending, all.next_expiry), (5, 5, Some(t + 20)));
        let second = c.inbox_page(2, 2).await.unwrap();
        assert_eq!(ids(&second), ["high", "medium"]);
        assert_eq!(second.total, 5, "counts are of the whole inbox");
    }

    /// A signed request of the enforcement point whose key is `key`, and that point pinned at `url`.
    fn signed(key: &SigningKey, id: &str) -> String {
        let t = now();
        let claims = json!({
            "iss": protocol::jwk::ep_id(&Jwk::from_key(&key.verifying_key()).thumbprint()),
            "jti": id, "iat": t, "exp": t + 300,
            "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
            "purpose": {"code": "p", "statement": "s"}, "data": {"class": "internal", "categories": []},
            "target": {"system": "s", "environment": "e"},
            "actions": [{"tool": "t", "args": {}, "reversible": true}],
            "policy": {"id": "x", "reason": "r", "tier": "medium", "approvals_required": 1},
        });
        protocol::sign(&claims, TYP_STEP_UP, key).unwrap()
    }

    async fn pinned(key: &SigningKey, url: &str) -> (tempfile::TempDir, Console, Ep) {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        crate::testing::pin_key(&c, &key.verifying_key(), url).await;
        let ep = c.eps().await.unwrap().remove(0);
        (dir, c, ep)
    }

    /// Backfill follows `next` page by page, and a cursor that does not move (a broken or hostile
    /// enforcement point) ends it instead of asking for the same page forever.
    #[tokio::test]
    async fn backfill_follows_pages_and_stops_on_a_stuck_cursor() {
        let key: SigningKey = protocol::generate_key();
        let (one, two) = (signed(&key, "req-1"), signed(&key, "req-2"));
        let (url, seen) = crate::testing::serve(move |_, path, _| {
            let page = if path.contains("after=req-1") || path.contains("after=req-2") {
                json!({"items": [{"id": "req-2", "jwt": two}], "next": "req-2"})
            } else if path.starts_with("/v1/step-ups?") {
                json!({"items": [{"id": "req-1", "jwt": one}], "next": "req-1"})
            } else {
                json!({"state": "pending"})
            };
            (200, page.to_string())
        })
        .await;
        let (_d, c, ep) = pinned(&key, &url).await;
        let mut report = SyncReport::default();
        c.sync_ep(&ep, &mut report).await.unwrap();
        assert_eq!(report.new, 2);
        let paths: Vec<String> = seen.lock().unwrap().iter().map(|(_, p, _)| p.clone()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(
            paths[0].contains("state=pending") && paths[0].contains("limit=") && !paths[0].contains("after")
        );
        assert!(paths[1].ends_with("after=req-1") && paths[2].ends_with("after=req-2"), "{paths:?}");
    }

    /// Cursors that alternate (a, b, a, …) over the same requests end the pass too: a page with no
    /// request new to this pass moves nothing forward.
    #[tokio::test]
    async fn backfill_stops_when_pages_list_nothing_new() {
        let key: SigningKey = protocol::generate_key();
        let one = signed(&key, "req-1");
        let (url, seen) = crate::testing::serve(move |_, path, _| {
            let next = if path.ends_with("after=a") { "b" } else { "a" };
            let page = if path.starts_with("/v1/step-ups?") {
                json!({"items": [{"id": "req-1", "jwt": one}], "next": next})
            } else {
                json!({"state": "pending"})
            };
            (200, page.to_string())
        })
        .await;
        let (_d, c, ep) = pinned(&key, &url).await;
        let mut report = SyncReport::default();
        tokio::time::timeout(std::time::Duration::from_secs(10), c.sync_ep(&ep, &mut report))
            .await
            .expect("the pass ends")
            .unwrap();
        assert_eq!(report.new, 1);
        assert_eq!(seen.lock().unwrap().len(), 2, "the first page, then one that lists nothing new");
    }

    /// A redirect is never followed (it could lead anywhere, plain http included): the pass fails
    /// for that enforcement point and nothing is stored.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        let key: SigningKey = protocol::generate_key();
        let jwt = signed(&key, "req-1");
        let (elsewhere, reached) = crate::testing::serve(move |_, _, _| {
            (200, json!({"items": [{"id": "req-1", "jwt": jwt}]}).to_string())
        })
        .await;
        let (url, _) = crate::testing::serve(move |_, path, _| (302, format!("{elsewhere}{path}"))).await;
        let (_d, c, ep) = pinned(&key, &url).await;
        let err = c.sync_ep(&ep, &mut SyncReport::default()).await.unwrap_err();
        assert!(err.to_string().contains("302"), "{err}");
        assert!(reached.lock().unwrap().is_empty(), "the redirect was not followed");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM requests").await, 0);
    }
}
