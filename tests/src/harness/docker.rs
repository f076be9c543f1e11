//! The real `docker` CLI and Docker's Python SDK against netd's Docker API socket.

use std::io::Write;
use std::process::{Command, Stdio};

use super::berth::Out;

/// netd's Docker API socket.
pub const DOCKER_SOCK: &str = "/run/berth/docker.sock";

/// The docker CLI: `BERTH_TEST_DOCKER` if set, else where one is installed (CI extracts
/// it from Debian's docker.io).
pub fn cli() -> Option<String> {
    let given = std::env::var("BERTH_TEST_DOCKER").ok();
    given
        .into_iter()
        .chain(["/usr/local/bin/docker".to_string(), "/usr/bin/docker".to_string()])
        .find(|p| std::path::Path::new(p).is_file())
}

/// Runs `docker ARGS` against [`DOCKER_SOCK`], with `input` on its stdin.
pub fn docker_in(args: &[&str], input: Option<&str>) -> Out {
    let bin = cli().expect("a docker CLI");
    let mut child = Command::new(bin)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{DOCKER_SOCK}"))
        .env("DOCKER_CONFIG", "/run/berth/docker-config")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker");
    if let (Some(i), Some(mut w)) = (input, child.stdin.take()) {
        let _ = w.write_all(i.as_bytes());
    }
    let out = child.wait_with_output().expect("docker output");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Runs `docker ARGS`.
pub fn docker(args: &[&str]) -> Out {
    docker_in(args, None)
}

/// A Python 3 that has Docker's SDK (`import docker`): the system's (Debian's
/// python3-docker) or the one first on PATH.
pub fn python_with_sdk() -> Option<String> {
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .map(str::to_string)
        .find(|p| Command::new(p).args(["-c", "import docker"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success()))
}

/// `docker ARGS` on a terminal of its own (script(1) gives it one, as `-it` needs) with
/// `input` typed in (printf escapes); its output without carriage returns, then `rc=CODE`.
pub fn docker_on_terminal(args: &str, input: &str) -> String {
    let dk = cli().expect("a docker CLI");
    let cmd = format!("printf '{input}' | DOCKER_HOST=unix://{DOCKER_SOCK} timeout 20 script -qec \"{dk} {args}\" /dev/null; echo rc=$?");
    super::try_sh(&cmd).1.replace('\r', "")
}
