//! `berth volume create|ls|inspect|rm|prune`.

use serde_json::Value;

use super::format::{self, Format};
use super::VolumeCommand;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::volume;

const TITLES: [(&str, &str); 6] = [
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Anonymous", "ANONYMOUS"),
    ("CreatedAt", "CREATED AT"),
];

/// Runs one `volume` subcommand.
pub fn dispatch(paths: &Paths, cmd: VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create { label, name } => {
            let labels = super::labels(&label)?;
            let name = name.unwrap_or_else(|| crate::container::id::random(32));
            let r = volume::create(paths, &name, labels, false)?;
            println!("{}", r.name);
        }
        VolumeCommand::Ls { quiet, format } => {
            let items: Vec<Value> = volume::list(paths).iter().map(|r| r.docker(paths)).collect();
            if quiet {
                items.iter().for_each(|i| println!("{}", i["Name"].as_str().unwrap_or_default()));
                return Ok(0);
            }
            format::print_list(&Format::parse(format.as_deref()), &items, &TITLES, || {
                let mut lines = vec!["DRIVER    VOLUME NAME".to_string()];
                lines.extend(items.iter().map(|i| format!("local     {}", i["Name"].as_str().unwrap_or_default())));
                lines
            })?;
        }
        VolumeCommand::Inspect { format, names } => {
            let mut out = Vec::new();
            let mut missing = None;
            for n in &names {
                match volume::get(paths, n) {
                    Some(r) => out.push(r.docker(paths)),
                    None => missing = Some(Error::State(format!("no such volume: {n}"))),
                }
            }
            format::print_objects(&Format::parse(format.as_deref()), &out)?;
            if let Some(e) = missing {
                return Err(e);
            }
        }
        VolumeCommand::Rm { force: _, names } => {
            let mut first = None;
            for n in &names {
                match volume::remove(paths, n) {
                    Ok(()) => println!("{n}"),
                    Err(e) if first.is_none() => first = Some(e),
                    Err(e) => eprintln!("berth: {e}"),
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        VolumeCommand::Prune { all, force: _ } => {
            let gone = volume::prune(paths, all)?;
            if !gone.is_empty() {
                println!("Deleted Volumes:");
                gone.iter().for_each(|n| println!("{n}"));
            }
        }
    }
    Ok(0)
}
