//! Key rotation: a new key replaces the old one in the keyring, and every pinned enforcement
//! point receives a rotation statement signed by the old key; what each answered is reported and
//! kept in the history.

use countersign_protocol::{self as protocol, Jwk, RotationClaims, TYP_ROTATION};
use serde::Serialize;

use super::{KeyInfo, LoadedKey};
use crate::history::{self, HistoryKind};
use crate::{now, Console, Result};

impl Console {
    /// Replace the keyring key with a new one, and tell every pinned enforcement point.
    ///
    /// For each enforcement point a rotation statement (`typ: countersign-rotation+jwt`, naming the
    /// new public key) is signed with the old key while it is still in memory; then the new key
    /// replaces it in the keyring (the commit point: when that fails nothing was sent and nothing
    /// changed); then each statement is posted to `POST /v1/approvers/rotate`. An enforcement point
    /// that does not take it (unreachable, or it answered 401/409/…) is reported, and the others
    /// go on: its approver must be enrolled there again by hand. The old public key stays in the
    /// database (retired) and in the history, so what it signed stays verifiable. With no old key
    /// in the keyring (it was lost), nothing can be signed for the enforcement points.
    pub async fn rotate_key(&self) -> Result<Rotation> {
        // Fails clearly when the keyring is locked, before anything changes.
        let old = self.keyring_get().await?;
        if old.is_some() {
            // The old key signs the history so far; the new one signs right after the rotation.
            self.checkpoint(true).await?;
        }
        let fresh = protocol::generate_key();
        let new_jwk = Jwk::from_key(&fresh.verifying_key());
        let t = now();
        let mut statements = Vec::new();
        for ep in self.eps().await? {
            let statement = match &old {
                Some(old) => {
                    let claims = RotationClaims {
                        iss: old.kid(),
                        aud: ep.ep.clone(),
                        iat: t,
                        exp: t + ROTATION_LIFETIME_S,
                        jti: protocol::new_id(),
                        new_key: new_jwk.clone(),
                    };
                    Some(old.with(|k| protocol::sign(&claims, TYP_ROTATION, k))?)
                }
                None => None,
            };
            statements.push((ep, statement));
        }
        let old_kid = old.as_ref().map(LoadedKey::kid);
        drop(old);
        self.keyring_set(&fresh).await?;
        let key = LoadedKey::of(&fresh);
        drop(fresh);
        self.record_key(&key, Some(HistoryKind::KeyRotated)).await?;
        self.checkpoint(true).await?;
        let new_kid = key.kid();
        drop(key);
        let mut eps = Vec::with_capacity(statements.len());
        for (ep, statement) in statements {
            let outcome = match statement {
                Some(jwt) => self.send_rotation(&ep, jwt, &new_kid).await,
                None => RotationOutcome::NotSent {
                    reason: "the old key was not in the keyring: nothing could be signed with it".into(),
                },
            };
            eps.push(EpRotation { ep: ep.ep, url: ep.url, outcome });
        }
        // On record: which enforcement points took the new key, and which need it enrolled by hand.
        if !eps.is_empty() {
            let mut tx = self.write_tx().await?;
            for e in &eps {
                let detail = history::RotationSent {
                    old_kid: old_kid.clone(),
                    new_kid: new_kid.clone(),
                    outcome: e.outcome.clone(),
                };
                history::append(
                    &mut tx,
                    now(),
                    Some(&e.ep),
                    None,
                    &history::HistoryDetail::KeyRotationSent(detail),
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(Rotation { key: self.key_info(&new_kid).await?, old_kid, eps })
    }

    /// Post one signed rotation statement to `ep`; what it answered.
    async fn send_rotation(&self, ep: &crate::ep::Ep, jwt: String, new_kid: &str) -> RotationOutcome {
        let url = ep.at("/v1/approvers/rotate");
        let http = match self.client(ep) {
            Ok(http) => http,
            Err(e) => return RotationOutcome::NotSent { reason: e.to_string() },
        };
        let sent = http
            .post(&url)
            .header("content-type", "application/jwt")
            .body(jwt)
            .timeout(crate::CALL_TIMEOUT)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return RotationOutcome::Unreachable { error: crate::with_causes(&e) },
        };
        let status = resp.status().as_u16();
        let body = match resp.bytes().await {
            Ok(body) => body,
            Err(e) => return RotationOutcome::Unreachable { error: e.to_string() },
        };
        let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let field = |name: &str| answer.as_ref().and_then(|a| a.get(name)).and_then(|v| v.as_str());
        match (status, field("kid")) {
            (200, Some(kid)) if kid == new_kid => RotationOutcome::Accepted,
            (200, other) => RotationOutcome::Refused {
                status,
                message: format!("answered 200 naming key {other:?}, not the new key {new_kid}"),
            },
            _ => RotationOutcome::Refused {
                status,
                message: field("message")
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
            },
        }
    }
}

/// Lifetime of a rotation statement (the protocol allows at most five minutes).
pub const ROTATION_LIFETIME_S: i64 = 240;

/// What [`Console::rotate_key`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The new key, now in the keyring.
    pub key: KeyInfo,
    /// The key it replaced, when the keyring still had one.
    pub old_kid: Option<String>,
    /// For each pinned enforcement point, whether it took the rotation.
    pub eps: Vec<EpRotation>,
}

impl Rotation {
    /// The enforcement points where the new key is not enrolled: the approver must be enrolled
    /// there again by hand (`countersign key export`, then the gateway's `approvers add`).
    pub fn needs_enrolment(&self) -> impl Iterator<Item = &EpRotation> {
        self.eps.iter().filter(|e| e.needs_enrolment())
    }
}

/// One enforcement point's answer to a rotation.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EpRotation {
    /// Its `ep` id.
    pub ep: String,
    /// Its base URL.
    pub url: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: RotationOutcome,
}

impl EpRotation {
    /// Whether the new key is not enrolled there (anything but accepted): the approver must enroll
    /// it by hand.
    pub fn needs_enrolment(&self) -> bool {
        self.outcome != RotationOutcome::Accepted
    }
}

/// How a rotation statement fared at one enforcement point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RotationOutcome {
    /// It answered 200 naming the new key: the new key replaces the old one there.
    Accepted,
    /// It answered with an error (401 unknown or already rotated key, 409 new key already
    /// enrolled, 400 malformed, …), or an unexpected 200. `message` is its text (untrusted).
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// It could not be reached.
    Unreachable {
        /// Why.
        error: String,
    },
    /// No statement was sent (no old key, or the enforcement point may not be called).
    NotSent {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::keys::MemoryStore;

    /// Pin a fake enforcement point at `url` (its id derived from a fresh key, as `ep add` would).
    async fn pin(c: &Console, url: &str) -> String {
        crate::testing::pin_key(c, &protocol::generate_key().verifying_key(), url).await
    }

    /// Rotation: every pinned enforcement point gets a statement signed by the old key, for it
    /// alone, naming the new key; one that refuses or cannot be reached is reported, the others
    /// still rotate, and the new key is the keyring's.
    #[tokio::test]
    async fn rotation_statements_signed_by_the_old_key_go_to_every_ep() {
        use crate::testing::serve;
        use protocol::{jws::decode_unverified, Validation};

        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let old = c.key().await.unwrap();
        let (taking, took) = serve(|_, _, body| {
            let new = decode_unverified(body)
                .ok()
                .and_then(|c| serde_json::from_value::<Jwk>(c["new_key"].clone()).ok());
            (200, json!({"kid": new.map(|k| k.thumbprint())}).to_string())
        })
        .await;
        let (refusing, _) =
            serve(|_, _, _| (401, r#"{"error":"unauthorized","message":"unknown or rotated key"}"#.into()))
                .await;
        let (lying, _) = serve(|_, _, _| (200, r#"{"kid":"someone-else"}"#.into())).await;
        let a = pin(&c, &taking).await;
        let b = pin(&c, &refusing).await;
        let d = pin(&c, &lying).await;
        let gone = pin(&c, "http://127.0.0.1:1").await;

        let r = c.rotate_key().await.unwrap();
        assert_eq!(r.old_kid.as_deref(), Some(old.kid.as_str()));
        assert_eq!(c.key().await.unwrap().kid, r.key.kid, "the keyring holds the new key");
        let outcome = |ep: &str| r.eps.iter().find(|e| e.ep == ep).unwrap().outcome.clone();
        assert_eq!(outcome(&a), RotationOutcome::Accepted);
        assert_eq!(
            outcome(&b),
            RotationOutcome::Refused { status: 401, message: "unknown or rotated key".into() }
        );
        assert!(matches!(outcome(&d), RotationOutcome::Refused { status: 200, .. }), "{:?}", outcome(&d));
        assert!(matches!(outcome(&gone), RotationOutcome::Unreachable { .. }), "{:?}", outcome(&gone));
        assert_eq!(r.needs_enrolment().count(), 3);
        let recorded: Vec<(String, String)> =
            sqlx::query_as("SELECT ep, detail FROM history WHERE kind = ? ORDER BY seq")
                .bind(HistoryKind::KeyRotationSent.as_str())
                .fetch_all(c.db())
                .await
                .unwrap();
        assert_eq!(recorded.len(), 4, "each answer on record");
        assert!(
            recorded.iter().any(|(ep, d)| *ep == a && d.contains(r#""result":"accepted""#)),
            "{recorded:?}"
        );
        assert!(recorded.iter().any(|(ep, d)| *ep == b && d.contains(r#""status":401"#)), "{recorded:?}");

        let took = took.lock().unwrap().clone();
        assert_eq!(took.len(), 1);
        let (method, path, body) = &took[0];
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/v1/approvers/rotate"));
        let old_key = old.jwk.to_key().unwrap();
        let v = protocol::verify::<RotationClaims>(
            body,
            TYP_ROTATION,
            &old_key,
            &Validation::at(now()).audience(&a).max_lifetime(protocol::AUTH_MAX_LIFETIME_S),
        )
        .expect("signed by the old key, for this enforcement point");
        assert_eq!(v.claims.iss, old.kid);
        assert_eq!(v.claims.new_key.thumbprint(), r.key.kid);
        assert!(v.claims.exp - v.claims.iat <= 300);
        c.verify_history().await.expect("history verifies across the rotation");
    }
}
