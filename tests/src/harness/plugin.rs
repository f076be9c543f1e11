//! Driving the plugin binaries exactly as a runtime does: env + stdin JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Where cargo put the plugin binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir").to_path_buf();
    for b in ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback", "berth", "netd"] {
        assert!(dir.join(b).is_file(), "plugin {b} not built in {}: run `cargo build --workspace` first", dir.display());
    }
    dir
}

/// The plugins a benchmark runs: those `make install` would install (`bench/build` sets
/// BERTH_PLUGIN_DIR to the static release build), else [`bin_dir`]'s.
pub fn plugin_dir() -> PathBuf {
    match std::env::var_os("BERTH_PLUGIN_DIR") {
        Some(d) => {
            let dir = PathBuf::from(d);
            for b in ["bridge", "host-local", "portmap", "macvlan", "ptp", "host-device"] {
                assert!(dir.join(b).is_file(), "plugin {b} not built in BERTH_PLUGIN_DIR={}: run `make build`", dir.display());
            }
            dir
        }
        None => bin_dir(),
    }
}

/// What one invocation returned.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub code: i32,
    /// stdout parsed as JSON (Null when empty).
    pub json: Value,
    /// Raw stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Outcome {
    /// Panics unless the call succeeded.
    pub fn ok(self) -> Value {
        assert_eq!(self.code, 0, "plugin failed: {}\n{}", self.stdout, self.stderr);
        self.json
    }

    /// Panics unless the call failed with `code`; returns the message.
    pub fn err(self, code: u64) -> String {
        assert_ne!(self.code, 0, "plugin unexpectedly succeeded: {}", self.stdout);
        assert_eq!(self.json["code"].as_u64(), Some(code), "wrong error: {}", self.stdout);
        self.json["msg"].as_str().unwrap_or_default().to_string()
    }
}

/// A plugin invocation builder with the common environment.
#[derive(Debug, Clone)]
pub struct Cni {
    /// CNI_PATH.
    pub path: PathBuf,
}

impl Default for Cni {
    fn default() -> Self {
        Self { path: bin_dir() }
    }
}

impl Cni {
    /// Runs plugin `ty` (from our CNI_PATH) with the given command and stdin.
    pub fn call(&self, ty: &str, command: &str, cid: &str, netns: &str, ifname: &str, stdin: &str) -> Outcome {
        self.call_in(&self.path, ty, command, cid, netns, ifname, stdin)
    }

    /// Same, with plugins from another directory (the reference plugins).
    #[allow(clippy::too_many_arguments)]
    pub fn call_in(&self, dir: &std::path::Path, ty: &str, command: &str, cid: &str, netns: &str, ifname: &str, stdin: &str) -> Outcome {
        let mut child = Command::new(dir.join(ty))
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugin");
        // A plugin may answer before it reads (a refusal from the environment alone).
        match child.stdin.take().expect("stdin").write_all(stdin.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
        let out = child.wait_with_output().expect("wait plugin");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
        };
        Outcome { code: out.status.code().unwrap_or(-1), json, stdout, stderr: String::from_utf8_lossy(&out.stderr).to_string() }
    }
}

/// The reference plugins' directory (Debian's containernetworking-plugins), if it has
/// `plugin`; otherwise prints the SKIP line for `test` and returns None.
pub fn reference(plugin: &str, test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from("/usr/lib/cni");
    if dir.join(plugin).is_file() {
        Some(dir)
    } else {
        println!("SKIP {test}: no reference {plugin} in {}", dir.display());
        None
    }
}

/// A result with what differs between two attachments of one config masked: the
/// interfaces' MACs and sandboxes, the addresses.
pub fn masked(mut r: Value) -> Value {
    for i in r["interfaces"].as_array_mut().into_iter().flatten() {
        i["mac"] = serde_json::json!("*");
        i["sandbox"] = serde_json::json!("*");
    }
    for i in r["ips"].as_array_mut().into_iter().flatten() {
        i["address"] = serde_json::json!("*");
    }
    r
}
