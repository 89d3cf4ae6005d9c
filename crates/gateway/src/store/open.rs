//! Opening the store: a private data directory, WAL, synchronous FULL, foreign keys,
//! forward-only migrations, and the one-time normalization of older approver rows.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::write_tx;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "gateway.db";

/// Open (creating and migrating) the store in `dir`.
///
/// The directory is made 0700 and the database 0600 before SQLite opens it (SQLite gives its WAL
/// and shared-memory files the database's mode); files left by older versions are tightened too.
/// Binding codes and grants live here: no other local user may read them.
pub async fn open(dir: &Path) -> anyhow::Result<SqlitePool> {
    private_dir(dir)?;
    let path = dir.join(DB_FILE);
    private_file(&path)?;
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = dir.join(format!("{DB_FILE}{suffix}"));
        if side.exists() {
            set_mode(&side, 0o600)?;
        }
    }
    sqlx::migrate!("./migrations").run(&pool).await.context("migrating the gateway database")?;
    normalize_principals(&pool).await.context("normalizing approver principals")?;
    Ok(pool)
}

/// Create `dir` (and parents) and make it 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

/// Create `path` empty with mode 0600 when it does not exist; make an existing one 0600.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("creating {}", path.display()))?;
    set_mode(path, 0o600)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Fill in the normalized principal of approvers enrolled before principals were normalized (or
/// normalized in an older form), newest first; an older active key of a principal that already has one is retired
/// (`duplicate`), so that from now on every principal has one active key. Decisions made before
/// get the principal of the key that signed them.
async fn normalize_principals(db: &SqlitePool) -> anyhow::Result<()> {
    let mut tx = write_tx(db).await?;
    // A principal stored in an older normal form is normalized again (NULL first, so that the
    // one-active-key index never sees two rows mid-way).
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kid, principal, principal_key FROM approvers WHERE principal_key IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?;
    for (kid, principal, key) in stored {
        if countersign_protocol::principal::normalize(&principal) != key {
            sqlx::query("UPDATE approvers SET principal_key = NULL WHERE kid = ?")
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
        }
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kid, principal FROM approvers WHERE principal_key IS NULL ORDER BY created_at DESC, kid",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (kid, principal) in rows {
        let key = countersign_protocol::principal::normalize(&principal);
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM approvers WHERE principal_key = ? AND retired_at IS NULL AND kid != ?",
        )
        .bind(&key)
        .bind(&kid)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(newer) = &taken {
            tracing::warn!(kid, newer, principal = key, "retiring an older key of a principal with two");
            sqlx::query(
                "UPDATE approvers SET principal_key = ?, retired_at = ?, retired_why = 'duplicate', replaced_by = ?
                 WHERE kid = ?",
            )
            .bind(&key)
            .bind(crate::app::now())
            .bind(newer)
            .bind(&kid)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE approvers SET principal_key = ? WHERE kid = ?")
                .bind(&key)
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "UPDATE decisions SET principal = (SELECT principal_key FROM approvers WHERE kid = decisions.approver)
         WHERE principal IS NOT (SELECT principal_key FROM approvers WHERE kid = decisions.approver)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::approvers;

    /// A store from before principals were normalized may hold two keys of one person: on open,
    /// the newest stays active, the older is retired, and old decisions get their principal.
    #[tokio::test]
    async fn older_stores_keep_one_active_key_per_principal() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await.unwrap();
        for (kid, principal, at) in
            [("k1", "Alice@Acme.Example", 1), ("k2", " alice@acme.example", 2), ("k3", "bob@acme.example", 3)]
        {
            sqlx::query(
                "INSERT INTO approvers (kid, name, principal, jwk, created_at) VALUES (?, 'x', ?, '{}', ?)",
            )
            .bind(kid)
            .bind(principal)
            .bind(at)
            .execute(&db)
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO step_ups (id, workload, state, policy_id, reason, target_system, iat, exp, response) VALUES ('r', 'w', 'pending', 'p', 'r', 's', 0, 0, '{}')")
            .execute(&db).await.unwrap();
        sqlx::query("INSERT INTO decisions (jti, request_id, approver, verdict, jwt, received_at) VALUES ('j', 'r', 'k1', 'approve', 't', 0)")
            .execute(&db).await.unwrap();
        drop(db);
        let db = open(dir.path()).await.unwrap();
        let active: Vec<String> = approvers(&db, false).await.unwrap().into_iter().map(|a| a.kid).collect();
        assert_eq!(active, ["k2", "k3"]);
        let k1 = approvers(&db, true).await.unwrap().into_iter().find(|a| a.kid == "k1").unwrap();
        assert_eq!((k1.retired_why.as_deref(), k1.replaced_by.as_deref()), (Some("duplicate"), Some("k2")));
        let p: String = sqlx::query_scalar("SELECT principal FROM decisions WHERE jti = 'j'")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(p, "alice@acme.example");
    }
}
