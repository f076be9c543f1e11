//! Property-based fuzzing of everything a CNI plugin parses from strangers: the network
//! config, `prevResult`, conflists, and the `-p` publish grammar shared with the runtime.
//! Short runs in CI; `cargo test -p berth-cni --test fuzz -- --ignored` runs 100k cases
//! per target. No input may panic; every rejection is a typed error with a spec code.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

use berth_cni::conflist::ConfList;
use berth_cni::types::{code, CniResult, NetConf};

const KNOWN_CODES: &[u32] = &[code::INCOMPATIBLE_VERSION, code::UNSUPPORTED_FIELD, code::DECODE, code::INVALID_CONFIG, code::INVALID_ENV];

/// Strings an attacker would try: control characters, traversal, huge numbers, unicode.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.0.0".to_string()),
        Just("1.1.0".to_string()),
        Just("0.3.1".to_string()),
        Just("berth".to_string()),
        Just("../../etc".to_string()),
        Just("all".to_string()),
        Just("eth0\n-A INPUT -j ACCEPT".to_string()),
        Just("172.17.0.0/16".to_string()),
        Just("::/0".to_string()),
        Just("bridge".to_string()),
        "[ -~]{0,24}",
        "\\PC{0,12}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("cniVersion".to_string()),
            Just("name".to_string()),
            Just("type".to_string()),
            Just("prevResult".to_string()),
            Just("interfaces".to_string()),
            Just("ips".to_string()),
            Just("address".to_string()),
            Just("interface".to_string()),
            Just("routes".to_string()),
            Just("plugins".to_string()),
            Just("cni.dev/valid-attachments".to_string()),
            Just("containerID".to_string()),
            Just("ifname".to_string()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A config that passes the version check more often, so the deeper parsing is reached.
fn config() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (nasty_string(), json_value(), json_value()).prop_map(|(name, prev, att)| {
            json!({"cniVersion": "1.1.0", "name": name, "type": "bridge", "prevResult": prev, "cni.dev/valid-attachments": att})
                .to_string()
                .into_bytes()
        }),
    ]
}

fn runner(short: u32, long: bool) -> TestRunner {
    let cases = if long { 100_000 } else { short };
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

fn cni_configs(long: bool) {
    let mut r = runner(2_000, long);
    let n = std::cell::Cell::new(0u64);
    r.run(&config(), |input| {
        n.set(n.get() + 1);
        match NetConf::parse(&input) {
            Ok(c) => {
                // What parse accepted is safe to use: names passed their grammar.
                if !c.name.is_empty() {
                    prop_assert!(netd::name::Name::network(&c.name).is_ok());
                }
                for i in c.prev_result.iter().flat_map(|p| p.interfaces.iter()) {
                    prop_assert!(netd::name::Name::interface(&i.name).is_ok());
                }
            }
            Err(e) => prop_assert!(KNOWN_CODES.contains(&e.code), "unexpected code {} ({})", e.code, e.msg),
        }
        let _ = ConfList::parse(&input);
        Ok(())
    })
    .unwrap();
    println!("fuzz cni_configs: {} cases, no panic", n.get());
}

fn prev_results(long: bool) {
    let mut r = runner(2_000, long);
    let n = std::cell::Cell::new(0u64);
    r.run(&json_value(), |v| {
        n.set(n.get() + 1);
        if let Ok(res) = CniResult::from_json(&v) {
            for ver in ["0.3.0", "0.4.0", "1.0.0", "1.1.0"] {
                let _ = res.to_json(ver);
            }
            let _ = res.container_ips();
        }
        Ok(())
    })
    .unwrap();
    println!("fuzz prev_results: {} cases, no panic", n.get());
}

fn publish_spec() -> impl Strategy<Value = String> {
    let port =
        prop_oneof![any::<u16>().prop_map(|p| p.to_string()), Just("0".into()), Just("65536".into()), Just("-1".into()), "[0-9]{1,7}"];
    let range = (port.clone(), prop::option::of(port)).prop_map(|(a, b)| b.map(|b| format!("{a}-{b}")).unwrap_or(a));
    let ip = prop_oneof![
        Just("127.0.0.1".to_string()),
        Just("[::1]".to_string()),
        Just("::1".to_string()),
        Just("0.0.0.0".to_string()),
        "[0-9.:a-f]{0,16}"
    ];
    let proto = prop_oneof![Just("".to_string()), Just("/tcp".into()), Just("/udp".into()), Just("/sctp".into()), "/[a-z]{0,5}"];
    prop_oneof![
        (prop::option::of(ip), prop::option::of(range.clone()), range, proto).prop_map(|(ip, h, c, p)| {
            let mut s = String::new();
            if let Some(ip) = ip {
                s.push_str(&ip);
                s.push(':');
            }
            if let Some(h) = h {
                s.push_str(&h);
                s.push(':');
            }
            format!("{s}{c}{p}")
        }),
        any::<String>(),
    ]
}

fn publish(long: bool) {
    let mut r = runner(5_000, long);
    let n = std::cell::Cell::new(0u64);
    r.run(&publish_spec(), |spec| {
        n.set(n.get() + 1);
        match netd::portmap::expand_publish(&spec) {
            Ok(maps) => {
                for m in maps {
                    prop_assert!(m.container_port > 0 && (m.host_port > 0 || m.is_ephemeral()));
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    })
    .unwrap();
    println!("fuzz publish: {} cases, no panic", n.get());
}

#[test]
fn fuzz_cni_configs() {
    cni_configs(false);
}

#[test]
fn fuzz_prev_results() {
    prev_results(false);
}

#[test]
fn fuzz_publish() {
    publish(false);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_cni_configs_long() {
    cni_configs(true);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_prev_results_long() {
    prev_results(true);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_publish_long() {
    publish(true);
}
