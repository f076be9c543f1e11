//! bench/images: `build` of a 3-step Dockerfile (cold and cached), `pull` of a 3-layer
//! image from a registry on 127.0.0.1, `commit` of a container with 1,000 changed files;
//! berth, and podman (buildah inside) in the same run where installed.
//! Usage: cargo bench -p berth-tests --bench images [-- N]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use berth_tests::harness::berth::import_busybox;
use berth_tests::harness::podman::{self, Podman};
use berth_tests::harness::{bin_dir, image, isolated_main, plugin_dir, try_sh, wait_for};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs a shell command N times (after `prep` each time); median ms.
fn time(n: usize, prep: &dyn Fn(), cmd: &str) -> f64 {
    let mut v = Vec::new();
    for _ in 0..n {
        prep();
        let t = Instant::now();
        let (ok, out) = try_sh(cmd);
        assert!(ok, "`{cmd}` failed: {out}");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    isolated_main(|| {
        let b = bin_dir().join("berth").display().to_string();
        import_busybox("bench");
        let ctx = Path::new("/run/berth/bench-ctx");
        std::fs::create_dir_all(ctx).unwrap();
        std::fs::write(ctx.join("f.txt"), "payload").unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo built > /built\nCOPY f.txt /f.txt\nENV STAGE=bench\n").unwrap();
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let nothing = || {};
        let c = ctx.display();
        let cold = time(n, &nothing, &format!("{b} build --no-cache -t bench:b {c} >/dev/null"));
        let cached = time(n, &nothing, &format!("{b} build -t bench:b {c} >/dev/null"));
        rows.push(("build, 3 steps: cold / cached".into(), format!("{cold:.0} / {cached:.0}"), String::new()));

        // A 3-layer image in a registry on loopback.
        let registry = Path::new("/usr/bin/docker-registry").exists().then(|| {
            std::fs::write("/run/berth/reg.yml", "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /run/berth/reg\nhttp:\n  addr: 127.0.0.1:5000\nlog:\n  level: error\n").unwrap();
            let k = Kill(Command::new("/usr/bin/docker-registry").args(["serve", "/run/berth/reg.yml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
            wait_for("the registry", || try_sh("curl -s -o /dev/null http://127.0.0.1:5000/v2/").0);
            k
        });
        if registry.is_some() {
            try_sh(&format!("{b} build -t 127.0.0.1:5000/three:v1 {c} >/dev/null && {b} push 127.0.0.1:5000/three:v1 >/dev/null"));
            let rmi = || drop(try_sh(&format!("{b} rmi 127.0.0.1:5000/three:v1 bench:b busybox")));
            let pull = time(n, &rmi, &format!("{b} pull 127.0.0.1:5000/three:v1 >/dev/null"));
            rows.push(("pull, 3 layers from 127.0.0.1".into(), format!("{pull:.0}"), String::new()));
            import_busybox("bench");
        } else {
            println!("SKIP pull: docker-registry not installed");
        }

        try_sh(&format!(
            "{b} run --name many busybox sh -c 'mkdir /data; i=0; while [ $i -lt 1000 ]; do echo $i > /data/f$i; i=$((i+1)); done'"
        ));
        let commit = time(n, &nothing, &format!("{b} commit many bench:many >/dev/null"));
        rows.push(("commit, 1,000 changed files".into(), format!("{commit:.0}"), String::new()));

        // What goes through the descriptor-based copy: COPY of a context directory of
        // 1,000 files, and a new volume's first copy of 1,000 image files.
        let many = Path::new("/run/berth/bench-many");
        std::fs::create_dir_all(many.join("files")).unwrap();
        for i in 0..1000 {
            std::fs::write(many.join(format!("files/f{i}")), format!("{i}")).unwrap();
        }
        std::fs::write(many.join("Dockerfile"), "FROM busybox\nCOPY files /data/\n").unwrap();
        let copy = time(n, &nothing, &format!("{b} build --no-cache -t bench:files {} >/dev/null", many.display()));
        rows.push(("build, COPY of 1,000 files".into(), format!("{copy:.0}"), String::new()));
        let vol = std::cell::Cell::new(0);
        let fresh = || {
            vol.set(vol.get() + 1);
            std::fs::write("/run/berth/vol-name", format!("v{}", vol.get())).unwrap();
        };
        let up = time(n, &fresh, &format!("{b} run --rm -v $(cat /run/berth/vol-name):/data bench:files true"));
        let plain = time(n, &nothing, &format!("{b} run --rm bench:files true"));
        rows.push(("run with a new volume over 1,000 image files (plain run)".into(), format!("{up:.0} ({plain:.0})"), String::new()));

        if podman::installed() && std::env::var_os("BENCH_NO_PODMAN").is_none() {
            let plugins = Path::new("/run/berth/cni-bench");
            std::fs::create_dir_all(plugins).unwrap();
            for p in ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback"] {
                std::fs::copy(plugin_dir().join(p), plugins.join(p)).unwrap();
            }
            let pm = Podman::new(Path::new("/run/berth/podman-bench"), plugins, &image::busybox_tar("bench"));
            let p = |a: &str| pm.command(a);
            let df = ctx.join("Dockerfile.podman");
            std::fs::write(&df, "FROM localhost/bb\nRUN echo built > /built\nCOPY f.txt /f.txt\nENV STAGE=bench\n").unwrap();
            let cold = time(n, &nothing, &p(&format!("build -q --no-cache -f {} -t bench:b {c} >/dev/null", df.display())));
            let cached = time(n, &nothing, &p(&format!("build -q -f {} -t bench:b {c} >/dev/null", df.display())));
            rows[0].2 = format!("{cold:.0} / {cached:.0}");
            if registry.is_some() {
                let rmi = || drop(try_sh(&p("rmi -f 127.0.0.1:5000/three:v1")));
                let pull = time(n, &rmi, &p("pull -q --tls-verify=false 127.0.0.1:5000/three:v1 >/dev/null"));
                rows[1].2 = format!("{pull:.0}");
            }
            try_sh(&p(
                "run --name many localhost/bb sh -c 'mkdir /data; i=0; while [ $i -lt 1000 ]; do echo $i > /data/f$i; i=$((i+1)); done'",
            ));
            let commit = time(n, &nothing, &p("commit -q many bench:many >/dev/null"));
            if let Some(r) = rows.iter_mut().find(|r| r.0.starts_with("commit")) {
                r.2 = format!("{commit:.0}");
            }
        } else {
            println!("SKIP podman: not installed");
        }
        println!("| N={n}, ms median | berth | podman 4.3 (buildah inside; vfs storage) |");
        println!("|---|---|---|");
        for (what, ours, theirs) in rows {
            println!("| {what} | {ours} | {} |", if theirs.is_empty() { "—" } else { &theirs });
        }
    });
}
