//! bench/docker-api: the Docker API path against berth's own CLI and podman's compat API,
//! in one private netns and one run. N times each: `run -d -p P:80 busybox httpd` until
//! 127.0.0.1:P answers, then `rm -f` — berth's CLI, the docker CLI on netd's
//! /run/berth/docker.sock, and the docker CLI on `podman system service` (CNI backend,
//! berth's plugins). Then netd's memory (RSS) idle and with 100 containers it started.
//! Usage: cargo bench -p berth-tests --bench docker-api [-- N]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::harness::berth::import_busybox;
use berth_tests::harness::docker::{cli, DOCKER_SOCK};
use berth_tests::harness::netd::Netd;
use berth_tests::harness::podman::{self, Podman};
use berth_tests::harness::timing::{pct, run_answer_rm};
use berth_tests::harness::{bin_dir, image, isolated_main, plugin_dir, sh, try_sh};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    isolated_main(|| {
        let Some(docker) = cli() else {
            println!("SKIP bench/docker-api: no docker CLI");
            return;
        };
        import_busybox("hello");
        let netd = Netd::start_quiet();
        let berth = bin_dir().join("berth");
        let d = |args: String| format!("DOCKER_HOST=unix://{DOCKER_SOCK} {docker} {args}");
        let mut rows = Vec::new();
        let httpd = "busybox httpd -f -p 80 -h /www";
        rows.push((
            "berth CLI",
            run_answer_rm(
                n,
                5000,
                |i, p| format!("{} run -d --name b{i} -p {p}:80 {httpd}", berth.display()),
                |i| format!("{} rm -f b{i}", berth.display()),
            ),
        ));
        rows.push((
            "docker CLI → netd (berth's API)",
            run_answer_rm(n, 5100, |i, p| d(format!("run -d --name d{i} -p {p}:80 {httpd}")), |i| d(format!("rm -f d{i}"))),
        ));
        if podman::installed() {
            let ours = Path::new("/run/berth/cni-ours");
            std::fs::create_dir_all(ours).unwrap();
            for p in ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback"] {
                std::fs::copy(plugin_dir().join(p), ours.join(p)).unwrap();
            }
            let pm = Podman::new(Path::new("/run/berth/podman-api"), ours, &image::busybox_tar("hello"));
            let sock = "/run/berth/podman-api.sock";
            let mut service = Command::new("sh")
                .arg("-c")
                .arg(format!("exec env {}", pm.command(&format!("system service --time=0 unix://{sock}"))))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("podman system service");
            let t0 = Instant::now();
            while !try_sh(&format!("curl -sf --unix-socket {sock} http://x/_ping")).0 {
                assert!(t0.elapsed() < Duration::from_secs(20), "podman's API did not come up");
                std::thread::sleep(Duration::from_millis(20));
            }
            let p = |args: String| format!("DOCKER_HOST=unix://{sock} {docker} {args}");
            rows.push((
                "docker CLI → podman system service",
                run_answer_rm(
                    n,
                    5200,
                    |i, port| p(format!("run -d --name p{i} -p {port}:80 localhost/bb httpd -f -p 80 -h /www")),
                    |i| p(format!("rm -f p{i}")),
                ),
            ));
            let _ = service.kill();
            let _ = service.wait();
        } else {
            println!("SKIP podman's compat API: podman or runc not installed");
        }
        // The client's own share: the docker CLI against a stand-in that answers at once
        // (bench/answer-at-once.py), and starting and exiting, sending nothing.
        let stand_in = "/run/berth/answer-at-once.sock";
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/answer-at-once.py");
        let mut server = Command::new("python3").arg(&script).arg(stand_in).stdout(Stdio::null()).spawn().expect("the stand-in server");
        let t0 = Instant::now();
        while !try_sh(&format!("curl -sf --unix-socket {stand_in} http://x/_ping")).0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "the stand-in did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (mut client_run, mut client_rm) = (Vec::new(), Vec::new());
        for i in 0..n {
            let s = |args: &str| format!("DOCKER_HOST=unix://{stand_in} {docker} {args}");
            let t = Instant::now();
            sh(&s(&format!("run -d --name s{i} -p 5300:80 {httpd}")));
            client_run.push(berth_tests::harness::timing::ms(t));
            let t = Instant::now();
            sh(&s(&format!("rm -f s{i}")));
            client_rm.push(berth_tests::harness::timing::ms(t));
        }
        let _ = server.kill();
        let _ = server.wait();
        let mut alone = Vec::new();
        for _ in 0..n {
            let t = std::time::Instant::now();
            sh(&format!("{docker} --version"));
            alone.push(berth_tests::harness::timing::ms(t));
        }
        println!("| N={n}, ms median / p90 | run -d -p → first answer | rm -f |");
        println!("|---|---|---|");
        for (label, (up, down)) in &rows {
            println!("| {label} | {:.1} / {:.1} | {:.1} / {:.1} |", pct(up, 0.5), pct(up, 0.9), pct(down, 0.5), pct(down, 0.9));
        }
        println!(
            "| docker CLI → a stand-in answering at once (the client's own share) | {:.1} / {:.1} | {:.1} / {:.1} |",
            pct(&client_run, 0.5),
            pct(&client_run, 0.9),
            pct(&client_rm, 0.5),
            pct(&client_rm, 0.9)
        );
        println!("| docker --version alone (the client's start, nothing sent) | {:.1} / {:.1} | |", pct(&alone, 0.5), pct(&alone, 0.9));
        let idle = rss_kb(netd.pid());
        for i in 0..100 {
            sh(&d(format!("run -d --name m{i} busybox sleep 600")));
        }
        sh(&d("ps -q".into()));
        let busy = rss_kb(netd.pid());
        println!("| netd RSS, kB | idle {idle} | with 100 containers {busy} |");
        sh(&d("rm -f $(".to_string() + &d("ps -aq".into()) + ")"));
    });
}
