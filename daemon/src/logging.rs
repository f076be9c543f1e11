//! Logging for every berth binary: to stderr (stdout is a CNI plugin's result), filtered
//! by RUST_LOG (default: warnings), colours only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; a second call is a no-op.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .try_init();
}
