//! bench/podman: berth and podman in the same private netns and the same run. For each
//! of berth, podman + berth's CNI plugins, podman + the reference plugins: N times `run -d
//! -p P:80 busybox httpd` until 127.0.0.1:P answers, then `rm -f`; prints medians and p90.
//! Usage: cargo bench -p berth-tests --bench podman [-- N]

use std::path::Path;

use berth_tests::harness::berth::import_busybox;
use berth_tests::harness::podman::{self, Podman};
use berth_tests::harness::timing::{pct, run_answer_rm};
use berth_tests::harness::{bin_dir, image, isolated_main, plugin_dir};

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    isolated_main(|| {
        if !podman::installed() {
            println!("SKIP bench/podman: podman or runc not installed");
            return;
        }
        import_busybox("hello");
        let berth = bin_dir().join("berth");
        let tar = image::busybox_tar("hello");
        let ours = Path::new("/run/berth/cni-ours");
        std::fs::create_dir_all(ours).unwrap();
        for p in ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback"] {
            std::fs::copy(plugin_dir().join(p), ours.join(p)).unwrap();
        }
        let mut rows = Vec::new();
        let b = run_answer_rm(
            n,
            5000,
            |i, port| format!("{} run -d --name b{i} -p {port}:80 busybox httpd -f -p 80 -h /www", berth.display()),
            |i| format!("{} rm -f b{i}", berth.display()),
        );
        rows.push(("berth", b));
        for (label, dir, base) in [("podman + berth plugins", ours, 5100), ("podman + reference plugins", Path::new("/usr/lib/cni"), 5200)]
        {
            if !dir.join("bridge").exists() {
                println!("SKIP {label}: no plugins in {}", dir.display());
                continue;
            }
            let pm = Podman::new(&Path::new("/run/berth").join(format!("podman-{base}")), dir, &tar);
            let cmd = |a: String| pm.command(&a);
            let r = run_answer_rm(
                n,
                base,
                |i, port| cmd(format!("run -d --name p{i} -p {port}:80 localhost/bb httpd -f -p 80 -h /www")),
                |i| cmd(format!("rm -f -t 0 p{i}")),
            );
            rows.push((label, r));
        }
        println!("| N={n}, ms median / p90 | run -d -p → first answer | rm -f |");
        println!("|---|---|---|");
        for (label, (up, down)) in &rows {
            println!("| {label} | {:.1} / {:.1} | {:.1} / {:.1} |", pct(up, 0.5), pct(up, 0.9), pct(down, 0.5), pct(down, 0.9));
        }
    });
}
