//! The command line of `countersign-console`: its options and the profile directory.

use std::path::PathBuf;

/// Command-line options of `countersign-console`.
#[derive(Debug, Default)]
pub struct Options {
    /// Start the embedded demo gateway.
    pub demo: bool,
}

/// The options in `argv`; `--help` prints the usage and exits.
pub fn options() -> Options {
    let mut o = Options::default();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--demo" => o.demo = true,
            "--help" | "-h" => {
                println!(
                    "countersign-console [--demo]\n\n  --demo  start an embedded reference gateway in demo mode, enrol this profile's key\n          with it, pin it and subscribe\n\nThe profile is $COUNTERSIGN_HOME (shared with the `countersign` CLI)."
                );
                std::process::exit(0);
            }
            _ => {}
        }
    }
    o
}

/// The profile directory: `$COUNTERSIGN_HOME`, else the platform's default.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("COUNTERSIGN_HOME") {
        Some(d) => Ok(PathBuf::from(d)),
        None => Ok(countersign_console::profile::Profile::default_dir()?),
    }
}
