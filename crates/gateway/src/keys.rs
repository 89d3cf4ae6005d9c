//! The gateway's own Ed25519 key: created in the data directory on first start, mode 0600.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use countersign_protocol::SigningKey;

/// File name of the key seed inside the data directory.
pub const KEY_FILE: &str = "gateway.key";

/// Load the gateway key from `dir`, creating it (0600) when absent.
pub fn load_or_create(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .with_context(|| format!("{} must hold exactly 32 bytes", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = countersign_protocol::generate_key();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&key.to_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
