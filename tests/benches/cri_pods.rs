//! bench/cri-pods: in a private netns, kubelet's RunPodSandbox (each pod with a hostPort)
//! then StopPodSandbox + RemovePodSandbox for N pods through containerd's CRI, with the
//! node conflist (bridge + host-local, portmap, bandwidth) run by berth's plugins and, on a
//! fresh containerd, by the reference plugins (/usr/lib/cni); medians and p90 per call,
//! first and last 10.
//! Usage: cargo bench -p berth-tests --bench cri-pods [-- N]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_tests::harness::cri::{node_conflist, Node};
use berth_tests::harness::{isolated_main, plugin_dir, sh};

fn stats(v: &[Duration]) -> String {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    format!("{:.0} / {:.0}", at(0.5), at(0.9))
}

/// RunPodSandbox then removal of `n` pods on a node whose plugins are in `bins`.
fn run(name: &str, bins: &std::path::Path, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut node = Node::start(name, None, bins, &node_conflist("10.244.0.0/16", "10.0.0.0/8"));
    let (mut runs, mut removes, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        ids.push(node.run_pod(&format!("p{i}"), &[(30000 + i as u16, 80)], &[]).expect("RunPodSandbox"));
        runs.push(t.elapsed());
    }
    for id in ids.iter().rev() {
        let t = Instant::now();
        node.remove_pod(id).expect("remove");
        removes.push(t.elapsed());
    }
    drop(node);
    sh("ip link del cni0 2>/dev/null; rm -rf /var/lib/cni/networks; true");
    (runs, removes)
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(50);
    isolated_main(|| {
        let reference = PathBuf::from("/usr/lib/cni");
        let mut impls = vec![("berth", plugin_dir())];
        if reference.join("bandwidth").is_file() {
            impls.push(("reference", reference));
        }
        let k = 10.min(n);
        println!(
            "| containerd CRI, N={n} pods with a hostPort, ms median / p90 | {} |",
            impls.iter().map(|i| i.0).collect::<Vec<_>>().join(" | ")
        );
        println!("|---|{}", "---|".repeat(impls.len()));
        let mut rows = [
            "| RunPodSandbox, first 10 |".to_string(),
            "| RunPodSandbox, last 10 |".to_string(),
            "| Stop+RemovePodSandbox, first 10 (at N) |".to_string(),
            "| Stop+RemovePodSandbox, last 10 |".to_string(),
        ];
        for (label, bins) in &impls {
            let (runs, removes) = run(label, bins, n);
            rows[0].push_str(&format!(" {} |", stats(&runs[..k])));
            rows[1].push_str(&format!(" {} |", stats(&runs[n - k..])));
            rows[2].push_str(&format!(" {} |", stats(&removes[..k])));
            rows[3].push_str(&format!(" {} |", stats(&removes[n - k..])));
        }
        for r in rows {
            println!("{r}");
        }
    });
}
