//! A private registry for a test: Debian's docker-registry on 127.0.0.1:5000 in the test's
//! own netns, its storage under /run/berth/registry, stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{sh, try_sh, wait_for};

pub const REGISTRY: &str = "/usr/bin/docker-registry";
pub const STORE: &str = "/run/berth/registry";

/// The running registry.
pub struct Registry(pub Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a registry on 127.0.0.1:5000; with `user`, behind htpasswd basic auth.
pub fn registry(user: Option<(&str, &str)>) -> Option<Registry> {
    if !Path::new(REGISTRY).exists() {
        println!("SKIP registry: {REGISTRY} not found (apt-get install docker-registry)");
        return None;
    }
    let mut cfg = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {STORE}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:5000\nlog:\n  level: error\n"
    );
    if let Some((u, p)) = user {
        let hash =
            sh(&format!("python3 -c \"import crypt; print(crypt.crypt('{p}', crypt.mksalt(crypt.METHOD_BLOWFISH)))\"")).trim().to_string();
        std::fs::write("/run/berth/htpasswd", format!("{u}:{hash}\n")).unwrap();
        cfg.push_str("auth:\n  htpasswd:\n    realm: berth-test\n    path: /run/berth/htpasswd\n");
    }
    std::fs::write("/run/berth/registry.yml", cfg).unwrap();
    let child =
        Command::new(REGISTRY).args(["serve", "/run/berth/registry.yml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let r = Registry(child);
    wait_for("the registry to listen", || {
        try_sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/v2/").1.starts_with(['2', '4'])
    });
    Some(r)
}
