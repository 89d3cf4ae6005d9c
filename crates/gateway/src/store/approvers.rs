//! Approver keys: enrolment, look-up, retirement (removal, replacement, rotation).

use sqlx::SqlitePool;

use super::write_tx;

/// An enrolled approver key.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Approver {
    /// Key id (thumbprint).
    pub kid: String,
    /// Display name.
    pub name: String,
    /// The principal as enrolled (an e-mail address).
    pub principal: String,
    /// The normalized principal: what quorum counts and self-approval compares.
    pub principal_key: String,
    /// The public JWK as JSON.
    pub jwk: String,
    /// Enrolment time.
    pub created_at: i64,
    /// When the key stopped deciding (rotated, replaced or removed); `None` while active.
    pub retired_at: Option<i64>,
    /// Why it stopped.
    pub retired_why: Option<String>,
    /// The key that took its place.
    pub replaced_by: Option<String>,
}

impl Approver {
    /// A new, active approver key for `principal` (checked and normalized with
    /// [`countersign_protocol::principal::validate`]).
    pub fn enrol(
        kid: String,
        name: String,
        principal: &str,
        jwk: String,
        created_at: i64,
    ) -> Result<Self, String> {
        let principal_key = countersign_protocol::principal::validate(principal)?;
        Ok(Approver {
            kid,
            name,
            principal: principal.trim().to_owned(),
            principal_key,
            jwk,
            created_at,
            retired_at: None,
            retired_why: None,
            replaced_by: None,
        })
    }
}

const APPROVER_COLUMNS: &str =
    "kid, name, principal, COALESCE(principal_key, '') AS principal_key, jwk, created_at, retired_at, retired_why, replaced_by";

/// An active approver key by key id.
pub async fn approver(db: &SqlitePool, kid: &str) -> sqlx::Result<Option<Approver>> {
    sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers WHERE kid = ? AND retired_at IS NULL"))
        .bind(kid)
        .fetch_optional(db)
        .await
}

/// Active approver keys, or every key ever enrolled with `all`.
pub async fn approvers(db: &SqlitePool, all: bool) -> sqlx::Result<Vec<Approver>> {
    let filter = if all { "" } else { "WHERE retired_at IS NULL" };
    sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers {filter} ORDER BY created_at, kid"))
        .fetch_all(db)
        .await
}

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The principal already has an active key and replacing it was not asked for.
    #[error(
        "{principal} already has an active key {kid}; a principal has one key (use --replace to retire it)"
    )]
    PrincipalHasKey {
        /// The normalized principal.
        principal: String,
        /// Its active key.
        kid: String,
    },
    /// The key is enrolled for another principal.
    #[error("key {kid} is already enrolled for {principal}")]
    KeyTaken {
        /// The key.
        kid: String,
        /// Its principal.
        principal: String,
    },
    /// The principal looks like another enrolled principal (same UTS #39 skeleton): two
    /// look-alike principals could be one person meeting a two-person rule.
    #[error("{principal} looks like the enrolled principal {other}; look-alike principals are refused")]
    LookAlike {
        /// The normalized principal.
        principal: String,
        /// The enrolled principal it looks like.
        other: String,
    },
    /// The key was rotated away, replaced or removed: it never decides again.
    #[error("key {0} was retired and cannot be enrolled again")]
    Retired(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Enrol an approver key for a principal (`principal_key` set by the caller). With `replace`, the
/// principal's active key, if any, is retired (`replaced`) in the same transaction. Enrolling the
/// same key for the same principal again updates the name.
pub async fn add_approver(
    db: &SqlitePool,
    a: &Approver,
    replace: bool,
) -> Result<Option<String>, EnrolError> {
    let mut tx = write_tx(db).await?;
    let existing: Option<Approver> =
        sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers WHERE kid = ?"))
            .bind(&a.kid)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(e) = existing {
        if e.retired_at.is_some() {
            return Err(EnrolError::Retired(e.kid));
        }
        if e.principal_key != a.principal_key {
            return Err(EnrolError::KeyTaken { kid: e.kid, principal: e.principal_key });
        }
        sqlx::query("UPDATE approvers SET name = ? WHERE kid = ?")
            .bind(&a.name)
            .bind(&a.kid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    let enrolled: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT principal_key FROM approvers WHERE principal_key IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?;
    if let Some(other) = enrolled.into_iter().find(|p| {
        *p != a.principal_key && countersign_protocol::principal::same_principal(p, &a.principal_key)
    }) {
        return Err(EnrolError::LookAlike { principal: a.principal_key.clone(), other });
    }
    let active: Option<String> =
        sqlx::query_scalar("SELECT kid FROM approvers WHERE principal_key = ? AND retired_at IS NULL")
            .bind(&a.principal_key)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(old) = &active {
        if !replace {
            return Err(EnrolError::PrincipalHasKey { principal: a.principal_key.clone(), kid: old.clone() });
        }
        retire(&mut tx, old, "replaced", Some(&a.kid), a.created_at).await?;
    }
    insert_approver(&mut tx, a).await?;
    tx.commit().await?;
    Ok(active)
}

async fn insert_approver(tx: &mut sqlx::SqliteConnection, a: &Approver) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO approvers (kid, name, principal, principal_key, jwk, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&a.kid)
    .bind(&a.name)
    .bind(&a.principal)
    .bind(&a.principal_key)
    .bind(&a.jwk)
    .bind(a.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn retire(
    tx: &mut sqlx::SqliteConnection,
    kid: &str,
    why: &str,
    replaced_by: Option<&str>,
    at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE approvers SET retired_at = ?, retired_why = ?, replaced_by = ? WHERE kid = ? AND retired_at IS NULL",
    )
    .bind(at)
    .bind(why)
    .bind(replaced_by)
    .bind(kid)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Remove an approver key: it is retired (`removed`), so it can no longer authenticate or decide,
/// and what it signed stays verifiable. True when an active key was removed.
pub async fn remove_approver(db: &SqlitePool, kid: &str, at: i64) -> sqlx::Result<bool> {
    let mut tx = write_tx(db).await?;
    let done = retire(&mut tx, kid, "removed", None, at).await?;
    tx.commit().await?;
    Ok(done)
}

/// Apply an accepted rotation statement: retire `old` (`rotated`) and enrol `new` for the same
/// principal, in one transaction. False when `old` is no longer active or the statement's jti was
/// seen before (nothing changes then).
pub async fn rotate_approver(
    db: &SqlitePool,
    old: &Approver,
    new: &Approver,
    jti: &str,
    jwt: &str,
) -> sqlx::Result<bool> {
    let mut tx = write_tx(db).await?;
    let fresh = sqlx::query("INSERT INTO rotations (jti, old_kid, new_kid, jwt, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(jti)
        .bind(&old.kid)
        .bind(&new.kid)
        .bind(jwt)
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if !fresh || !retire(&mut tx, &old.kid, "rotated", Some(&new.kid), new.created_at).await? {
        return Ok(false);
    }
    insert_approver(&mut tx, new).await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether any key (active or retired) has this kid.
pub async fn key_known(db: &SqlitePool, kid: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM approvers WHERE kid = ?")
        .bind(kid)
        .fetch_one(db)
        .await?
        > 0)
}
