//! The CLI conventions Docker users expect: `--format` (json, table, Go templates),
//! `inspect -f`, `-q`, `--no-trunc`, `--filter`, RFC 3339 times, `version`, `info`,
//! completions and man pages; and `make install` / `make uninstall` of the whole tree.

use std::path::{Path, PathBuf};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{bin_dir, isolated, try_sh};

fn is_rfc3339(s: &str) -> bool {
    // 2026-11-24T02:45:07Z
    let b = s.as_bytes();
    s.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z'
}

#[test]
fn formats_filters_and_times_as_docker_prints_them() {
    isolated(|| {
        import_busybox("formatted");
        let web =
            berth(&["run", "-d", "--name", "web", "-l", "tier=web", "-p", "4300:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"])
                .ok();
        let web_id = web.trim().to_string();
        berth(&["run", "--name", "once", "-l", "tier=batch", "busybox", "true"]).ok();

        // Go templates over inspect, nested fields and json.
        let pid: i32 = berth(&["inspect", "-f", "{{.State.Pid}}", "web"]).ok().trim().parse().unwrap();
        assert!(pid > 1 && Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(berth(&["inspect", "--format", "{{.Name}} {{.State.Status}}", "web", "once"]).ok(), "/web running\n/once exited\n");
        let cfg: serde_json::Value = serde_json::from_str(&berth(&["inspect", "-f", "{{json .Config}}", "web"]).ok()).unwrap();
        assert_eq!(cfg["Cmd"][0], "httpd");
        assert_eq!(cfg["Labels"]["tier"], "web");
        // RFC 3339 times; an unset one is Docker's zero time.
        let v: serde_json::Value = serde_json::from_str(&berth(&["inspect", "web"]).ok()).unwrap();
        for t in [&v[0]["Created"], &v[0]["State"]["StartedAt"]] {
            assert!(is_rfc3339(t.as_str().unwrap()), "not RFC 3339: {t}");
        }
        assert_eq!(v[0]["State"]["FinishedAt"], "0001-01-01T00:00:00Z");

        // ps: -q, --no-trunc, filters (keys AND, values OR), json lines, table templates.
        assert_eq!(berth(&["ps", "-q"]).ok().trim(), &web_id[..12]);
        assert_eq!(berth(&["ps", "-q", "--no-trunc"]).ok().trim(), web_id);
        assert_eq!(berth(&["ps", "-a", "-q", "--filter", "status=running"]).ok().trim(), &web_id[..12]);
        assert_eq!(berth(&["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]).ok(), "once\n");
        assert_eq!(berth(&["ps", "-a", "--filter", "label=tier", "--format", "{{.Names}}"]).ok().lines().count(), 2);
        assert_eq!(berth(&["ps", "-a", "--filter", "label=tier=batch", "--format", "{{.Names}}"]).ok(), "once\n");
        assert_eq!(berth(&["ps", "-a", "--filter", "name=we", "--filter", "name=on", "--format", "{{.Names}}"]).ok().lines().count(), 2);
        assert_eq!(berth(&["ps", "-a", "--filter", "name=web", "--filter", "status=exited", "-q"]).ok(), "");
        assert_eq!(
            berth(&["ps", "-a", "--filter", "network=bridge", "--filter", "label=tier=web", "--format", "{{.Names}}"]).ok(),
            "web\n"
        );
        assert_eq!(berth(&["ps", "-a", "--filter", "network=none", "-q"]).ok(), "");
        let line = berth(&["ps", "--format", "json"]).ok();
        let j: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(
            (j["Names"].as_str(), j["State"].as_str(), j["Ports"].as_str()),
            (Some("web"), Some("running"), Some("0.0.0.0:4300->80/tcp"))
        );
        assert!(is_rfc3339(j["CreatedAt"].as_str().unwrap()));
        let table = berth(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Labels}}"]).ok();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows[0].split_whitespace().collect::<Vec<_>>(), ["NAMES", "LABELS"]);
        assert_eq!(rows.len(), 3);
        let col = rows[0].find("LABELS").unwrap();
        assert!(rows[1..].iter().all(|r| r[col..].starts_with("tier=")), "columns not aligned:\n{table}");

        // images and networks.
        assert_eq!(berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok(), "busybox:latest\n");
        assert_eq!(berth(&["images", "-q"]).ok().trim().len(), 12);
        assert!(berth(&["images", "-q", "--no-trunc"]).ok().trim().starts_with("sha256:"));
        assert_eq!(berth(&["network", "ls", "--format", "{{.Name}} {{.Subnet}} {{.Driver}}"]).ok(), "bridge 172.17.0.0/16 bridge\n");
        assert_eq!(berth(&["network", "ls", "-q", "--no-trunc"]).ok().trim().len(), 64);
        assert_eq!(berth(&["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "bridge"]).ok(), "bridge bridge\n");
        let nets: serde_json::Value = serde_json::from_str(&berth(&["network", "inspect", "--format", "json", "bridge"]).ok()).unwrap();
        assert_eq!(nets[0]["Name"], "bridge");

        // version and info.
        assert_eq!(berth(&["version", "-f", "{{.Version}}"]).ok().trim(), env!("CARGO_PKG_VERSION"));
        let info: serde_json::Value = serde_json::from_str(&berth(&["info", "--format", "json"]).ok()).unwrap();
        assert_eq!(
            (info["ContainersRunning"].as_u64(), info["ContainersStopped"].as_u64(), info["Images"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(info["FirewallBackend"]["Driver"], berth_tests::harness::fw::backend());
        assert!(["1", "2"].contains(&info["CgroupVersion"].as_str().unwrap()));

        // Bad input: one line, exit 125.
        for (args, says) in [
            (vec!["ps", "--filter", "colour=red"], "unknown filter"),
            (vec!["ps", "--filter", "status=sleeping"], "status is one of"),
            (vec!["ps", "--format", "{{.Names"], "template"),
            (vec!["run", "-l", "a\nb=c", "busybox", "true"], "--label"),
        ] {
            let out = berth(&args);
            assert_eq!(out.code, 125, "{args:?}: {out:?}");
            assert!(out.stderr.contains(says) && out.stderr.trim().lines().count() == 1, "{args:?}: {}", out.stderr);
        }
        berth(&["rm", "-f", "web", "once"]).ok();
    });
}

#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, says) in [("bash", "_berth()"), ("zsh", "#compdef berth"), ("fish", "complete -c berth")] {
        let out = berth(&["completion", shell]).ok();
        assert!(out.contains(says), "{shell} completion: {}", &out[..out.len().min(200)]);
        assert!(out.contains("network"), "{shell} completion lacks subcommands");
    }
    let dir = std::env::temp_dir().join(format!("berth-man-{}", std::process::id()));
    berth(&["__man", dir.to_str().unwrap()]).ok();
    for page in ["berth.1", "berth-run.1", "berth-ps.1", "berth-network-create.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not a man page");
    }
    assert!(std::fs::read_to_string(dir.join("berth-ps.1")).unwrap().contains("filter"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn make(target: &str, destdir: &Path) -> String {
    let (ok, out) = try_sh(&format!(
        "make -s -C {} {target} DESTDIR={} PROFILE=debug OUT={}",
        repo().display(),
        destdir.display(),
        bin_dir().display()
    ));
    assert!(ok, "make {target}: {out}");
    out
}

fn files(dir: &Path) -> Vec<String> {
    let (_, out) = try_sh(&format!("cd {} && find . -mindepth 1 | sort", dir.display()));
    out.lines().map(str::to_string).collect()
}

#[test]
fn make_install_then_uninstall_leaves_the_tree_empty() {
    if !try_sh("command -v make").0 {
        println!("SKIP make install: make not installed");
        return;
    }
    let dest = std::env::temp_dir().join(format!("berth-stage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    make("install", &dest);
    let got = files(&dest);
    for f in [
        "./usr/local/bin/berth",
        "./usr/local/bin/netd",
        "./opt/cni/bin/bridge",
        "./opt/cni/bin/firewall",
        "./opt/cni/bin/tuning",
        "./usr/local/lib/systemd/system/netd.service",
        "./usr/local/share/man/man1/berth-run.1",
        "./usr/local/share/bash-completion/completions/berth",
        "./usr/local/share/zsh/site-functions/_berth",
        "./usr/local/share/fish/vendor_completions.d/berth.fish",
        "./etc/cni/net.d/87-berth.conflist",
    ] {
        assert!(got.contains(&f.to_string()), "{f} not installed: {got:?}");
    }
    // The installed plugin answers VERSION; the default conflist parses.
    let (ok, out) = try_sh(&format!("CNI_COMMAND=VERSION {}/opt/cni/bin/bridge", dest.display()));
    assert!(ok && out.contains("1.1.0"), "{out}");
    let conf = std::fs::read(dest.join("etc/cni/net.d/87-berth.conflist")).unwrap();
    berth_cni::conflist::ConfList::parse(&conf).expect("the default conflist parses");
    make("uninstall", &dest);
    assert_eq!(files(&dest), Vec::<String>::new(), "left after uninstall");

    // A host that already has a CNI network keeps its own, and uninstall leaves it.
    std::fs::create_dir_all(dest.join("etc/cni/net.d")).unwrap();
    std::fs::write(dest.join("etc/cni/net.d/10-mine.conflist"), "{}").unwrap();
    make("install", &dest);
    assert!(!dest.join("etc/cni/net.d/87-berth.conflist").exists());
    make("uninstall", &dest);
    assert_eq!(files(&dest), ["./etc", "./etc/cni", "./etc/cni/net.d", "./etc/cni/net.d/10-mine.conflist"]);
    let _ = std::fs::remove_dir_all(&dest);
}
