//! The plugin skeleton: environment, stdin, command dispatch, result or error JSON on
//! stdout, exit code. Mains call [`run`]; [`dispatch`] takes env and stdin as values so
//! it can be driven in-process.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use netd::name::Name;

use crate::types::{code, version, CniError, CniResult, NetConf};

/// A CNI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// ADD.
    Add,
    /// DEL.
    Del,
    /// CHECK.
    Check,
    /// VERSION.
    Version,
    /// GC (1.1.0).
    Gc,
    /// STATUS (1.1.0).
    Status,
}

/// The invocation's environment, validated.
#[derive(Debug, Clone)]
pub struct Args {
    /// The command.
    pub command: Command,
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_NETNS, if given.
    pub netns: Option<PathBuf>,
    /// CNI_IFNAME.
    pub ifname: String,
    /// CNI_ARGS, parsed as K=V;K=V.
    pub args: Vec<(String, String)>,
    /// CNI_PATH entries, for delegating to IPAM plugins.
    pub path: Vec<PathBuf>,
    /// The raw stdin, passed unchanged to delegated plugins.
    pub stdin: Vec<u8>,
}

/// What a plugin implements; every method gets the parsed config.
pub trait Plugin {
    /// ADD: returns the result to print.
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError>;
    /// DEL: must succeed when things are already gone.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError>;
    /// CHECK.
    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError>;
    /// GC: drop everything not in `cni.dev/valid-attachments`.
    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError>;
    /// STATUS: is the plugin ready for ADDs.
    fn status(&self, _args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }
    /// The oldest spec version the plugin speaks (VERSION lists from there; an older
    /// config is refused with code 1, as the reference's).
    fn oldest(&self) -> &'static str {
        version::SUPPORTED[0]
    }
}

fn env_err(msg: String) -> CniError {
    CniError::new(code::INVALID_ENV, msg)
}

/// Parses and validates the environment for `command`; the config (stdin) is the
/// caller's to put in.
pub fn parse_env(env: &HashMap<String, String>) -> Result<Args, CniError> {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let command = match get("CNI_COMMAND").as_str() {
        "ADD" => Command::Add,
        "DEL" => Command::Del,
        "CHECK" => Command::Check,
        "VERSION" => Command::Version,
        "GC" => Command::Gc,
        "STATUS" => Command::Status,
        "" => return Err(env_err("required environment variable CNI_COMMAND is missing".into())),
        other => return Err(env_err(format!("unknown CNI_COMMAND {other:?}"))),
    };
    let needs = |cmds: &[Command]| cmds.contains(&command);
    let mut missing = Vec::new();
    for (k, cmds) in [
        ("CNI_CONTAINERID", &[Command::Add, Command::Del, Command::Check][..]),
        ("CNI_NETNS", &[Command::Add, Command::Check][..]),
        ("CNI_IFNAME", &[Command::Add, Command::Del, Command::Check][..]),
        ("CNI_PATH", &[Command::Add, Command::Del, Command::Check, Command::Gc, Command::Status][..]),
    ] {
        if needs(cmds) && get(k).is_empty() {
            missing.push(k);
        }
    }
    if !missing.is_empty() {
        return Err(env_err(format!("required environment variables missing: {}", missing.join(", "))));
    }
    let container_id = get("CNI_CONTAINERID");
    if !container_id.is_empty() {
        Name::container(&container_id).map_err(|e| env_err(format!("CNI_CONTAINERID: {e}")))?;
    }
    let ifname = get("CNI_IFNAME");
    if !ifname.is_empty() {
        Name::interface(&ifname).map_err(|e| env_err(format!("CNI_IFNAME: {e}")))?;
    }
    let netns = Some(get("CNI_NETNS")).filter(|s| !s.is_empty()).map(PathBuf::from);
    let args = get("CNI_ARGS")
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| env_err(format!("invalid CNI_ARGS pair {kv:?}")))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<Result<_, CniError>>()?;
    let path = std::env::split_paths(&get("CNI_PATH")).collect();
    Ok(Args { command, container_id, netns, ifname, args, path, stdin: Vec::new() })
}

/// Runs one invocation: returns what to print on stdout and the exit code.
pub fn dispatch(plugin: &dyn Plugin, env: &HashMap<String, String>, stdin: Vec<u8>) -> (String, i32) {
    // An error answers in the version the caller asked for; worked out only for an error.
    let fail = |e: CniError, stdin: &[u8]| {
        tracing::debug!(code = e.code, msg = %e.msg, "plugin error");
        (e.to_json(&version_hint(stdin)).to_string(), 1)
    };
    let args = match parse_env(env) {
        Ok(a) => Args { stdin, ..a },
        Err(e) => return fail(e, &stdin),
    };
    if args.command == Command::Version {
        return (version::version_info(plugin.oldest()).to_string(), 0);
    }
    let conf = match NetConf::parse(&args.stdin) {
        Ok(c) => c,
        Err(e) => return fail(e, &args.stdin),
    };
    let min = match args.command {
        Command::Check => "0.4.0",
        Command::Gc | Command::Status => "1.1.0",
        _ => plugin.oldest(),
    };
    if !version::at_least(&conf.cni_version, min) {
        let e = CniError::new(code::INCOMPATIBLE_VERSION, format!("config version {} does not allow {:?}", conf.cni_version, args.command));
        return fail(e, &args.stdin);
    }
    let out = match args.command {
        Command::Add => plugin.add(&args, &conf).map(|r| r.to_json(&conf.cni_version).to_string()),
        Command::Del => plugin.del(&args, &conf).map(|_| String::new()),
        Command::Check => plugin.check(&args, &conf).map(|_| String::new()),
        Command::Gc => plugin.gc(&args, &conf).map(|_| String::new()),
        Command::Status => plugin.status(&args, &conf).map(|_| String::new()),
        Command::Version => unreachable!("handled above"),
    };
    match out {
        Ok(s) => (s, 0),
        Err(e) => fail(e, &args.stdin),
    }
}

/// The `cniVersion` of a config, if it is one this plugin speaks; else the latest.
fn version_hint(stdin: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(rename = "cniVersion")]
        cni_version: Option<String>,
    }
    serde_json::from_slice::<Versioned>(stdin)
        .ok()
        .and_then(|v| v.cni_version)
        .filter(|v| version::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| version::LATEST.to_string())
}

/// Defines a plugin binary's C `main` (the binary says `#![no_main]`): runtimes exec a
/// plugin for every operation, and Rust's own start-up — reading /proc/self/maps for the
/// main thread's stack guard, a signal stack for overflows, checks of fds 0-2 — costs
/// ~70 µs of each exec. [`start`] does what a plugin needs of it.
#[macro_export]
macro_rules! plugin_main {
    ($plugin:expr) => {
        /// The process entry point (C `main`): runs the plugin, never returns.
        #[cfg(not(test))]
        #[no_mangle]
        pub extern "C" fn main(_argc: ::core::ffi::c_int, _argv: *const *const ::core::ffi::c_char) -> ::core::ffi::c_int {
            $crate::skel::start(&$plugin)
        }
    };
}

/// A plugin's process, entered from C `main` ([`plugin_main`]): SIGPIPE is ignored as
/// Rust's runtime would (a write to a closed pipe, a runtime's or a child's, fails instead
/// of killing the plugin halfway), and a panic becomes a CNI error instead of unwinding
/// out of `main`.
pub fn start(plugin: &dyn Plugin) -> i32 {
    // SAFETY: sets a disposition before any other thread exists; no handler is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let panicked = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> i32 { run(plugin) })) {
        Ok(rc) => return rc,
        Err(p) => p,
    };
    let what = panicked.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panicked.downcast_ref::<String>().cloned());
    let err = CniError::new(code::INTERNAL, format!("internal error: {}", what.unwrap_or_else(|| "panic".into())));
    // Not println!: stdout may be what failed (a closed pipe), and a second panic here
    // would abort.
    let _ = writeln!(std::io::stdout(), "{}", err.to_json(version::LATEST));
    1
}

/// The whole main of a plugin: logs to stderr (RUST_LOG), reads env and stdin, prints,
/// exits. Never returns.
pub fn run(plugin: &dyn Plugin) -> ! {
    netd::logging::init();
    // Only CNI_* is the protocol's; the rest of the environment is read where it is used.
    let env: HashMap<String, String> = std::env::vars_os()
        .filter(|(k, _)| k.as_encoded_bytes().starts_with(b"CNI_"))
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    // One read for any config a runtime sends (prevResult included).
    let mut stdin = Vec::with_capacity(16 * 1024);
    // VERSION's stdin (`{"cniVersion": ...}`) is read too, so a runtime writing it never
    // meets a closed pipe; only a terminal is left alone (a person typing the command).
    let is_version = env.get("CNI_COMMAND").map(String::as_str) == Some("VERSION");
    if is_version && !std::io::stdin().is_terminal() {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    } else if !is_version {
        if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
            let err = CniError::new(code::IO, format!("failed to read stdin: {e}"));
            println!("{}", err.to_json(version::LATEST));
            std::process::exit(1);
        }
    }
    let (out, rc) = dispatch(plugin, &env, stdin);
    if !out.is_empty() {
        println!("{out}");
    }
    std::process::exit(rc)
}
