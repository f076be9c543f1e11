//! A hostile registry (a fake one, in python, on loopback and on another test host):
//! credentials never leave for another origin, a plain-HTTP token realm gets nothing, an
//! oversized layer and a mismatching sha512 pin are refused — each a one-line error,
//! nothing stored.

use std::process::{Command, Stdio};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{isolated, sh, wait_for, OtherHost, Proc};

/// One script, several roles by port: 5000 a registry that wants basic auth and sends
/// uploads to 127.0.0.2:5001 (another origin, which logs what it gets); 5002 a registry
/// whose token realm is plain HTTP on the other host; 5003 a registry whose manifest
/// says 1 KiB for a layer it serves as 2 MiB, and whose pinned manifest does not match.
const FAKE: &str = r#"
import hashlib, http.server, json, sys, threading
log = open("/run/berth/fake.log", "a", buffering=1)
big = b"x" * (2 << 20)
cfg = b'{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
d = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(big), "size": 1024}]}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body=b"", headers={}):
        self.send_response(code)
        for k, v in headers.items(): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def handle_any(self):
        port = self.server.server_address[1]
        auth = self.headers.get("Authorization", "")
        log.write(f"{port} {self.command} {self.path} auth={auth}\n")
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n: self.rfile.read(n)
        if port == 5000:
            if not auth: return self.reply(401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
            if self.command == "HEAD": return self.reply(404)
            if self.command == "POST": return self.reply(202, b"", {"Location": "http://127.0.0.2:5001/upload/1"})
            return self.reply(201 if self.command == "PUT" else 200, b"{}")
        if port == 5001:
            return self.reply(201)
        if port == 5002:
            return self.reply(401, b"", {"WWW-Authenticate": 'Bearer realm="http://192.0.2.2:8000/token",service="fake"'})
        if port == 5003:
            if "/manifests/" in self.path:
                return self.reply(200, manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            if d(cfg) in self.path: return self.reply(200, cfg)
            return self.reply(200, big)
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_any
for host, port in [("127.0.0.1", 5000), ("127.0.0.2", 5001), ("127.0.0.1", 5002), ("127.0.0.1", 5003)]:
    s = http.server.ThreadingHTTPServer((host, port), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// The other host's listener: logs any connection it gets.
const REALM: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8000)); s.listen(8)
while True:
    c, a = s.accept(); open("/run/berth/realm.log", "a").write(repr(c.recv(4096)) + "\n"); c.close()
"#;

fn blobs() -> usize {
    sh("find /var/lib/berth/blobs -type f 2>/dev/null | wc -l").trim().parse().unwrap_or(0)
}

fn one_line_refusal(args: &[&str], why: &str) {
    let out = berth(args);
    assert_eq!(out.code, 125, "{args:?}: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
}

#[test]
fn a_hostile_registry_gets_no_credential_and_stores_nothing() {
    isolated(|| {
        let other = OtherHost::new();
        std::fs::write("/run/berth/fake.py", FAKE).unwrap();
        std::fs::write("/run/berth/realm.py", REALM).unwrap();
        sh(": > /run/berth/fake.log && : > /run/berth/realm.log");
        let mut fake = Command::new("python3").arg("/run/berth/fake.py").stdout(Stdio::piped()).spawn().unwrap();
        let mut ready = [0u8; 5];
        std::io::Read::read_exact(fake.stdout.as_mut().unwrap(), &mut ready).unwrap();
        let _fake = Proc(fake);
        let _realm = Proc(Command::new("ip").args(["netns", "exec", "other", "python3", "/run/berth/realm.py"]).spawn().unwrap());
        wait_for("the realm listener", || other.ns.try_sh("ss -ltn | grep -q :8000").0);
        import_busybox("page");

        // Upload redirected to another origin: the blob goes there, the password does not.
        let mut login = Command::new(berth_tests::harness::bin_dir().join("berth"))
            .args(["login", "-u", "alice", "--password-stdin", "127.0.0.1:5000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(login.stdin.as_mut().unwrap(), b"s3cret\n").unwrap();
        drop(login.stdin.take());
        assert!(login.wait().unwrap().success());
        berth(&["tag", "busybox", "127.0.0.1:5000/team/app:v1"]).ok();
        let _ = berth(&["push", "127.0.0.1:5000/team/app:v1"]);
        let log = std::fs::read_to_string("/run/berth/fake.log").unwrap();
        let uploads: Vec<&str> = log.lines().filter(|l| l.starts_with("5001 ")).collect();
        assert!(!uploads.is_empty(), "the upload never reached the other origin: {log}");
        assert!(uploads.iter().all(|l| l.ends_with("auth=")), "credentials went to another origin: {uploads:?}");
        assert!(log.lines().any(|l| l.starts_with("5000 POST") && l.contains("auth=Basic")), "{log}");

        let before = blobs();
        // A token realm on another host over plain HTTP: refused before any connection.
        one_line_refusal(&["pull", "127.0.0.1:5002/team/app:v1"], "plain HTTP: refused");
        assert_eq!(std::fs::read_to_string("/run/berth/realm.log").unwrap(), "", "the plain-HTTP realm was contacted");
        // A layer larger than its descriptor: refused at the descriptor's size.
        one_line_refusal(&["pull", "127.0.0.1:5003/team/app:v1"], "larger than the 1024 bytes its descriptor gives");
        // A sha512 pin that does not match what is served.
        let pin = format!("127.0.0.1:5003/team/app@sha512:{}", "ab".repeat(64));
        one_line_refusal(&["pull", &pin], "arrived with digest sha512:");
        assert_eq!(blobs(), before, "a refused pull stored something");
        assert!(!berth(&["images", "--format", "{{.Repository}}"]).ok().contains("5003"), "a refused pull named an image");
        assert_eq!(sh("ls /var/lib/berth/tmp | wc -l").trim(), "0", "scratch left behind");
    });
}
