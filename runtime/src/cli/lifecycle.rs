//! `start`, `restart`, `rename`, `stop`, `kill`, `rm`, `wait`, `pause`, `unpause`: each
//! container by name, through the container library.

use crate::container::{self, config::parse_signal};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Starts each container detached (one running already is left as it is).
pub fn start(paths: &Paths, names: &[String]) -> Result<i32> {
    let exe = super::berth_exe()?;
    for n in names {
        container::lookup(paths, n)?.start(paths, &exe)?;
        println!("{n}");
    }
    Ok(0)
}

/// Stops each container, then starts it again.
pub fn restart(paths: &Paths, names: &[String], secs: u64) -> Result<i32> {
    let exe = super::berth_exe()?;
    for n in names {
        container::lookup(paths, n)?.restart(paths, secs, &exe)?;
        println!("{n}");
    }
    Ok(0)
}

/// Gives a container a new name.
pub fn rename(paths: &Paths, name: &str, new_name: &str) -> Result<i32> {
    let c = container::lookup(paths, name)?;
    container::rename(paths, &c.id, new_name)?;
    Ok(0)
}

/// Its stop signal, then SIGKILL after `secs`.
pub fn stop(paths: &Paths, names: &[String], secs: u64) -> Result<i32> {
    for n in names {
        container::lookup(paths, n)?.stop(paths, secs)?;
        println!("{n}");
    }
    Ok(0)
}

/// Sends a signal to PID 1.
pub fn kill(paths: &Paths, names: &[String], sig: &str) -> Result<i32> {
    let sig = parse_signal(sig)?;
    for n in names {
        container::lookup(paths, n)?.kill(paths, sig)?;
        println!("{n}");
    }
    Ok(0)
}

/// Removes stopped containers (running ones too with `force`).
pub fn rm(paths: &Paths, names: &[String], force: bool, volumes: bool) -> Result<i32> {
    for n in names {
        container::lookup(paths, n)?.remove(paths, force, volumes)?;
        println!("{n}");
    }
    Ok(0)
}

/// Blocks until each container exits; prints exit codes.
pub fn wait(paths: &Paths, names: &[String]) -> Result<i32> {
    for n in names {
        let done = container::lookup(paths, n)?.wait(paths, None)?.ok_or_else(|| Error::State("wait interrupted".into()))?;
        println!("{}", done.state.exit_code.unwrap_or(0));
    }
    Ok(0)
}

/// Pauses (`on`) or unpauses containers.
pub fn pause(paths: &Paths, names: &[String], on: bool) -> Result<i32> {
    for n in names {
        let c = container::lookup(paths, n)?;
        if on {
            c.pause()?;
        } else {
            c.unpause()?;
        }
        println!("{n}");
    }
    Ok(0)
}
