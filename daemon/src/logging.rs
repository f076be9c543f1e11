//! Logging for every berth binary: to stderr (stdout is a CNI plugin's result), filtered
//! by RUST_LOG (default: warnings).
//!
//! Without RUST_LOG only warnings and errors are printed, and a runtime execs a plugin per
//! operation: there a small subscriber that formats events as plain lines and keeps no
//! spans stands in for tracing-subscriber's registry and filter, whose set-up took ~40 µs
//! of each exec. With RUST_LOG, tracing-subscriber's fmt (colours only on a terminal).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;

/// Installs the subscriber; a second call is a no-op.
pub fn init() {
    if std::env::var_os("RUST_LOG").is_none_or(|v| v.is_empty()) {
        let _ = tracing::subscriber::set_global_default(Warnings);
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .try_init();
}

/// Warnings and errors as one line each on stderr: time, level, target, message, fields.
struct Warnings;

impl Subscriber for Warnings {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= Level::WARN
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::WARN)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = format!("{} {:>5} {}:", crate::clock::rfc3339_micros(SystemTime::now()), meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Appends ` message` and ` key=value` for each field, as tracing-subscriber's fmt does.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        };
    }
}
