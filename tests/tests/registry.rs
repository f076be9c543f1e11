//! pull and push against a real registry (Debian's docker-registry, started by the test
//! on 127.0.0.1 in the test's own network namespace). Skipped, with a printed reason,
//! where it is not installed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::netns::http_answers;
use berth_tests::harness::registry::{registry, Registry, REGISTRY, STORE};
use berth_tests::harness::{isolated, sh, try_sh, wait_for};

/// A two-layer image serving `page`, named 127.0.0.1:5000/site:v1.
fn site(page: &str) {
    import_busybox("base");
    berth(&["run", "--name", "m", "busybox", "sh", "-c", &format!("echo '{page}' > /www/index.html")]).ok();
    berth(&["commit", "-c", "CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]", "m", "127.0.0.1:5000/site:v1"]).ok();
    berth(&["rm", "m"]).ok();
}

fn blobs() -> usize {
    std::fs::read_dir("/var/lib/berth/blobs/sha256").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn push_rmi_pull_run_and_a_corrupted_blob_is_refused() {
    isolated(|| {
        let Some(_reg) = registry(None) else { return };
        site("from the registry");
        let id = berth(&["images", "--no-trunc", "--format", "{{.ID}}", "127.0.0.1:5000/site"]).ok();
        let out = berth(&["push", "127.0.0.1:5000/site:v1"]).ok();
        assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
        // An index (as multi-platform images are published) naming it for linux/amd64
        // beside another platform: pull must pick linux/amd64.
        let digest = out.split("digest: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
        let size: u64 = out.split("size: ").nth(1).and_then(|r| r.trim().parse().ok()).unwrap();
        berth(&["tag", "busybox", "127.0.0.1:5000/site:other"]).ok();
        let other = berth(&["push", "127.0.0.1:5000/site:other"]).ok();
        let other_digest = other.split("digest: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
        let other_size: u64 = other.split("size: ").nth(1).and_then(|r| r.trim().parse().ok()).unwrap();
        berth(&["rmi", "127.0.0.1:5000/site:other"]).ok();
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": other_digest, "size": other_size, "platform": {"os": "linux", "architecture": "arm64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size, "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        });
        std::fs::write("/run/berth/index.json", index.to_string()).unwrap();
        let (ok, put) = try_sh("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @/run/berth/index.json http://127.0.0.1:5000/v2/site/manifests/multi");
        assert!(ok && put == "201", "index not accepted: {put}");
        assert!(berth(&["push", "127.0.0.1:5000/site:v1"]).ok().contains("Layer already exists"));
        berth(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        berth(&["rmi", "busybox"]).ok();
        assert_eq!(berth(&["images", "-q"]).ok(), "");

        let out = berth(&["pull", "127.0.0.1:5000/site:v1"]).ok();
        assert_eq!(out.matches("Download complete").count(), 2, "{out}");
        assert!(berth(&["images", "--no-trunc", "--format", "{{.ID}}"]).ok().contains(id.trim().lines().next().unwrap_or("?")));
        berth(&["run", "-d", "--name", "web", "-p", "4500:80", "127.0.0.1:5000/site:v1"]).ok();
        wait_for("the pulled image to serve", || http_answers(4500, "from the registry"));
        berth(&["rm", "-f", "web"]).ok();
        berth(&["pull", "127.0.0.1:5000/site:multi"]).ok();
        assert_eq!(berth(&["run", "--rm", "127.0.0.1:5000/site:multi", "cat", "/www/index.html"]).ok(), "from the registry\n");
        berth(&["rmi", "127.0.0.1:5000/site:multi"]).ok();

        // Corrupt the largest layer in the registry's storage: the pull is refused by
        // digest and stores nothing.
        let (_, data) = try_sh(&format!("find {STORE} -path '*blobs/sha256*' -name data -printf '%s %p\\n' | sort -n | tail -1"));
        let path = data.split_whitespace().nth(1).unwrap().to_string();
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        berth(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        let before = blobs();
        let out = berth(&["pull", "127.0.0.1:5000/site:v1"]);
        assert_eq!(out.code, 125, "{out:?}");
        assert!(out.stderr.contains("arrived with digest") && out.stderr.trim().lines().count() == 1, "{}", out.stderr);
        assert_eq!(berth(&["images", "-q"]).ok(), "", "a refused pull named an image");
        assert_eq!(blobs(), before, "a refused pull stored blobs");
        assert_eq!(std::fs::read_dir("/var/lib/berth/tmp").map(|d| d.count()).unwrap_or(0), 0, "scratch left");
    });
}

#[test]
fn an_unreachable_registry_or_unknown_image_is_one_line_and_changes_nothing() {
    isolated(|| {
        let out = berth(&["pull", "127.0.0.1:5999/nothing:here"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("registry 127.0.0.1:5999") && out.stderr.trim().lines().count() == 1, "{}", out.stderr);
        let Some(_reg) = registry(None) else { return };
        let out = berth(&["pull", "127.0.0.1:5000/nosuch:v1"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
        assert_eq!(berth(&["images", "-q"]).ok(), "");
    });
}

#[test]
fn login_stores_credentials_0600_and_push_needs_them() {
    isolated(|| {
        let Some(_reg) = registry(Some(("tester", "s3cret"))) else { return };
        site("authenticated");
        let out = berth(&["push", "127.0.0.1:5000/site:v1"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("berth login 127.0.0.1:5000"), "{}", out.stderr);
        let out = berth(&["login", "-u", "tester", "-p", "wrong", "127.0.0.1:5000"]);
        assert_eq!(out.code, 125, "{out:?}");
        assert!(!Path::new("/var/lib/berth/auth.json").exists(), "failed login stored credentials");
        let (ok, out) = try_sh(&format!(
            "echo s3cret | {} login -u tester --password-stdin 127.0.0.1:5000",
            berth_tests::harness::bin_dir().join("berth").display()
        ));
        assert!(ok && out.contains("Login Succeeded"), "{out}");
        let mode = std::fs::metadata("/var/lib/berth/auth.json").unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(berth(&["push", "127.0.0.1:5000/site:v1"]).ok().contains("Pushed"));
        berth(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        berth(&["pull", "127.0.0.1:5000/site:v1"]).ok();
        berth(&["logout", "127.0.0.1:5000"]).ok();
        berth(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        assert_eq!(berth(&["pull", "127.0.0.1:5000/site:v1"]).code, 125, "pulled without credentials");
    });
}

/// A token server as the distribution spec describes one: basic credentials in, a JWT
/// (RS256, signed by openssl with a key whose certificate the registry trusts) out,
/// granting the scope asked for.
const TOKEN_SERVER: &str = r#"
import base64, json, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
cert = open('/run/berth/token.der', 'rb').read()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        want = 'Basic ' + base64.b64encode(b'tester:s3cret').decode()
        if self.headers.get('Authorization') != want:
            self.send_response(401); self.end_headers(); return
        q = parse_qs(urlparse(self.path).query)
        access = []
        for s in q.get('scope', []):
            t, name, actions = s.split(':', 2)
            access.append({'type': t, 'name': name, 'actions': actions.split(',')})
        now = int(time.time())
        head = {'typ': 'JWT', 'alg': 'RS256', 'x5c': [base64.b64encode(cert).decode()]}
        claims = {'iss': 'berth-test-issuer', 'sub': 'tester', 'aud': q.get('service', [''])[0],
                  'exp': now + 300, 'nbf': now - 10, 'iat': now, 'jti': str(now), 'access': access}
        signing = b64(json.dumps(head).encode()) + '.' + b64(json.dumps(claims).encode())
        sig = subprocess.run(['openssl', 'dgst', '-sha256', '-sign', '/run/berth/token.key'],
                             input=signing.encode(), capture_output=True, check=True).stdout
        body = json.dumps({'token': signing + '.' + b64(sig)}).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json'); self.end_headers()
        self.wfile.write(body)
HTTPServer(('127.0.0.1', 5001), H).serve_forever()
"#;

#[test]
fn bearer_token_auth_through_a_token_server() {
    isolated(|| {
        if !Path::new(REGISTRY).exists() || !try_sh("command -v openssl").0 {
            println!("SKIP token auth: docker-registry or openssl not installed");
            return;
        }
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout /run/berth/token.key -out /run/berth/token.crt -days 1 -subj /CN=berth-test-token 2>/dev/null");
        sh("openssl x509 -in /run/berth/token.crt -outform der -out /run/berth/token.der");
        std::fs::write("/run/berth/token_server.py", TOKEN_SERVER).unwrap();
        let _tokens = Registry(
            Command::new("python3").arg("/run/berth/token_server.py").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
        );
        wait_for("the token server", || try_sh("curl -s -o /dev/null http://127.0.0.1:5001/token").0);
        std::fs::write(
            "/run/berth/registry.yml",
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {STORE}\nhttp:\n  addr: 127.0.0.1:5000\nlog:\n  level: error\n\
                 auth:\n  token:\n    realm: http://127.0.0.1:5001/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: /run/berth/token.crt\n"
            ),
        )
        .unwrap();
        let _reg = Registry(
            Command::new(REGISTRY).args(["serve", "/run/berth/registry.yml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
        );
        wait_for("the registry to listen", || try_sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/v2/").1 == "401");
        site("behind a token");
        let out = berth(&["push", "127.0.0.1:5000/site:v1"]);
        assert_eq!(out.code, 125, "pushed without credentials: {out:?}");
        berth(&["login", "-u", "tester", "-p", "s3cret", "127.0.0.1:5000"]).ok();
        assert_eq!(berth(&["push", "127.0.0.1:5000/site:v1"]).ok().matches("Pushed").count(), 2);
        berth(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        berth(&["pull", "127.0.0.1:5000/site:v1"]).ok();
        berth(&["run", "-d", "--name", "web", "-p", "4501:80", "127.0.0.1:5000/site:v1"]).ok();
        wait_for("the pulled image to serve", || http_answers(4501, "behind a token"));
        berth(&["rm", "-f", "web"]).ok();
    });
}
