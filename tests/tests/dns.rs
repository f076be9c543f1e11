//! Name resolution on user networks: netd (started on demand by berth) answers container
//! names on the network's gateway and forwards other names to the host's resolvers; the
//! default bridge network has no names, and other networks cannot reach the containers.

use berth_tests::harness::berth::{berth, import_busybox, inspect};
use berth_tests::harness::dns::{dig, upstream};
use berth_tests::harness::{isolated, OtherHost};

fn run_sh(net: &str, script: &str) -> (i32, String) {
    let o = berth(&["run", "--rm", "--net", net, "busybox", "sh", "-c", script]);
    (o.code, format!("{}{}", o.stdout, o.stderr))
}

#[test]
fn containers_find_each_other_by_name_on_user_networks() {
    isolated(|| {
        let other = OtherHost::new();
        let _up = upstream(&other, false);
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        let id = berth(&[
            "run",
            "-d",
            "--name",
            "web",
            "--net",
            "app",
            "--network-alias",
            "www",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .ok();
        let ip = inspect("web")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
        // By name, by short ID, by ping; in a container started right after.
        let (code, out) = run_sh("app", "nslookup web && ping -c1 -W1 web && wget -qO- http://web/");
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("Address: {ip}")) && out.contains("page"), "{out}");
        let (code, out) = run_sh("app", &format!("nslookup {}", &id.trim()[..12]));
        assert!(code == 0 && out.contains(&ip), "{out}");
        let (code, out) = run_sh("app", "nslookup www");
        assert!(code == 0 && out.contains(&ip), "an alias did not resolve: {out}");
        assert_eq!(berth(&["run", "--rm", "--network-alias", "x", "busybox", "true"]).code, 125, "alias on the default bridge");
        // Over TCP too, from inside a member's netns (the host itself is no member).
        let pid = berth(&["inspect", "-f", "{{.State.Pid}}", "web"]).ok();
        let tcp = dig(pid.trim(), "10.89.0.1", "web", "tcp");
        assert!(tcp.starts_with("rcode=0 tc=0 answers=1") && tcp.contains(&ip), "TCP answer: {tcp}");
        let host = dig("host", "10.89.0.1", "web", "udp");
        assert!(host.starts_with("rcode=5 tc=0 answers=0"), "the host's own netns is no member of app: {host}");
        // Other names go to the host's upstream resolver (in another netns).
        let (code, out) = run_sh("app", "nslookup example.test");
        assert!(code == 0 && out.contains("198.51.100.7"), "{out}");
        let (code, out) = run_sh("app", "nslookup nothing.invalid");
        assert_ne!(code, 0, "{out}");
        // The default bridge has no names, and cannot reach the user network.
        let (code, _) = run_sh("bridge", "nslookup web");
        assert_ne!(code, 0, "web resolved on the default bridge");
        let (code, _) = run_sh("bridge", &format!("wget -T 1 -qO- http://{ip}/"));
        assert_ne!(code, 0, "a container on bridge reached a container on app");
        // Connected containers get names; after disconnect they are gone.
        berth(&["run", "-d", "--name", "late", "busybox", "sleep", "60"]).ok();
        berth(&["network", "connect", "app", "late"]).ok();
        let (code, out) = run_sh("app", "nslookup late");
        assert_eq!(code, 0, "{out}");
        berth(&["network", "disconnect", "app", "late"]).ok();
        let (code, out) = run_sh("app", "nslookup late");
        assert_ne!(code, 0, "{out}");
        // Stopped containers lose their names (and removed ones, their aliases).
        berth(&["stop", "-t", "1", "web"]).ok();
        let (code, out) = run_sh("app", "nslookup web");
        assert_ne!(code, 0, "{out}");
        berth(&["rm", "-f", "web"]).ok();
        let (code, out) = run_sh("app", "nslookup www");
        assert_ne!(code, 0, "{out}");
        drop(other);
    });
}
