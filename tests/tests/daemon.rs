//! netd, the daemon: the Docker Engine API's network endpoints on a unix socket, driven
//! with raw HTTP and with the real `docker` CLI; connect and disconnect.

use std::process::{Child, Command, Stdio};

use berth_tests::harness::berth::{berth, bridge_allocations, import_busybox};
use berth_tests::harness::{bin_dir, isolated, sh, try_sh, wait_for};
use serde_json::Value;

const SOCK: &str = "/run/berth/netd.sock";

/// netd serving on [`SOCK`], killed when the test ends.
struct Netd(Child);

impl Netd {
    fn start() -> Self {
        let log = std::fs::File::create("/run/berth/netd.log").unwrap();
        let c = Command::new(bin_dir().join("netd"))
            .args(["--socket", SOCK])
            .env("RUST_LOG", "netd=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for("netd's socket", || try_sh(&format!("curl -sf --unix-socket {SOCK} http://x/_ping")).0);
        Netd(c)
    }
}

impl Drop for Netd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (status, content type, body) of one request.
fn http(method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    let data = body.map(|b| format!("-H 'Content-Type: application/json' -d '{b}'")).unwrap_or_default();
    let out = sh(&format!("curl -s --unix-socket {SOCK} -X {method} {data} -w '\\n%{{http_code}} %{{content_type}}' 'http://x{path}'"));
    let (body, tail) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let (code, ct) = tail.split_once(' ').unwrap_or((tail, ""));
    (code.parse().unwrap_or(0), ct.to_string(), body.to_string())
}

fn json(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (code, _, b) = http(method, path, body);
    (code, serde_json::from_str(&b).unwrap_or(Value::Null))
}

#[test]
fn docker_network_api_over_raw_http() {
    isolated(|| {
        import_busybox("x");
        let _d = Netd::start();
        let head = sh(&format!("curl -sI --unix-socket {SOCK} http://x/_ping"));
        assert!(head.to_lowercase().contains("api-version: 1.50"), "{head}");
        assert_eq!(http("GET", "/v1.24/_ping", None).2, "OK");
        assert_eq!(json("GET", "/v1.50/version", None).1["ApiVersion"], "1.50");
        // create, duplicate, bad input
        let (code, v) = json(
            "POST",
            "/v1.45/networks/create",
            Some(r#"{"Name":"appnet","IPAM":{"Config":[{"Subnet":"10.89.0.0/24"}]},"Labels":{"tier":"db"}}"#),
        );
        assert_eq!(code, 201, "{v}");
        let id = v["Id"].as_str().unwrap().to_string();
        assert_eq!((id.len(), v["Warning"].as_str()), (64, Some("")));
        assert_eq!(json("POST", "/networks/create", Some(r#"{"Name":"appnet"}"#)).0, 409);
        let (code, ct, body) = http("POST", "/networks/create", Some("{bad"));
        assert_eq!((code, ct.as_str()), (400, "application/json"), "{body}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["message"].as_str().unwrap().contains("invalid JSON"));
        assert_eq!(json("POST", "/networks/create", Some(r#"{"Name":"x","Driver":"overlay"}"#)).0, 400);
        // lookups: full id, name, unique prefix; unknown
        for key in [id.as_str(), "appnet", &id[..6]] {
            let (code, v) = json("GET", &format!("/networks/{key}"), None);
            assert_eq!((code, v["Name"].as_str()), (200, Some("appnet")), "{key}");
        }
        let (code, v) = json("GET", "/networks/nope", None);
        assert_eq!((code, v["message"].as_str().is_some()), (404, true));
        let (_, v) = json("GET", "/networks/appnet", None);
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.89.0.0/24");
        assert_eq!(v["Labels"]["tier"], "db");
        assert!(v["Created"].as_str().unwrap().ends_with('Z'));
        // filters
        let f = "%7B%22label%22%3A%5B%22tier%3Ddb%22%5D%7D";
        let (_, v) = json("GET", &format!("/networks?filters={f}"), None);
        assert_eq!(v.as_array().unwrap().len(), 1);
        let (_, v) = json("GET", "/networks", None);
        assert_eq!(v.as_array().unwrap().len(), 2);
        // removal: predefined 403, with a container attached 403, then 204
        assert_eq!(json("DELETE", "/networks/bridge", None).0, 403);
        berth(&["run", "-d", "--name", "db", "--net", "appnet", "busybox", "sleep", "60"]).ok();
        let (_, v) = json("GET", "/networks/appnet", None);
        assert_eq!(v["Containers"].as_object().unwrap().len(), 1, "{v}");
        let (_, v) = json("GET", "/containers/json", None);
        assert_eq!(v[0]["Names"][0], "/db");
        assert_eq!(json("GET", "/containers/db/json", None).1["State"]["Running"], true);
        assert_eq!(json("DELETE", &format!("/networks/{id}"), None).0, 403);
        berth(&["rm", "-f", "db"]).ok();
        assert_eq!(json("DELETE", &format!("/networks/{id}"), None).0, 204);
        assert!(!std::path::Path::new("/var/lib/berth/networks/appnet.conflist").exists());
        // prune removes unused networks only
        json("POST", "/networks/create", Some(r#"{"Name":"p1"}"#));
        let (_, v) = json("POST", "/networks/prune", None);
        assert_eq!(v["NetworksDeleted"], serde_json::json!(["p1"]));
    });
}

#[test]
fn connect_and_disconnect_a_running_container() {
    isolated(|| {
        import_busybox("x");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "appnet"]).ok();
        berth(&["run", "-d", "--name", "db", "--net", "appnet", "busybox", "sleep", "60"]).ok();
        berth(&["run", "-d", "--name", "app", "busybox", "sleep", "60"]).ok();
        berth(&["network", "connect", "appnet", "app"]).ok();
        let addr = berth(&["exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"]).ok();
        assert!(addr.contains("10.89.0.3/24"), "{addr}");
        assert!(berth(&["exec", "app", "ping", "-c1", "-W1", "10.89.0.2"]).ok().contains("1 packets received"));
        assert_eq!(berth(&["network", "connect", "appnet", "app"]).code, 125, "connected twice");
        berth(&["network", "disconnect", "appnet", "app"]).ok();
        assert_ne!(berth(&["exec", "app", "ip", "link", "show", "eth1"]).code, 0);
        assert!(!sh("ls /var/lib/berth/ipam/appnet").contains("10.89.0.3"));
        // Through the daemon's API, and nothing left when the container goes.
        let _d = Netd::start();
        let (code, _) = json("POST", "/networks/appnet/connect", Some(r#"{"Container":"app"}"#));
        assert_eq!(code, 200);
        assert!(sh("ls /var/lib/berth/ipam/appnet").contains("10.89.0."));
        let (_, v) = json("GET", "/networks/appnet", None);
        assert_eq!(v["Containers"].as_object().unwrap().len(), 2, "{v}");
        berth(&["rm", "-f", "app"]).ok();
        let left = sh("ls /var/lib/berth/ipam/appnet");
        assert_eq!(left.lines().filter(|l| l.starts_with("10.")).count(), 1, "connected address leaked: {left}");
        assert_eq!(json("POST", "/networks/appnet/disconnect", Some(r#"{"Container":"nope"}"#)).0, 404);
        berth(&["rm", "-f", "db"]).ok();
    });
}

#[test]
fn the_docker_cli_drives_netd() {
    isolated(|| {
        let Some(docker) = ["/usr/local/bin/docker", "/usr/bin/docker"].into_iter().find(|p| std::path::Path::new(p).is_file()) else {
            println!("SKIP the_docker_cli_drives_netd: no docker CLI installed");
            return;
        };
        import_busybox("x");
        let _d = Netd::start();
        let d = |args: &str| sh(&format!("{docker} -H unix://{SOCK} {args}"));
        assert!(d("network ls").contains("bridge"));
        let id = d("network create --subnet 10.89.0.0/24 appnet");
        assert_eq!(id.trim().len(), 64);
        let v: Value = serde_json::from_str(&d("network inspect appnet")).unwrap();
        assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.89.0.0/24");
        berth(&["run", "-d", "--name", "web", "busybox", "sleep", "60"]).ok();
        assert!(d("ps").contains("web"));
        d("network connect appnet web");
        assert!(berth(&["exec", "web", "ip", "-o", "-4", "addr"]).ok().contains("10.89.0."));
        d("network disconnect appnet web");
        assert!(!berth(&["exec", "web", "ip", "-o", "-4", "addr"]).ok().contains("10.89.0."));
        d("network rm appnet");
        assert!(!d("network ls").contains("appnet"));
        d("network create p1");
        assert!(d("network prune -f").contains("p1"));
        berth(&["rm", "-f", "web"]).ok();
    });
}

#[test]
fn netd_restores_a_flushed_firewall() {
    isolated(|| {
        import_busybox("page");
        berth(&["run", "-d", "--name", "web", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        let answers = || try_sh("curl -s --max-time 0.3 http://127.0.0.1:4000/").1 == "page";
        wait_for("the published port", answers);
        let before = berth_tests::harness::net::rules();
        let d = Netd::start();
        for flush in ["iptables -t nat -F", "nft flush ruleset", "iptables -t raw -F"] {
            sh(flush);
            let t0 = std::time::Instant::now();
            while !(answers() && berth_tests::harness::net::rules() == before) {
                if t0.elapsed() > std::time::Duration::from_secs(3) {
                    let now = berth_tests::harness::net::rules();
                    let missing: Vec<_> = before.iter().filter(|r| !now.contains(r)).collect();
                    let extra: Vec<_> = now.iter().filter(|r| !before.contains(r)).collect();
                    let log = std::fs::read_to_string("/run/berth/netd.log").unwrap_or_default();
                    panic!("not restored after `{flush}` (answers: {}): missing {missing:?}, extra {extra:?}\n{log}", answers());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            println!("restored after `{flush}` in {:?}", t0.elapsed());
        }
        // A restart re-checks at start-up and adds nothing twice.
        drop(d);
        let _d = Netd::start();
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(berth_tests::harness::net::rules(), before);
        berth(&["rm", "-f", "web"]).ok();
    });
}

/// Kills a container's monitor and PID 1 the hard way, as a crash would.
fn kill_hard(name: &str) {
    let id = berth(&["inspect", name]).ok();
    let v: Value = serde_json::from_str(&id).unwrap();
    let id = v[0]["Id"].as_str().unwrap().to_string();
    let rec: Value = serde_json::from_slice(&std::fs::read(format!("/var/lib/berth/containers/{id}/container.json")).unwrap()).unwrap();
    for k in ["monitor_pid", "pid"] {
        if let Some(p) = rec["state"][k].as_i64() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
    wait_for("the container's processes to go", || {
        rec["state"]["pid"].as_i64().is_none_or(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
}

#[test]
fn netd_frees_what_dead_containers_held_at_start_up() {
    isolated(|| {
        import_busybox("page");
        let rules0 = berth_tests::harness::net::rules();
        berth(&["run", "-d", "--name", "victim", "-p", "4300:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        kill_hard("victim");
        assert_eq!(bridge_allocations(), 1);
        assert!(sh("iptables-save -t nat").contains("--dport 4300"));
        {
            let _d = Netd::start();
            assert_eq!(bridge_allocations(), 0, "the dead container's address is still allocated");
            assert!(!sh("iptables-save -t nat").contains("--dport 4300"), "its port rules are still there");
            assert!(!std::path::Path::new("/run/berth/ports/tcp-4300").exists(), "its port claim is still there");
        }
        assert!(berth_tests::harness::net::rules().iter().all(|r| rules0.contains(r) || !r.contains("4300")));
        berth(&["rm", "-f", "victim"]).ok();
        // The same port and name again.
        berth(&["run", "-d", "--name", "victim", "-p", "4300:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        // A reboot: the run directory empty, /var/lib kept.
        kill_hard("victim");
        sh("umount -l /run/berth && mount -t tmpfs -o mode=755 tmpfs /run/berth");
        assert_eq!(bridge_allocations(), 1);
        let _d = Netd::start();
        assert_eq!(bridge_allocations(), 0, "after a reboot the address is still allocated");
        assert!(berth(&["ps", "-a"]).ok().contains("Exited"));
    });
}

#[test]
fn netd_cleanup_returns_the_host_to_its_state_before_berth() {
    isolated(|| {
        let links = || sh("ip -o link show | awk -F': ' '{print $2}' | sort");
        let forwarding = || sh("cat /proc/sys/net/ipv4/ip_forward");
        let (links0, rules0, fwd0) = (links(), berth_tests::harness::net::rules(), forwarding());
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        berth(&["run", "-d", "--name", "a", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["run", "-d", "--name", "b", "--net", "app", "busybox", "sleep", "60"]).ok();
        assert_ne!(links(), links0);
        assert_eq!(forwarding().trim(), "1");
        berth(&["rm", "-f", "a", "b"]).ok();
        sh(&format!("{} cleanup", bin_dir().join("netd").display()));
        assert_eq!(berth_tests::harness::net::rules(), rules0, "rules left");
        assert_eq!(links(), links0, "links left");
        assert_eq!(forwarding(), fwd0, "ip_forward not restored");
    });
}
