//! Content that somebody else controls — a cloned repository's build context, a second
//! container sharing a volume, a container racing `commit` — never reaches the host's
//! files: a canary file and directory outside the state dirs stay byte-identical, modes
//! included. And the store is private: another user reads no volume and runs nothing from
//! the layer store.

use std::fs;
use std::path::PathBuf;

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{isolated, sh, try_sh};

/// A canary on a tmpfs of this test's own mount namespace: a file (0644), a directory
/// (0755) with a file in it.
fn canary() {
    sh("mkdir -p /mnt && mount -t tmpfs tmpfs /mnt && mkdir -p /mnt/canary/dir && echo precious > /mnt/canary/dir/file");
    sh("echo precious > /mnt/canary/file && chmod 644 /mnt/canary/file && chmod 755 /mnt/canary/dir");
    sh("mkdir -p /run/berth/arch && echo from-the-host > /run/berth/arch/secret.txt && tar -C /run/berth/arch -cf /mnt/canary/host.tar secret.txt");
}

/// Every canary entry with its mode, size, owner and the contents.
fn snapshot() -> String {
    sh("cd /mnt/canary && find . -exec stat -c '%n %f %s %u:%g' {} + | sort && cat file dir/file && ls -la dir")
}

fn context(name: &str, script: &str) -> PathBuf {
    let dir = PathBuf::from("/run/berth/ctx").join(name);
    fs::create_dir_all(&dir).unwrap();
    sh(&format!("cd {} && {script}", dir.display()));
    dir
}

fn build(tag: &str, ctx: &std::path::Path) -> berth_tests::harness::berth::Out {
    berth(&["build", "--no-cache", "-t", tag, ctx.to_str().unwrap()])
}

fn in_image(tag: &str, script: &str) -> String {
    berth(&["run", "--rm", tag, "sh", "-c", script]).ok()
}

#[test]
fn a_hostile_build_context_writes_nothing_outside_the_image() {
    isolated(|| {
        import_busybox("base");
        canary();
        let before = snapshot();
        // Both sources hold `f`: first a symlink to the host file, then a setuid file
        // (and `d`: a symlink to a host directory, then a real directory).
        let both = "mkdir a b b/d && ln -s /mnt/canary/file a/f && ln -s /mnt/canary/dir a/d && echo pwned > b/f && chmod 4755 b/f && echo pwned > b/d/new";
        let ctx = context("both", &format!("{both} && printf 'FROM busybox\\nCOPY a b /out/\\n' > Dockerfile"));
        let out = build("both", &ctx);
        assert_eq!(snapshot(), before, "COPY a b wrote through the context's symlinks: {out:?}");
        if out.code == 0 {
            // The file replaced the link inside the image, setuid bit and all.
            assert_eq!(in_image("both", "stat -c '%a %F' /out/f; cat /out/f"), "4755 regular file\npwned\n");
        }

        // `COPY * /app/`: `*` stays at the top level (a, b are directories, copied as such).
        let ctx = context("star", &format!("{both} && printf 'FROM busybox\\nCOPY * /app/\\n' > Dockerfile"));
        let out = build("star", &ctx);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(snapshot(), before, "COPY * wrote through the context's symlinks");
        assert_eq!(in_image("star", "readlink /app/a/f; cat /app/b/f; ls /app"), "/mnt/canary/file\npwned\nDockerfile\na\nb\n");

        // COPY --from a stage whose /a holds the links and /b the files.
        let stage = "FROM busybox AS s\nRUN mkdir -p /a /b/d && ln -s /mnt/canary/file /a/f && ln -s /mnt/canary/dir /a/d && echo pwned > /b/f && chmod 4755 /b/f && echo pwned > /b/d/new\nFROM busybox\nCOPY --from=s /a /out/\nCOPY --from=s /b /out/\n";
        let ctx = context("from", &format!("printf '{}' > Dockerfile", stage.replace('\n', "\\n")));
        let out = build("from", &ctx);
        assert_eq!(snapshot(), before, "COPY --from wrote through the stage's symlinks: {out:?}");

        // ADD of a symlink to a host archive: the link is copied, nothing is unpacked.
        let ctx = context("add", "ln -s /mnt/canary/host.tar evil.tar && printf 'FROM busybox\\nADD evil.tar /x/\\n' > Dockerfile");
        let out = build("add", &ctx);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(in_image("add", "ls /x; test -e /x/secret.txt && echo UNPACKED; true"), "evil.tar\n", "ADD followed the link");
        assert_eq!(snapshot(), before);
    });
}

/// An image whose /data holds 40 directories of 40 files: a copy-up long enough to race.
fn big_image() {
    let ctx = context("big", "printf 'FROM busybox\\nRUN mkdir /data && cd /data && for d in $(seq 1 40); do mkdir d$d; for f in $(seq 1 40); do echo x > d$d/f$f; done; done\\n' > Dockerfile");
    assert_eq!(build("big", &ctx).code, 0);
}

fn berth_bg(args: &[&str]) -> std::process::Child {
    std::process::Command::new(berth_tests::harness::bin_dir().join("berth"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits up to 20 s for `child`, then kills container `name`; its stdout.
fn finish(mut child: std::process::Child, name: &str) -> String {
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = berth(&["rm", "-f", name]);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_container_sharing_a_volume_cannot_redirect_the_copy_up() {
    isolated(|| {
        import_busybox("base");
        big_image();
        canary();
        let before = snapshot();
        let tries: u32 = std::env::var("BERTH_RACE_TRIES").ok().and_then(|t| t.parse().ok()).unwrap_or(8);
        let (mut planted, mut hits) = (0, 0);
        for t in 0..tries {
            let (vol, name) = (format!("shared{t}"), format!("attacker{t}"));
            // The attacker waits for the copy to start, then plants links to the host
            // directory under every name the copy has not made yet.
            let attack = "echo ready > /dev/null; while [ -z \"$(ls /v)\" ]; do :; done; for d in $(seq 40 -1 1); do ln -s /mnt/canary/dir /v/d$d 2>/dev/null; done; ls -l /v | grep -c -- '->'";
            let attacker = berth_bg(&["run", "--name", &name, "-v", &format!("{vol}:/v"), "busybox", "sh", "-c", attack]);
            berth_tests::harness::wait_for("the attacker to run", || {
                berth(&["ps", "--filter", &format!("name={name}"), "-q"]).stdout.trim().len() == 12
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            let _victim = berth(&["run", "--rm", "-v", &format!("{vol}:/data"), "big", "true"]);
            let links: u32 = finish(attacker, &name).trim().parse().unwrap_or(0);
            planted += u32::from(links > 0);
            if snapshot() != before {
                hits += 1;
                sh("rm -rf /mnt/canary/dir/* && echo precious > /mnt/canary/dir/file && chmod 755 /mnt/canary/dir");
            }
        }
        println!("REPORT volume copy-up race: {tries} tries, links planted during the copy in {planted}, host written in {hits}");
        assert_eq!(hits, 0, "the copy-up wrote through planted links in {hits} of {tries} tries");
        assert!(planted > 0, "the race never ran: no link was planted during a copy");
    });
}

#[test]
fn a_container_swapping_directories_during_commit_commits_no_host_file() {
    isolated(|| {
        import_busybox("base");
        canary();
        // Inside: /x/d flips between a real directory and a link to the host's directory
        // — a shell loop of the container, and a fast one: a python process that joins the
        // container's cgroups and renames through its root (what a compiled program in
        // the container would do, microseconds per flip).
        let flip = "mkdir -p /x; while :; do rm -rf /x/d; mkdir /x/d; echo own > /x/d/own; rm -rf /x/d; ln -s /mnt/canary/dir /x/d; done";
        berth(&["run", "-d", "--name", "flipper", "busybox", "sh", "-c", flip]).ok();
        berth(&["run", "-d", "--name", "fast", "busybox", "sleep", "600"]).ok();
        let pid = berth(&["inspect", "-f", "{{.State.Pid}}", "fast"]).ok().trim().to_string();
        let fast = format!(
            "import os\nfor l in open('/proc/{pid}/cgroup'):\n    _, c, p = l.strip().split(':', 2)\n    d = '/sys/fs/cgroup/' + (c.replace('name=', '') + p if c else p.lstrip('/'))\n    try: open(d + '/cgroup.procs', 'w').write(str(os.getpid()))\n    except OSError: pass\nr = '/proc/{pid}/root/x'\nos.makedirs(r + '/real'); open(r + '/real/own', 'w').write('own')\nos.symlink('/mnt/canary/dir', r + '/link')\nwhile True:\n    os.rename(r + '/real', r + '/d'); os.rename(r + '/d', r + '/real'); os.rename(r + '/link', r + '/d'); os.rename(r + '/d', r + '/link')\n"
        );
        std::fs::write("/run/berth/flip.py", fast).unwrap();
        let mut flipper = std::process::Command::new("python3").arg("/run/berth/flip.py").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        // BERTH_RACE_TRIES for a longer run.
        let tries: u32 = std::env::var("BERTH_RACE_TRIES").ok().and_then(|t| t.parse().ok()).unwrap_or(60);
        let mut failed = 0;
        for t in 0..tries {
            failed += u32::from(berth(&["commit", "flipper", &format!("flip:{t}")]).code != 0);
            failed += u32::from(berth(&["commit", "fast", &format!("fast:{t}")]).code != 0);
        }
        // Layers holding the host's file (each leaking commit adds one, unless two leaked
        // byte-identical layers).
        let leaked = sh("grep -rl precious /var/lib/berth/blobs || true").lines().count();
        let _ = flipper.kill();
        let _ = flipper.wait();
        println!("REPORT commit race: {tries} commits each of two containers flipping a directory and a host link: {failed} failed, {leaked} layers with host content");
        assert_eq!((failed, leaked), (0, 0), "commit raced the container");
        berth(&["rm", "-f", "flipper", "fast"]).ok();
    });
}

#[test]
fn the_store_is_private_to_root() {
    isolated(|| {
        import_busybox("base");
        // A setuid-root program in a layer, and a volume with data.
        let ctx =
            context("suid", "printf 'FROM busybox\\nRUN cp /bin/busybox /bin/suid-shell && chmod 4755 /bin/suid-shell\\n' > Dockerfile");
        assert_eq!(build("suid", &ctx).code, 0);
        berth(&["run", "--rm", "-v", "secrets:/s", "busybox", "sh", "-c", "echo hunter2 > /s/pw"]).ok();
        let nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
        let check = || {
            for p in ["/var/lib/berth", "/var/lib/berth/volumes", "/var/lib/berth/layers", "/var/lib/berth/blobs"] {
                assert!(!try_sh(&format!("{nobody} ls {p}")).0, "another user listed {p}");
            }
            let (read, out) = try_sh(&format!("{nobody} cat /var/lib/berth/volumes/secrets/_data/pw"));
            assert!(!read, "another user read a volume: {out}");
            let (ran, out) = try_sh(&format!("{nobody} sh -c 'for f in /var/lib/berth/layers/*/bin/suid-shell; do $f id -u; done'"));
            assert!(!ran || !out.contains('0'), "another user ran a layer's setuid program: {out}");
        };
        let mode = |p: &str| sh(&format!("stat -c %a {p}")).trim().to_string();
        assert_eq!(mode("/var/lib/berth"), "710");
        for d in ["layers", "volumes", "blobs"] {
            assert_eq!(mode(&format!("/var/lib/berth/{d}")), "700", "{d}");
        }
        check();
        // A store an older version left open is tightened by the next command.
        sh("chmod 755 /var/lib/berth /var/lib/berth/layers /var/lib/berth/volumes /var/lib/berth/blobs");
        berth(&["ps"]).ok();
        assert_eq!(mode("/var/lib/berth"), "710");
        assert_eq!(mode("/var/lib/berth/layers"), "700");
        check();
        // With only the root open (a user given access to it), the content stays closed.
        sh("chmod 711 /var/lib/berth");
        let (read, out) = try_sh(&format!("{nobody} cat /var/lib/berth/volumes/secrets/_data/pw"));
        assert!(!read, "{out}");
        let (listed, _) = try_sh(&format!("{nobody} ls /var/lib/berth/layers"));
        assert!(!listed);
    });
}
