//! netd, the daemon: the Docker Engine API's network endpoints on a unix socket, driven
//! with raw HTTP and with the real `docker` CLI; connect and disconnect.

use std::process::Command;

use berth_tests::harness::berth::{berth, bridge_allocations, import_busybox};
use berth_tests::harness::netd::{Netd, SOCK};
use berth_tests::harness::{bin_dir, isolated, sh, try_sh, wait_for};
use serde_json::Value;

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
        // Dual stack and an IPv4 range, as `docker network create --ipv6 --subnet ... --ip-range`.
        let (code, v) = json(
            "POST",
            "/networks/create",
            Some(
                r#"{"Name":"p1","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"10.90.0.0/24","IPRange":"10.90.0.64/26"},{"Subnet":"fd00:90::/64"}]}}"#,
            ),
        );
        assert_eq!(code, 201, "{v}");
        let (_, v) = json("GET", "/networks/p1", None);
        assert_eq!(v["EnableIPv6"], true);
        assert_eq!(v["IPAM"]["Config"][0]["IPRange"], "10.90.0.64/26");
        assert_eq!(v["IPAM"]["Config"][1]["Subnet"], "fd00:90::/64");
        let two_v4 = r#"{"Name":"p2","IPAM":{"Config":[{"Subnet":"10.91.0.0/24"},{"Subnet":"10.92.0.0/24"}]}}"#;
        assert_eq!(json("POST", "/networks/create", Some(two_v4)).0, 400);
        // prune removes unused networks only
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
        // netd was started on demand (db is on a user network): a second one on the same
        // socket refuses to take it over.
        let second = Command::new(bin_dir().join("netd")).args(["--socket", SOCK]).output().unwrap();
        assert!(!second.status.success());
        assert!(String::from_utf8_lossy(&second.stderr).contains("already serves"), "{}", String::from_utf8_lossy(&second.stderr));
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
        for flush in berth_tests::harness::fw::flushes() {
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
        assert!(berth_tests::harness::fw::publishes(4300));
        {
            let _d = Netd::start();
            assert_eq!(bridge_allocations(), 0, "the dead container's address is still allocated");
            assert!(!berth_tests::harness::fw::publishes(4300), "its port rules are still there");
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
        // One still attached, with an alias: cleanup drops every record berth keeps.
        berth(&["run", "-d", "--name", "c", "--net", "app", "--network-alias", "cc", "busybox", "sleep", "60"]).ok();
        sh(&format!("{} cleanup", bin_dir().join("netd").display()));
        for dir in ["endpoints", "endpoint-links", "endpoint-aliases", "endpoint-ports", "ports"] {
            let left = sh(&format!("find /run/berth/{dir} -type f ! -name '.*' 2>/dev/null || true"));
            assert_eq!(left.trim(), "", "records left by cleanup in {dir}");
        }
        berth(&["rm", "-f", "c"]).ok();
        assert_eq!(berth_tests::harness::net::rules(), rules0, "rules left");
        assert_eq!(links(), links0, "links left");
        assert_eq!(forwarding(), fwd0, "ip_forward not restored");
    });
}

/// Container ids → names, for comparing state made by runs with different ids.
fn ids_to_names(text: &str) -> String {
    let mut out = text.to_string();
    for e in std::fs::read_dir("/var/lib/berth/containers").unwrap().flatten() {
        let Ok(data) = std::fs::read(e.path().join("container.json")) else { continue };
        let c: Value = serde_json::from_slice(&data).unwrap();
        let (id, name) = (c["id"].as_str().unwrap(), c["name"].as_str().unwrap());
        out = out.replace(id, &format!("<{name}>")).replace(&id[..12], &format!("<{name}>"));
    }
    out
}

/// What berth made in the kernel and on disk: links (veth names, MACs and per-container
/// chain hashes masked),
/// IPv4 addresses, routes, every iptables table, sysctls, IPAM files and the engine's
/// records, and each container's own addresses and routes; ids replaced by names.
fn kernel_state(containers: &[&str]) -> String {
    let mut parts = vec![
        sh("ip -o link show | cut -d: -f2- | sed 's/ link-netnsid [0-9]*//'"),
        sh("ip -o -4 addr show | awk '{print $2, $4}'"),
        sh("ip route show"),
        if berth_tests::harness::fw::nft() {
            berth_tests::harness::fw::dump()
        } else {
            sh("iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'")
        },
        sh("sysctl net.ipv4.ip_forward; cat /proc/sys/net/ipv4/conf/*/route_localnet | tr -d '\\n'"),
        sh("cd /var/lib/berth/ipam && for f in $(find . -type f | sort); do echo \"$f: $(cat $f | tr '\\n' ' ')\"; done"),
        sh("cd /run/berth && find endpoints endpoint-ports endpoint-aliases ports -type f 2>/dev/null | sort"),
    ];
    for c in containers {
        parts.push(berth(&["exec", c, "ip", "-o", "-4", "addr"]).ok());
        parts.push(berth(&["exec", c, "ip", "route"]).ok());
    }
    let all = ids_to_names(&parts.join("\n"));
    std::fs::write("/run/berth/state.txt", all).unwrap();
    sh("sed -E 's/veth[0-9a-f]+/veth*/g; s/([0-9a-f]{2}:){5}[0-9a-f]{2}/MAC/g; s/(BERTH-[A-Z]+-)[0-9A-F]{16}/\\1HASH/g' /run/berth/state.txt | sort")
}

/// The same scenario: a user network with an alias and a published port, a container on
/// `bridge` with one, connected to the user network with an alias; both ports answer.
fn scenario() -> String {
    berth(&["network", "create", "--subnet", "10.89.0.0/24", "-o", "com.docker.network.bridge.name=br-app", "app"]).ok();
    // --dns: the in-process run must not start netd for name resolution.
    let common = ["--dns", "192.0.2.53", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
    berth(&[&["run", "-d", "--name", "web", "--net", "app", "--network-alias", "www", "-p", "8080:80"][..], &common].concat()).ok();
    berth(&[&["run", "-d", "--name", "b", "-p", "8081:80"][..], &common].concat()).ok();
    berth(&["network", "connect", "--alias", "bb", "app", "b"]).ok();
    for port in [8080, 8081] {
        assert!(sh(&berth_tests::harness::curl(&format!("http://127.0.0.1:{port}/"))).contains("x"), "port {port}");
    }
    kernel_state(&["web", "b"])
}

/// Back to a fresh host: containers, network, rules, records and stores gone.
fn fresh_host() {
    berth(&["rm", "-f", "web", "b"]).ok();
    berth(&["network", "rm", "app"]).ok();
    sh(&format!("{} cleanup", bin_dir().join("netd").display()));
    sh("rm -rf /var/lib/berth/ipam /var/lib/berth/networks /var/lib/berth/containers /run/berth/[a-z]*");
}

#[test]
fn the_same_kernel_state_in_process_and_through_netd() {
    isolated(|| {
        import_busybox("x");
        let in_process = scenario();
        assert!(!std::path::Path::new("/run/berth/netd.pid").exists(), "the in-process run started netd");
        fresh_host();
        assert_eq!(sh("ip -o link show | wc -l").trim(), "1", "{}", sh("ip link"));
        let _d = Netd::start();
        let through_netd = scenario();
        // Every attach went through the daemon.
        let log = std::fs::read_to_string("/run/berth/netd.log").unwrap();
        assert_eq!(log.matches(" attached").count(), 3, "{log}");
        std::fs::write("/run/berth/a.txt", &in_process).unwrap();
        std::fs::write("/run/berth/b.txt", &through_netd).unwrap();
        let diff = try_sh("diff /run/berth/a.txt /run/berth/b.txt");
        assert!(diff.0, "kernel state differs (< in-process, > through netd):\n{}", diff.1);
        assert!(in_process.contains("10.89.0.2") && in_process.to_lowercase().contains("dnat"), "{in_process}");
        // And detach through the daemon frees the same.
        berth(&["rm", "-f", "web", "b"]).ok();
        let log = std::fs::read_to_string("/run/berth/netd.log").unwrap();
        // Each of the three attachments detached through the daemon. `rm -f` and the
        // dying container's monitor may both ask for the same one (detach is idempotent),
        // so attachments are counted, not requests.
        let detached: std::collections::BTreeSet<&str> =
            log.lines().filter(|l| l.contains(" detached ")).filter_map(|l| l.split_once(" detached ").map(|(_, rest)| rest)).collect();
        assert_eq!(detached.len(), 3, "{log}");
        assert_eq!(bridge_allocations(), 0);
    });
}

#[test]
fn network_cli_ip_range_connect_with_ip_and_alias_inspect_and_prune() {
    isolated(|| {
        import_busybox("x");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "--ip-range", "10.89.0.128/26", "app"]).ok();
        assert_eq!(berth(&["network", "create", "--ip-range", "10.89.0.0/26", "noip"]).code, 125, "ip-range without subnet");
        assert_eq!(berth(&["network", "create", "--subnet", "10.90.0.0/24", "--ip-range", "10.91.0.0/26", "out"]).code, 125);
        berth(&["run", "-d", "--name", "web", "--net", "app", "busybox", "sleep", "60"]).ok();
        assert!(berth(&["exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"]).ok().contains("10.89.0.128/24"));
        berth(&["run", "-d", "--name", "cli", "busybox", "sleep", "60"]).ok();
        berth(&["network", "connect", "--ip", "10.89.0.140", "--alias", "cache", "app", "cli"]).ok();
        assert!(berth(&["exec", "cli", "ip", "-o", "-4", "addr", "show", "eth1"]).ok().contains("10.89.0.140/24"));
        let answer = berth(&["exec", "web", "nslookup", "cache"]).ok();
        assert!(answer.contains("10.89.0.140"), "{answer}");
        // inspect: Docker's shape, both containers, the range; an unknown name fails.
        let v: Value = serde_json::from_str(&berth(&["network", "inspect", "app"]).ok()).unwrap();
        assert_eq!(v[0]["IPAM"]["Config"][0]["IPRange"], "10.89.0.128/26");
        assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 2, "{v}");
        let o = berth(&["network", "inspect", "nope"]);
        assert_eq!(o.code, 125);
        assert!(o.stderr.contains("network nope not found"), "{}", o.stderr);
        // The alias leaves with the network.
        berth(&["network", "disconnect", "app", "cli"]).ok();
        assert_ne!(berth(&["exec", "web", "nslookup", "cache"]).code, 0, "alias still resolves");
        // prune: only networks nobody uses.
        berth(&["network", "create", "unused"]).ok();
        let out = berth(&["network", "prune", "-f"]).ok();
        assert!(out.contains("unused") && !out.contains("app"), "{out}");
        assert!(berth(&["network", "ls"]).ok().contains("app"));
        berth(&["rm", "-f", "web", "cli"]).ok();
    });
}

/// Bridges with their masters and state, and IPv4 addresses (veth names masked).
fn links_and_addresses() -> String {
    sh("{ ip -o link show | awk '{print $2, $3, $9, $11}' | sed 's/@[^:]*//'; ip -o -4 addr show | awk '{print $2, $4}'; \
        sysctl -n net.ipv4.ip_forward; cat /proc/sys/net/ipv4/conf/*/route_localnet | tr -d '\\n'; } | sed -E 's/veth[0-9a-f]+/veth*/' | sort")
}

#[test]
fn netd_restores_deleted_bridges_addresses_and_sysctls() {
    isolated(|| {
        import_busybox("page");
        let _d = Netd::start();
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "-o", "com.docker.network.bridge.name=br-app", "app"]).ok();
        let web = ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
        berth(&[&["run", "-d", "--name", "web", "--net", "app", "-p", "4000:80"][..], &web].concat()).ok();
        berth(&[&["run", "-d", "--name", "b", "-p", "4001:80"][..], &web].concat()).ok();
        let answers = |port: u16| try_sh(&format!("curl -s --max-time 0.3 http://127.0.0.1:{port}/")).1 == "page";
        wait_for("the published ports", || answers(4000) && answers(4001));
        let before = links_and_addresses();
        for (damage, port) in [
            ("ip link del br-app", 4000),
            ("ip addr flush dev docker0", 4001),
            ("ip link set docker0 down", 4001),
            ("sysctl -w net.ipv4.ip_forward=0", 4000),
            ("sysctl -w net.ipv4.conf.br-app.route_localnet=0", 4000),
        ] {
            sh(damage);
            let t0 = std::time::Instant::now();
            while !(answers(port) && links_and_addresses() == before) {
                if t0.elapsed() > std::time::Duration::from_secs(3) {
                    let log = std::fs::read_to_string("/run/berth/netd.log").unwrap_or_default();
                    panic!("not restored after `{damage}`:\nbefore:\n{before}\nnow:\n{}\n{log}", links_and_addresses());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            println!("restored after `{damage}` in {:?}", t0.elapsed());
        }
        // The containers still reach each other over the re-made bridge.
        berth(&["run", "-d", "--name", "c", "--net", "app", "busybox", "sleep", "30"]).ok();
        assert!(berth(&["exec", "c", "wget", "-q", "-O", "-", "http://web/"]).ok().contains("page"));
        berth(&["rm", "-f", "web", "b", "c"]).ok();
        assert!(!std::path::Path::new("/run/berth/endpoint-links").read_dir().unwrap().any(|_| true), "link records left");
    });
}
