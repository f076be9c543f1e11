//! Calling another plugin by exec, as a runtime does: used by `bridge` to delegate to its
//! IPAM plugin (any IPAM plugin found in CNI_PATH works) and by runtimes and tests to run
//! a conflist.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use netd::child::{self, Out, Run};

use crate::types::{code, CniError, CniResult};

/// Finds a plugin binary by type in the CNI_PATH directories.
pub fn find_plugin(path: &[PathBuf], plugin_type: &str) -> Result<PathBuf, CniError> {
    if plugin_type.is_empty() || plugin_type.contains('/') {
        return Err(CniError::new(code::INVALID_CONFIG, format!("invalid plugin type {plugin_type:?}")));
    }
    path.iter()
        .map(|d| d.join(plugin_type))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, format!("failed to find plugin {plugin_type:?} in path {path:?}")))
}

/// The environment of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// CNI_COMMAND.
    pub command: String,
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_NETNS.
    pub netns: String,
    /// CNI_IFNAME.
    pub ifname: String,
    /// CNI_ARGS.
    pub args: String,
    /// CNI_PATH.
    pub path: Vec<PathBuf>,
}

/// Whether `binary` is berth's own `host-local`, installed beside the running plugin: then
/// a delegation runs it in this process (the same code the binary would run, on the same
/// store), saving an exec (~1 ms) on every ADD and DEL.
fn own_host_local(binary: &Path) -> bool {
    let dir = |p: &Path| p.parent().and_then(|d| d.canonicalize().ok());
    let same_dir = |me: &Path| match (me.parent(), binary.parent()) {
        // The kernel's path of the running binary is canonical: an equal one needs no lookup.
        (Some(a), Some(b)) if a == b => true,
        _ => dir(me) == dir(binary) && dir(binary).is_some(),
    };
    binary.file_name().is_some_and(|n| n == "host-local")
        && std::env::current_exe().ok().is_some_and(|me| me.file_name().is_some_and(|n| n != "host-local") && same_dir(&me))
}

/// The exit of a plugin as [`exec`] reports it: stdout on success, its CNI error (or a
/// synthesised one) on failure.
fn outcome(binary: &Path, success: bool, stdout: Vec<u8>, status: &dyn std::fmt::Display) -> Result<Vec<u8>, CniError> {
    if success {
        return Ok(stdout);
    }
    #[derive(serde::Deserialize)]
    struct Wire {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<Wire>(&stdout) {
        Ok(w) => Err(CniError { code: w.code, msg: w.msg, details: w.details }),
        Err(_) => Err(CniError::new(code::INTERNAL, format!("{} failed with {status} and printed no error", binary.display()))),
    }
}

/// Runs `binary` with `inv`'s environment and `stdin`; returns its stdout on success and
/// its CNI error (or a synthesised one) on failure.
pub fn exec(binary: &Path, inv: &Invocation, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let path = std::env::join_paths(&inv.path).unwrap_or_default();
    let env = [
        ("CNI_COMMAND", OsStr::new(&inv.command)),
        ("CNI_CONTAINERID", OsStr::new(&inv.container_id)),
        ("CNI_NETNS", OsStr::new(&inv.netns)),
        ("CNI_IFNAME", OsStr::new(&inv.ifname)),
        ("CNI_ARGS", OsStr::new(&inv.args)),
        ("CNI_PATH", path.as_os_str()),
    ];
    if own_host_local(binary) {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned())).collect();
        let (out, rc) = crate::skel::dispatch(&crate::plugin::host_local::HostLocal, &env, stdin.to_vec());
        return outcome(binary, rc == 0, out.into_bytes(), &format!("exit status {rc}"));
    }
    let run = Run { program: binary, args: &[], env: &env, stdin, stdout: Out::Capture, stderr: Out::Inherit };
    let out = child::run(&run).map_err(|e| CniError::new(code::IO, format!("failed to run {}: {e}", binary.display())))?;
    outcome(binary, out.status.success(), out.captured, &out.status)
}

/// Delegates `command` to the IPAM plugin named in the config, with the caller's stdin
/// and environment, as the reference plugins do.
pub fn delegate(plugin_type: &str, command: &str, args: &crate::skel::Args) -> Result<Option<CniResult>, CniError> {
    let bin = find_plugin(&args.path, plugin_type)?;
    let inv = Invocation {
        command: command.to_string(),
        container_id: args.container_id.clone(),
        netns: args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        ifname: args.ifname.clone(),
        args: args.args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";"),
        path: args.path.clone(),
    };
    let out = exec(&bin, &inv, &args.stdin)?;
    if command != "ADD" {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out).map_err(|e| CniError::new(code::DECODE, format!("failed to parse {plugin_type} result: {e}")))?;
    CniResult::from_json(&v).map(Some).map_err(|e| CniError::new(code::DECODE, format!("failed to parse {plugin_type} result: {e}")))
}
