//! `version`, `info`, `completion`, and the man pages the build generates.

use std::path::Path;

use clap::CommandFactory;
use serde_json::{json, Value};

use super::format::{compile, Format};
use super::Cli;
use crate::error::{Error, Result};
use crate::paths::Paths;

use crate::info::kernel;

/// Prints `value` as JSON, through a template, or as `Key: value` lines.
fn show(format: &Format, value: &Value) -> Result<i32> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Template(t) | Format::Table(t) => println!("{}", compile(t)?.render(value)?),
        Format::Default => {
            for (k, v) in value.as_object().into_iter().flatten() {
                match v {
                    Value::String(s) => println!("{k}: {s}"),
                    other => println!("{k}: {other}"),
                }
            }
        }
    }
    Ok(0)
}

/// `berth version`.
pub fn version(format: &Format) -> Result<i32> {
    let v = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": netd::docker::API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
        "Kernel": kernel(),
    });
    show(format, &v)
}

/// `berth info`: what a bug report needs.
pub fn info(paths: &Paths, format: &Format) -> Result<i32> {
    show(format, &crate::info::info(paths)?)
}

/// `berth completion SHELL`.
pub fn completion(shell: clap_complete::Shell) -> Result<i32> {
    clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
    Ok(0)
}

/// Writes `berth.1` and one page per subcommand (`berth-run.1`, `berth-network-create.1`).
pub fn man(dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut cmd = Cli::command();
    cmd.build();
    write_pages(dir, &cmd, "berth")?;
    Ok(0)
}

fn write_pages(dir: &Path, cmd: &clap::Command, name: &str) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_string())).render(&mut buf).map_err(|e| Error::io("render", name, e))?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, buf).map_err(|e| Error::io("write", &file, e))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(dir, sub, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}
