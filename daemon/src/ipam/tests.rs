use std::collections::HashSet;
use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set(subnet: &str, start: Option<&str>, end: Option<&str>) -> RangeSet {
    RangeSet::new(vec![Range::new(subnet.parse().unwrap(), start.map(ip), end.map(ip), None).unwrap()]).unwrap()
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("netd-ipam-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn defaults_follow_host_local() {
    let r = Range::new("172.17.0.0/16".parse().unwrap(), None, None, None).unwrap();
    assert_eq!(r.start, ip("172.17.0.1"));
    assert_eq!(r.end, ip("172.17.255.254"));
    assert_eq!(r.gateway, Some(ip("172.17.0.1")));
    let r6 = Range::new("fd00::/64".parse().unwrap(), None, None, None).unwrap();
    assert_eq!(r6.end, ip("fd00::ffff:ffff:ffff:ffff"));
}

#[test]
fn invalid_ranges_are_refused() {
    assert!(Range::new("10.0.0.0/31".parse().unwrap(), None, None, None).is_err());
    assert!(Range::new("10.0.0.1/24".parse().unwrap(), None, None, None).is_err());
    assert!(Range::new("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.1.5")), None, None).is_err());
    assert!(Range::new("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.0.9")), Some(ip("10.0.0.5")), None).is_err());
    let a = Range::new("10.0.0.0/24".parse().unwrap(), None, None, None).unwrap();
    let b = Range::new("10.0.0.0/25".parse().unwrap(), None, None, None).unwrap();
    assert!(RangeSet::new(vec![a.clone(), b]).is_err());
    let v6 = Range::new("fd00::/64".parse().unwrap(), None, None, None).unwrap();
    assert!(RangeSet::new(vec![a, v6]).is_err());
}

#[test]
fn candidates_wrap_round_robin_and_end_with_last() {
    let s = set("10.0.0.0/29", None, None); // .1 - .6
    let all: Vec<_> = s.candidates(Some(ip("10.0.0.4"))).map(|c| c.1).collect();
    let want: Vec<_> = [".5", ".6", ".1", ".2", ".3", ".4"].iter().map(|x| ip(&format!("10.0.0{x}"))).collect();
    assert_eq!(all, want);
    let first: Vec<_> = s.candidates(None).map(|c| c.1).collect();
    assert_eq!(first.len(), 6);
    assert_eq!(first[0], ip("10.0.0.1"));
}

#[test]
fn allocates_in_order_skips_gateway_and_reports_exhaustion() {
    let dir = tmpdir("order");
    let store = Store::open(&dir, "net").unwrap();
    let s = vec![set("10.1.0.0/29", None, None)];
    let mut got = Vec::new();
    for i in 0..5 {
        let a = allocate(&store, &s, &format!("c{i}"), "eth0", &[]).unwrap();
        got.push(a[0].address.to_string());
    }
    assert_eq!(got, ["10.1.0.2/29", "10.1.0.3/29", "10.1.0.4/29", "10.1.0.5/29", "10.1.0.6/29"]);
    let err = allocate(&store, &s, "c9", "eth0", &[]).unwrap_err();
    assert!(err.to_string().contains("no IP addresses available"), "{err}");
    // byte-compatible files
    assert_eq!(std::fs::read_to_string(dir.join("net/10.1.0.2")).unwrap(), "c0\r\neth0");
    assert_eq!(std::fs::read_to_string(dir.join("net/last_reserved_ip.0")).unwrap(), "10.1.0.6");
    // release by hint and by scan; round robin continues after the last one
    assert_eq!(release(&store, "c1", "eth0", &[ip("10.1.0.3")]).unwrap(), vec![ip("10.1.0.3")]);
    assert_eq!(release(&store, "c2", "eth0", &[]).unwrap(), vec![ip("10.1.0.4")]);
    assert!(release(&store, "c2", "eth0", &[]).unwrap().is_empty());
    let a = allocate(&store, &s, "c10", "eth0", &[]).unwrap();
    assert_eq!(a[0].address.ip(), ip("10.1.0.3"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dual_stack_and_pinned_addresses() {
    let dir = tmpdir("dual");
    let store = Store::open(&dir, "net").unwrap();
    let s = vec![set("10.2.0.0/24", Some("10.2.0.100"), None), set("fd00:1::/64", None, None)];
    let a = allocate(&store, &s, "c", "eth0", &[]).unwrap();
    assert_eq!(a[0].address.to_string(), "10.2.0.100/24");
    assert_eq!(a[1].address.to_string(), "fd00:1::2/64");
    let b = allocate(&store, &s, "d", "eth0", &[ip("10.2.0.150")]).unwrap();
    assert_eq!(b[0].address.ip(), ip("10.2.0.150"));
    let err = allocate(&store, &s, "e", "eth0", &[ip("10.2.0.150")]).unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
    // the failed call left nothing behind in the v6 set
    assert!(find(&store, "e", "eth0").unwrap().is_empty());
    let valid: HashSet<_> = [("c".to_string(), "eth0".to_string())].into_iter().collect();
    let mut freed = gc(&store, &valid).unwrap();
    freed.sort();
    assert_eq!(freed.len(), 2);
    assert_eq!(find(&store, "c", "eth0").unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn whole_v6_space_counts_without_overflow() {
    let net: ipnetwork::IpNetwork = "::/0".parse().unwrap();
    let r = crate::ipam::Range::new(net, Some("::".parse().unwrap()), None, Some("::1".parse().unwrap())).unwrap();
    let set = crate::ipam::RangeSet(vec![r]);
    assert_eq!(set.candidates(None).take(3).count(), 3);
}
