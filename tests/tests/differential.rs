//! Differential tests against the reference Go plugins (Debian containernetworking-plugins
//! in /usr/lib/cni): same conflist, same result shape, same host-local files, and each
//! side can DEL what the other added. Skipped, with a printed reason, where not installed.

use std::path::Path;

use serde_json::{json, Value};

use berth_cni::conflist::{ConfList, Runner};
use berth_tests::harness::net::{allocations, links, rt};
use berth_tests::harness::{bin_dir, isolated, Netns};

const REFERENCE: &str = "/usr/lib/cni";

fn reference_available() -> bool {
    let ok = ["bridge", "host-local", "portmap"].iter().all(|p| Path::new(REFERENCE).join(p).is_file());
    if !ok {
        println!("SKIP differential: reference plugins not found in {REFERENCE} (apt-get install containernetworking-plugins)");
    }
    ok
}

/// The value with every leaf replaced by its JSON type, to compare shapes.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

fn list(with_portmap: bool) -> ConfList {
    let mut plugins = vec![json!({
        "type": "bridge", "bridge": "docker0", "isGateway": true, "isDefaultGateway": true,
        "hairpinMode": true, "ipam": {"type": "host-local", "subnet": "172.17.0.0/16"}
    })];
    if with_portmap {
        plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}));
    }
    let doc = json!({"cniVersion": "1.0.0", "name": "berth", "plugins": plugins});
    ConfList::parse(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn same_conflist_same_result_shape_and_files() {
    isolated(|| {
        if !reference_available() {
            return;
        }
        let theirs = Runner { path: vec![REFERENCE.into()] };
        let ours = Runner { path: vec![bin_dir()] };
        let l = list(true);
        let (_a, _b) = (Netns::new("a"), Netns::new("b"));
        let ra = theirs.add(&l, &rt("a", "/run/netns/a", &[(4000, 80, "tcp", "")])).unwrap();
        let file_a = std::fs::read("/var/lib/cni/networks/berth/172.17.0.2").unwrap();
        let rb = ours.add(&l, &rt("b", "/run/netns/b", &[(4001, 80, "tcp", "")])).unwrap();
        // ours continued the reference's round robin from its last_reserved_ip file
        assert_eq!(rb["ips"][0]["address"], "172.17.0.3/16");
        assert_eq!(shape(&ra), shape(&rb), "result shapes differ:\ntheirs {ra}\nours   {rb}");
        assert_eq!(ra["routes"], rb["routes"]);
        assert_eq!(ra["interfaces"][0]["name"], rb["interfaces"][0]["name"]);
        assert_eq!(ra["interfaces"][0]["mac"], rb["interfaces"][0]["mac"], "bridge MAC differs");
        // byte-identical host-local files
        assert_eq!(file_a, b"a\r\neth0");
        assert_eq!(std::fs::read("/var/lib/cni/networks/berth/172.17.0.3").unwrap(), b"b\r\neth0");
        assert_eq!(std::fs::read_to_string("/var/lib/cni/networks/berth/last_reserved_ip.0").unwrap(), "172.17.0.3");
    });
}

#[test]
fn each_side_deletes_what_the_other_added() {
    isolated(|| {
        if !reference_available() {
            return;
        }
        let theirs = Runner { path: vec![REFERENCE.into()] };
        let ours = Runner { path: vec![bin_dir()] };
        let l = list(false);
        let (_a, _b, _w) = (Netns::new("a"), Netns::new("b"), Netns::new("warm"));
        ours.add(&l, &rt("warm", "/run/netns/warm", &[])).unwrap();
        let (base_links, base_allocs) = (links(), allocations());
        let ra = theirs.add(&l, &rt("a", "/run/netns/a", &[])).unwrap();
        let rb = ours.add(&l, &rt("b", "/run/netns/b", &[])).unwrap();
        assert_eq!(allocations().len(), base_allocs.len() + 2);
        ours.del(&l, &rt("a", "/run/netns/a", &[]), Some(&ra)).unwrap();
        theirs.del(&l, &rt("b", "/run/netns/b", &[]), Some(&rb)).unwrap();
        assert_eq!(allocations(), base_allocs);
        assert_eq!(links(), base_links);
    });
}
