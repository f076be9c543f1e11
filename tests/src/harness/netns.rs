//! Container network namespaces and commands run in them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shell command that fetches `url` with a 2 s bound (what the tests ask servers).
pub fn curl(url: &str) -> String {
    format!("curl -s --max-time 2 {url}")
}

/// Runs a shell command in the test host; panics with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh");
    if !out.status.success() {
        panic!("`{cmd}` failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs a shell command and returns (success, stdout+stderr).
pub fn try_sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Whether this kernel makes `kind` links: `ip link add probe0 SPEC` (SPEC holding `type
/// KIND ...`, and `link IF` where the kind needs a master) in the calling netns, removed
/// again. If not, prints `SKIP test: kernel lacks kind (why)`, the line CI's log shows
/// for every test that cannot run here.
pub fn kernel_has(kind: &str, spec: &str, test: &str) -> bool {
    let (ok, why) = try_sh(&format!("ip link add probe0 {spec} && ip link del probe0"));
    if !ok {
        println!("SKIP {test}: kernel lacks {kind} ({})", why.trim());
    }
    ok
}

/// A named netns under /run/netns (a test's "container").
#[derive(Debug, Clone)]
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates it, with `lo` up as a runtime's loopback plugin would leave it.
    pub fn new(name: &str) -> Self {
        sh(&format!("ip netns add {name} && ip -n {name} link set lo up"));
        Self { name: name.to_string() }
    }

    /// Its path, as CNI_NETNS.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs a command inside; panics on failure.
    pub fn sh(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }

    /// Runs a command inside; returns (success, output).
    pub fn try_sh(&self, cmd: &str) -> (bool, String) {
        try_sh(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }

    /// Starts a long-running command inside; it is killed when the handle drops.
    pub fn spawn(&self, cmd: &str) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", &format!("exec {cmd}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in netns");
        Proc(child)
    }

    /// Deletes it.
    pub fn delete(&self) {
        sh(&format!("ip netns delete {}", self.name));
    }
}

/// A background process, killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 20 ms until it returns true or 5 s pass.
pub fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_for_secs(what, 5, f)
}

/// [`wait_for`] with room for work that takes seconds when it has the cores (an image
/// build), which a loaded CI machine can stretch past 5 s.
pub fn wait_for_secs(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Starts busybox httpd on port 80 inside `ns`, serving a page that says `body`.
pub fn web_server(ns: &Netns, body: &str) -> Proc {
    let dir = format!("/run/berth/www-{}", ns.name);
    std::fs::create_dir_all(&dir).expect("www dir");
    std::fs::write(format!("{dir}/index.html"), body).expect("index");
    let p = ns.spawn(&format!("busybox httpd -f -p 80 -h {dir}"));
    wait_for("httpd to listen", || ns.try_sh("curl -s --max-time 1 http://127.0.0.1:80/").1.contains(body));
    p
}

/// Whether an HTTP GET of / on 127.0.0.1:`port` answers with a body containing `body`
/// (one short-timeout attempt; benchmarks poll it).
pub fn http_answers(port: u16, body: &str) -> bool {
    use std::io::{Read, Write};
    let addr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains(body)
}
