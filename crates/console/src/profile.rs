//! The profile directory: `$COUNTERSIGN_HOME`, or the platform's data directory. It holds the
//! history database and the profile id that names this profile's keyring entry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::{ConsoleError, Result};

/// The environment variable choosing the profile directory.
pub const HOME_VAR: &str = "COUNTERSIGN_HOME";
/// The history database's file name inside the profile directory.
pub const DB_FILE: &str = "history.db";
/// The file holding the profile id (the keyring account name).
pub const ID_FILE: &str = "profile-id";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// An open profile.
#[derive(Debug)]
pub struct Profile {
    /// The profile directory.
    pub dir: PathBuf,
    /// Stable id of this profile; the keyring account of its key.
    pub id: String,
    /// The migrated history database (WAL, synchronous FULL, foreign keys on).
    pub db: SqlitePool,
    /// The one connection this process writes through in transactions: writers queue here (and
    /// wake at once) instead of in SQLite's busy handler, which sleeps in steps of milliseconds.
    /// Each transaction sets its own durability first (see [`crate::Console::write_tx`]).
    pub writer: SqlitePool,
}

impl Profile {
    /// `$COUNTERSIGN_HOME` when set, else the platform's data directory for Countersign.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(HOME_VAR).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        directories::ProjectDirs::from("dev", "Countersign", "countersign")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or_else(|| ConsoleError::Invalid(format!("no home directory found: set {HOME_VAR}")))
    }

    /// Open the profile in `dir`, creating the directory, the profile id and the database on first use.
    /// The directory is made private to its owner (0700) and the database with its WAL and
    /// shared-memory files 0600, whatever the umask, and put right when an older version left them
    /// readable by others: they hold every request, decision and reason.
    pub async fn open(dir: &Path) -> Result<Profile> {
        create_private_dir(dir)?;
        let dir = dir.canonicalize().map_err(|e| ConsoleError::profile(dir, e))?;
        let id = profile_id(&dir)?;
        let db = open_db(&dir.join(DB_FILE)).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A local file connection does not go stale: no ping before each transaction.
            .test_before_acquire(false)
            .connect_with(options(&dir.join(DB_FILE)).pragma("cache_size", WRITER_CACHE))
            .await?;
        Ok(Profile { dir, id, db, writer })
    }
}

/// Read the profile id, or create it from a hash of the canonical directory path. Kept in a file so
/// that moving the directory keeps the same keyring entry.
fn profile_id(dir: &Path) -> Result<String> {
    let file = dir.join(ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) => Err(ConsoleError::profile(&file, "empty profile id")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hash = Sha256::digest(dir.to_string_lossy().as_bytes());
            let id = format!("profile-{}", hex(&hash[..16]));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&file).map_err(|e| ConsoleError::profile(&file, e))?;
            std::io::Write::write_all(&mut f, format!("{id}\n").as_bytes())
                .map_err(|e| ConsoleError::profile(&file, e))?;
            Ok(id)
        }
        Err(e) => Err(ConsoleError::profile(&file, e)),
    }
}

/// Create `dir` (and missing parents) as a directory only its owner can enter (0700); an existing
/// one is set to 0700.
fn create_private_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ConsoleError::profile(dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| ConsoleError::profile(dir, format!("cannot make it private (0700): {e}")))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(|e| ConsoleError::profile(dir, e))
    }
}

/// Make the database file exist with mode 0600 before SQLite opens it (SQLite creates its WAL and
/// shared-memory files with the database file's mode), and set 0600 on the database and any WAL or
/// shared-memory file already there.
fn private_db_files(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ConsoleError::profile(path, e)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                Err(e) => {
                    return Err(ConsoleError::profile(&file, format!("cannot make it private (0600): {e}")))
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Open and migrate the database at `path` (created 0600; see [`Profile::open`]).
pub async fn open_db(path: &Path) -> Result<SqlitePool> {
    private_db_files(path)?;
    let db = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options(path).pragma("cache_size", READER_CACHE))
        .await?;
    MIGRATOR.run(&db).await?;
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&db).await?;
    // The WAL and shared-memory files exist now (WAL mode): left readable by others by an older
    // version, they are put right here too.
    private_db_files(path)?;
    Ok(db)
}

/// Each reading connection's page cache (`PRAGMA cache_size`, negative: KiB). SQLite's default is
/// 2 MiB per connection, and the pool's four readers filled theirs as the inbox grew: about 10 MiB of
/// the process's heap at 10,000 pending (the `memory` bench). A reader's hot pages (the inbox index,
/// one page of lines) fit in a quarter of that.
const READER_CACHE: &str = "-512";
/// The one writer's page cache: SQLite's default, 2 MiB (the tables' and indexes' right edges, where
/// every insert lands, stay in it).
const WRITER_CACHE: &str = "-2000";

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // No automatic checkpoints: one would land inside some commit, stalling it for milliseconds
        // (copy the WAL back, two fsyncs). `Console::fold_wal` does it between events instead.
        .pragma("wal_autocheckpoint", "0")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reader (however many the pool opens) keeps the small page cache, the writer the default.
    #[tokio::test]
    async fn readers_keep_a_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::open(dir.path()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut c = p.db.acquire().await.unwrap();
            let size: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut *c).await.unwrap();
            assert_eq!(size.to_string(), READER_CACHE);
            held.push(c);
        }
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&p.writer).await.unwrap();
        assert_eq!(size.to_string(), WRITER_CACHE);
    }
}
