//! `berth pull` / `berth push` over the OCI distribution API: manifests (OCI and Docker
//! v2 schema 2, and their indexes, where linux/amd64 is picked), blobs verified by digest
//! before anything is stored, layers moved in parallel, basic and bearer-token auth with
//! the credentials `berth login` stored (0600). Plain HTTP only for a registry on loopback
//! or named with `--insecure-registry`.

mod auth;
mod client;
mod pull;
mod push;
mod reference;

use std::io::Write;
use std::sync::Mutex;

use crate::error::{Error, Result};

pub use auth::{login, logout};
pub use client::verify_digest;
pub use pull::pull;
pub use push::push;
pub use reference::{plain_http_allowed, Reference};

/// Runs `f` over `items` on three threads (layers move in parallel), printing the line
/// each returns; the first error, if any, is the result.
pub(super) fn in_parallel<T: Sync, R>(
    items: &[T],
    out: &mut (dyn Write + Send),
    f: impl Fn(&T) -> (String, Result<R>) + Sync,
) -> Result<()> {
    let failures: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let printer = Mutex::new(out);
    std::thread::scope(|s| {
        for chunk in items.chunks(items.len().div_ceil(3).max(1)) {
            let (f, failures, printer) = (&f, &failures, &printer);
            s.spawn(move || {
                for item in chunk {
                    let (line, res) = f(item);
                    if let Ok(mut p) = printer.lock() {
                        let _ = writeln!(p, "{line}");
                    }
                    if let Err(e) = res {
                        if let Ok(mut v) = failures.lock() {
                            v.push(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match failures.into_inner() {
        Ok(mut v) if !v.is_empty() => Err(v.remove(0)),
        _ => Ok(()),
    }
}
