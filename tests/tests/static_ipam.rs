//! The `static` IPAM plugin beside the reference's (Debian's containernetworking-plugins
//! in /usr/lib/cni): the same configuration, CNI_ARGS, `args` and `runtimeConfig` give the
//! same result for every CNI version both speak; the same refusals; DEL with nothing to
//! release; CHECK against a previous result. static touches no kernel state, so these run
//! without a private namespace.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use berth_tests::harness::plugin::reference;

/// Runs `dir/static` and returns (exit code, stdout as JSON or Null).
fn run(dir: &Path, command: &str, conf: &Value, cni_args: &str) -> (i32, Value) {
    let mut child = Command::new(dir.join("static"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "ctr-static")
        .env("CNI_NETNS", "/var/run/netns/none")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", dir)
        .env("CNI_ARGS", cni_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn static");
    // A plugin may answer before it reads (a refusal from the environment alone).
    match child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn conf(version: &str, ipam: Value, extra: Value) -> Value {
    let mut c = json!({"cniVersion": version, "name": "st", "type": "static", "ipam": ipam});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    c
}

fn ipam() -> Value {
    json!({
        "type": "static",
        "addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}, {"address": "3ffe:ffff:0:01ff::1/64"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.10.0.254"}],
        "dns": {"nameservers": ["192.0.2.53"], "domain": "example.test", "search": ["example.test"], "options": ["ndots:2"]}
    })
}

#[test]
fn static_gives_the_references_results_with_its_precedence() {
    let ours = berth_tests::harness::bin_dir();
    let cases = [
        ("config only", Value::Null, ""),
        ("CNI_ARGS appended, GATEWAY on the address that holds it", Value::Null, "IP=10.0.0.5/24,10.1.0.5/16;GATEWAY=10.0.0.1"),
        ("args.cni.ips replace", json!({"args": {"cni": {"ips": ["10.2.0.9/24", "fd00::9/64"]}}}), "IP=10.0.0.5/24"),
        (
            "runtimeConfig.ips replace args.cni.ips",
            json!({"capabilities": {"ips": true}, "runtimeConfig": {"ips": ["10.3.0.9/24"]}, "args": {"cni": {"ips": ["10.2.0.9/24"]}}}),
            "",
        ),
        ("an empty runtimeConfig.ips changes nothing", json!({"runtimeConfig": {"ips": []}}), ""),
    ];
    // And a bare configuration: one address, no routes, no DNS.
    let bare = json!({"type": "static", "addresses": [{"address": "192.0.2.10/24"}]});
    for version in ["0.3.1", "1.0.0"] {
        let c = conf(version, bare.clone(), Value::Null);
        let (code, mine) = run(&ours, "ADD", &c, "");
        assert_eq!(code, 0, "{mine}");
        if let Some(refdir) = reference("static", "static differential") {
            assert_eq!(mine, run(&refdir, "ADD", &c, "").1, "{version} bare");
        }
    }
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] {
        for (what, extra, args) in &cases {
            let c = conf(version, ipam(), extra.clone());
            let (code, mine) = run(&ours, "ADD", &c, args);
            assert_eq!(code, 0, "{version} {what}: {mine}");
            assert_eq!(mine["cniVersion"], version);
            if let Some(refdir) = reference("static", "static differential") {
                let (rcode, theirs) = run(&refdir, "ADD", &c, args);
                assert_eq!(rcode, 0, "reference {version} {what}: {theirs}");
                assert_eq!(mine, theirs, "{version} {what}");
            }
        }
    }
    // The precedence, spelled out (for machines without the reference).
    let (_, r) = run(&ours, "ADD", &conf("1.0.0", ipam(), Value::Null), "IP=10.0.0.5/24,10.1.0.5/16;GATEWAY=10.0.0.1");
    let ips: Vec<(&str, &str)> =
        r["ips"].as_array().unwrap().iter().map(|i| (i["address"].as_str().unwrap(), i["gateway"].as_str().unwrap_or(""))).collect();
    assert_eq!(ips, [("10.10.0.1/24", "10.10.0.254"), ("3ffe:ffff:0:1ff::1/64", ""), ("10.0.0.5/24", "10.0.0.1"), ("10.1.0.5/16", "")]);
    let c = conf("1.0.0", ipam(), json!({"runtimeConfig": {"ips": ["10.3.0.9/24"]}, "args": {"cni": {"ips": ["10.2.0.9/24"]}}}));
    assert_eq!(run(&ours, "ADD", &c, "IP=10.0.0.5/24").1["ips"], json!([{"address": "10.3.0.9/24"}]));
    assert!(r["interfaces"].is_null(), "an IPAM result names no interface");
}

#[test]
fn static_refuses_bad_input_clearly_and_del_and_check_behave_as_the_references() {
    let ours = berth_tests::harness::bin_dir();
    let bare = conf("1.0.0", json!({"type": "static", "addresses": [{"address": "10.10.0.1"}]}), Value::Null);
    let (code, err) = run(&ours, "ADD", &bare, "");
    assert_eq!((code, err["code"].as_u64()), (1, Some(7)), "{err}");
    assert!(err["msg"].as_str().unwrap().contains("has no prefix length: write it as a CIDR, e.g. 10.10.0.1/24"), "{err}");
    for (what, c, args) in [
        ("a bare runtimeConfig ip", conf("1.0.0", ipam(), json!({"runtimeConfig": {"ips": ["10.3.0.9"]}})), ""),
        ("a bad CNI_ARGS IP", conf("1.0.0", ipam(), Value::Null), "IP=banana"),
        ("a bad GATEWAY", conf("1.0.0", ipam(), Value::Null), "IP=10.0.0.5/24;GATEWAY=nope"),
        ("a bad route", conf("1.0.0", json!({"type": "static", "routes": [{"dst": "10.0.0.0"}]}), Value::Null), ""),
    ] {
        let (code, err) = run(&ours, "ADD", &c, args);
        assert_eq!((code, err["code"].as_u64()), (1, Some(7)), "{what}: {err}");
        if let Some(refdir) = reference("static", "static differential") {
            assert_ne!(run(&refdir, "ADD", &c, args).0, 0, "the reference took {what}");
        }
    }
    // DEL: nothing to release, twice, even for a config ADD refuses.
    for dir in std::iter::once(ours.as_path()).chain(reference("static", "static differential").as_deref()) {
        for c in [&bare, &conf("1.0.0", ipam(), Value::Null)] {
            assert_eq!(run(dir, "DEL", c, "").0, 0, "{}", dir.display());
            assert_eq!(run(dir, "DEL", c, "").0, 0);
        }
    }
    // CHECK: the configured addresses (and gateways) against the previous result.
    let prev = run(&ours, "ADD", &conf("1.0.0", ipam(), Value::Null), "").1;
    let mut wrong = prev.clone();
    wrong["ips"][0]["gateway"] = json!("10.10.0.253");
    for dir in std::iter::once(ours.as_path()).chain(reference("static", "static differential").as_deref()) {
        let ok = conf("1.0.0", ipam(), json!({"prevResult": prev}));
        assert_eq!(run(dir, "CHECK", &ok, "").0, 0, "{}", dir.display());
        let bad = conf("1.0.0", ipam(), json!({"prevResult": wrong}));
        assert_ne!(run(dir, "CHECK", &bad, "").0, 0, "{}: CHECK passed a wrong gateway", dir.display());
    }
    // VERSION lists what it speaks.
    let (_, v) = run(&ours, "VERSION", &json!({"cniVersion": "1.1.0"}), "");
    assert!(v["supportedVersions"].as_array().unwrap().contains(&json!("1.1.0")), "{v}");
}
