//! bench/cni-links: in a private netns, ADD then DEL N containers through macvlan +
//! host-local (the master a veth whose peer is another netns), N through ptp (ipMasq) +
//! host-local, and N host devices (veths)
//! through host-device, with berth's plugins and, in the same run, the reference plugins
//! from /usr/lib/cni; per-operation medians for the first and last 10.
//! Usage: cargo bench -p berth-tests --bench cni-links [-- N]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cni::conflist::{ConfList, Runner, RuntimeConf};
use berth_tests::harness::{isolated_main, plugin_dir, sh};
use serde_json::json;

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms.get(ms.len() / 2).copied().unwrap_or(0.0)
}

fn netns(names: &[String]) {
    let script: String = names.iter().map(|c| format!("netns add {c}\n")).collect();
    std::fs::write("/run/berth/netns.batch", script).unwrap();
    sh("ip -batch /run/berth/netns.batch");
}

/// ADD then DEL `n` attachments of `plugin` (config `body`, `rt` per container index):
/// medians of the first and last 10 of each.
fn run(path: &Path, body: serde_json::Value, prefix: &str, n: usize, ifname: &str) -> (f64, f64, f64, f64) {
    let runner = Runner { path: vec![path.to_path_buf()] };
    let list = ConfList::parse(json!({"cniVersion": "1.0.0", "name": prefix, "plugins": [body]}).to_string().as_bytes()).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    netns(&names);
    // Both implementations start alike: the plugin's binary read once (VERSION) and the
    // kernel's work behind the namespaces just made (and the previous run's DELs) done.
    if let Some(ty) = body.get("type").and_then(|t| t.as_str()) {
        sh(&format!("CNI_COMMAND=VERSION {} </dev/null >/dev/null", path.join(ty).display()));
    }
    std::thread::sleep(Duration::from_secs(1));
    let cfgs: Vec<RuntimeConf> = names
        .iter()
        .map(|c| RuntimeConf { container_id: c.clone(), netns: format!("/run/netns/{c}"), ifname: ifname.into(), ..Default::default() })
        .collect();
    let (mut adds, mut dels, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for (i, cfg) in cfgs.iter().enumerate() {
        let mut l = list.clone();
        if let Some(d) = l.plugins.get_mut(0).and_then(|p| p.as_object_mut()) {
            if d.contains_key("device") {
                d.insert("device".into(), json!(format!("hd{i}")));
            }
        }
        let t = Instant::now();
        results.push((l.clone(), runner.add(&l, cfg).expect("ADD")));
        adds.push(t.elapsed());
    }
    for (cfg, (l, res)) in cfgs.iter().zip(&results) {
        let t = Instant::now();
        runner.del(l, cfg, Some(res)).expect("DEL");
        dels.push(t.elapsed());
    }
    let k = 10.min(n);
    (median(&adds[..k]), median(&adds[n - k..]), median(&dels[..k]), median(&dels[n - k..]))
}

/// What moving a device costs the kernel: `n` veths moved into a netns each and back with
/// one netlink request each (medians of the first and last 10 moves in, then back), the
/// floor under host-device's ADD and DEL.
fn move_floor(n: usize) -> (f64, f64, f64, f64) {
    use netd::netlink::Socket;
    use netd::netns::NetNs;
    let names: Vec<String> = (0..n).map(|i| format!("fm{i}")).collect();
    netns(&names);
    let script: String = (0..n).map(|i| format!("link add fd{i} type veth peer name fp{i}\n")).collect();
    std::fs::write("/run/berth/links.batch", script).unwrap();
    sh("ip -batch /run/berth/links.batch");
    let host = std::fs::File::open("/proc/self/ns/net").unwrap();
    let mut sock = Socket::open().unwrap();
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    let spaces: Vec<NetNs> = names.iter().map(|c| NetNs::open(format!("/run/netns/{c}")).unwrap()).collect();
    for (i, ns) in spaces.iter().enumerate() {
        let t = Instant::now();
        let l = sock.link_by_name(&format!("fd{i}")).unwrap().unwrap();
        sock.set_netns(l.index, ns.fd()).unwrap();
        ins.push(t.elapsed());
    }
    for (i, ns) in spaces.iter().enumerate() {
        let t = Instant::now();
        ns.run(|| {
            let mut s = Socket::open()?;
            let l = s.link_by_name(&format!("fd{i}"))?.ok_or(netd::Error::Internal("moved link"))?;
            Ok(s.set_netns(l.index, std::os::fd::AsRawFd::as_raw_fd(&host))?)
        })
        .unwrap();
        outs.push(t.elapsed());
    }
    sh(&format!("for i in $(seq 0 {}); do ip link del fd$i 2>/dev/null; done; true", n - 1));
    let k = 10.min(n);
    (median(&ins[..k]), median(&ins[n - k..]), median(&outs[..k]), median(&outs[n - k..]))
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100);
    isolated_main(|| {
        sh("ip netns add lanpeer && ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
        let reference = PathBuf::from("/usr/lib/cni");
        let impls: Vec<(&str, PathBuf)> = std::iter::once(("berth", plugin_dir()))
            .chain(reference.join("macvlan").is_file().then(|| ("reference", reference.clone())))
            .collect();
        println!(
            "| N={n}, ms median: ADD first 10 / last 10, DEL first 10 / last 10 | {} |",
            impls.iter().map(|i| i.0).collect::<Vec<_>>().join(" | ")
        );
        println!("|---|{}", "---|".repeat(impls.len()));
        let mut rows = vec![format!("| macvlan + host-local |"), format!("| ptp (ipMasq) + host-local |"), format!("| host-device |")];
        for (k, (label, path)) in impls.iter().enumerate() {
            let ipam = json!({"type": "host-local", "subnet": "10.10.0.0/16", "dataDir": format!("/run/berth/hl-{label}")});
            let mv = run(path, json!({"type": "macvlan", "master": "lan0", "ipam": ipam}), &format!("m{k}x"), n, "eth0");
            rows[0].push_str(&format!(" {:.1} / {:.1}, {:.1} / {:.1} |", mv.0, mv.1, mv.2, mv.3));
            let ipam = json!({"type": "host-local", "subnet": "10.20.0.0/16", "dataDir": format!("/run/berth/hl-{label}")});
            let pt = run(path, json!({"type": "ptp", "ipMasq": true, "ipam": ipam}), &format!("p{k}x"), n, "eth0");
            rows[1].push_str(&format!(" {:.1} / {:.1}, {:.1} / {:.1} |", pt.0, pt.1, pt.2, pt.3));
            let script: String = (0..n).map(|i| format!("link add hd{i} type veth peer name hp{i}\n")).collect();
            std::fs::write("/run/berth/links.batch", script).unwrap();
            sh("ip -batch /run/berth/links.batch");
            let hd = run(path, json!({"type": "host-device", "device": "hd0", "stateDir": "/run/berth"}), &format!("h{k}x"), n, "net1");
            rows[2].push_str(&format!(" {:.1} / {:.1}, {:.1} / {:.1} |", hd.0, hd.1, hd.2, hd.3));
            sh(&format!("for i in $(seq 0 {}); do ip link del hd$i 2>/dev/null; done; true", n - 1));
        }
        for r in rows {
            println!("{r}");
        }
        let f = move_floor(n);
        println!(
            "\nThe kernel's floor under host-device, one netlink request moving a veth into a netns / back \
             (it waits for an RCU barrier each way): {:.1} / {:.1}, {:.1} / {:.1} ms",
            f.0, f.1, f.2, f.3
        );
    });
}
