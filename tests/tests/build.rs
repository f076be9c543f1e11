//! `berth build`: every instruction, the cache, exec vs shell form, and bad Dockerfiles.

use std::fs;
use std::path::{Path, PathBuf};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::netns::http_answers;
use berth_tests::harness::{isolated, sh, wait_for};

fn context(files: &[(&str, &str)]) -> PathBuf {
    let dir = PathBuf::from("/run/berth/ctx");
    let _ = fs::remove_dir_all(&dir);
    for (name, body) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    dir
}

const DOCKERFILE: &str = r#"ARG BASE=busybox
FROM ${BASE}
ARG GREETING=hello
ENV APP_HOME=/srv/app MODE="built image"
WORKDIR $APP_HOME
COPY --chown=65534:65534 site/ ./www/
COPY sub/*.txt /opt/
COPY . /ctx/
ADD bundle.tar.gz /opt/bundle/
RUN echo "$GREETING from RUN" > /srv/app/run.txt && id -u > /srv/app/uid && ip -4 -o addr show eth0 > /srv/app/net
LABEL org.example.tier="web" version=1
EXPOSE 8080
USER nobody
ENTRYPOINT ["httpd", "-f"]
CMD ["-p", "8080", "-h", "/srv/app/www"]
"#;

fn every_instruction_context() -> PathBuf {
    let dir = context(&[
        ("Dockerfile", DOCKERFILE),
        ("site/index.html", "built page"),
        ("sub/a.txt", "one"),
        ("sub/b.txt", "two"),
        ("secret.key", "never in the image"),
        (".dockerignore", "*.key\n"),
        ("tarsrc/t.txt", "from the tar"),
    ]);
    sh(&format!("tar -C {d}/tarsrc -czf {d}/bundle.tar.gz . && rm -r {d}/tarsrc", d = dir.display()));
    dir
}

fn build(args: &[&str]) -> String {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    berth(&a).ok()
}

#[test]
fn every_instruction_builds_and_runs_and_a_second_build_is_all_cache() {
    isolated(|| {
        import_busybox("base");
        let ctx = every_instruction_context();
        let c = ctx.to_str().unwrap();
        let out = build(&["-t", "site:v1", "--build-arg", "GREETING=hi", c]);
        assert!(out.contains("STEP 15/15: CMD") && out.contains("Successfully tagged site:v1"), "{out}");
        assert_eq!(out.lines().filter(|l| l.starts_with("STEP ")).count(), 15, "one progress line per step: {out}");
        let id = out.lines().find_map(|l| l.strip_prefix("Successfully built ")).unwrap().to_string();

        // What each instruction did, seen from inside.
        let inside = berth(&[
            "run", "--rm", "--entrypoint", "", "site:v1", "sh", "-c",
            "pwd; id -u; cat run.txt uid; ls -ln www/index.html | awk '{print $3}'; cat /opt/a.txt /opt/b.txt /opt/bundle/t.txt; echo; echo $MODE; ls /ctx",
        ])
        .ok();
        let lines: Vec<&str> = inside.lines().collect();
        assert_eq!(lines[..7], ["/srv/app", "65534", "hi from RUN", "0", "65534", "onetwofrom the tar", "built image"], "{inside}");
        assert!(!inside.contains("secret.key"), ".dockerignore ignored: {inside}");
        assert!(inside.contains("Dockerfile") && inside.contains("site"), "{inside}");
        // RUN ran on the default network (an address of docker0's subnet).
        let net = berth(&["run", "--rm", "--entrypoint", "cat", "site:v1", "/srv/app/net"]).ok();
        assert!(net.contains("inet 172.17."), "RUN was not on the default network: {net}");

        // ENTRYPOINT + CMD + USER + EXPOSE: -P publishes 8080 and httpd (as nobody) answers.
        berth(&["run", "-d", "--name", "web", "-P", "site:v1"]).ok();
        let port: u16 = berth(&["port", "web"]).ok().trim().rsplit(':').next().unwrap().parse().unwrap();
        wait_for("the built image to serve", || http_answers(port, "built page"));
        let cfg: serde_json::Value = serde_json::from_str(&berth(&["inspect", "-f", "{{json .Config}}", "web"]).ok()).unwrap();
        assert_eq!(cfg["User"], "nobody");
        assert_eq!(cfg["WorkingDir"], "/srv/app");
        assert_eq!(cfg["Cmd"], serde_json::json!(["httpd", "-f", "-p", "8080", "-h", "/srv/app/www"]));
        assert_eq!(berth(&["ps", "--filter", "label=org.example.tier=web", "--format", "{{.Names}}"]).ok(), "web\n");
        berth(&["rm", "-f", "web"]).ok();

        // Second build: every step after FROM comes from the cache, the same image.
        let again = build(&["-t", "site:v2", "--build-arg", "GREETING=hi", c]);
        assert_eq!(again.matches("Using cache").count(), 12, "{again}");
        assert!(again.contains(&format!("Successfully built {id}")), "{again}");
        // A changed file: its COPY and what follows run again, what precedes is cached.
        fs::write(ctx.join("sub/b.txt"), "changed").unwrap();
        let changed = build(&["-t", "site:v3", "--build-arg", "GREETING=hi", c]);
        assert_eq!(changed.matches("Using cache").count(), 3, "{changed}");
        // --no-cache: nothing from the cache.
        let fresh = build(&["--no-cache", "-t", "site:v4", c]);
        assert_eq!(fresh.matches("Using cache").count(), 0);
        assert_eq!(berth(&["run", "--rm", "--entrypoint", "cat", "site:v4", "run.txt"]).ok(), "hello from RUN\n");
    });
}

#[test]
fn shell_form_runs_under_sh_and_exec_form_is_pid_1_and_gets_sigterm() {
    isolated(|| {
        import_busybox("base");
        let trap = "trap 'echo got TERM; exit 0' TERM\necho ready\nwhile true; do sleep 0.1; done\n";
        let c = context(&[("trap.sh", trap), ("Dockerfile", "FROM busybox\nCOPY trap.sh /trap.sh\nCMD [\"/bin/sh\", \"/trap.sh\"]\n")]);
        build(&["-t", "exec-form", c.to_str().unwrap()]);
        berth(&["run", "-d", "--name", "ex", "exec-form"]).ok();
        wait_for("the script to start", || berth(&["logs", "ex"]).ok().contains("ready"));
        assert_eq!(berth(&["exec", "ex", "cat", "/proc/1/cmdline"]).ok().replace('\0', " ").trim(), "/bin/sh /trap.sh");
        berth(&["stop", "-t", "10", "ex"]).ok();
        assert_eq!(berth(&["inspect", "-f", "{{.State.ExitCode}}", "ex"]).ok().trim(), "0", "PID 1 did not handle SIGTERM");
        assert!(berth(&["logs", "ex"]).ok().contains("got TERM"));

        // STOPSIGNAL: stop sends the image's signal instead of SIGTERM.
        let usr1 = "trap 'echo got USR1; exit 0' USR1\necho ready\nwhile true; do sleep 0.1; done\n";
        let c = context(&[
            ("trap.sh", usr1),
            ("Dockerfile", "FROM busybox\nCOPY trap.sh /trap.sh\nSTOPSIGNAL SIGUSR1\nCMD [\"/bin/sh\", \"/trap.sh\"]\n"),
        ]);
        build(&["-t", "usr1", c.to_str().unwrap()]);
        berth(&["run", "-d", "--name", "u", "usr1"]).ok();
        wait_for("the script to start", || berth(&["logs", "u"]).ok().contains("ready"));
        berth(&["stop", "u"]).ok();
        assert!(berth(&["logs", "u"]).ok().contains("got USR1"), "STOPSIGNAL not used");
        assert_eq!(berth(&["run", "--stop-signal", "NOPE", "usr1"]).code, 125);

        let c = context(&[("Dockerfile", "FROM busybox\nCMD echo shell form $((1+2)) $HOME\n")]);
        build(&["-t", "shell-form", c.to_str().unwrap()]);
        assert_eq!(berth(&["run", "--name", "sf", "shell-form"]).ok(), "shell form 3 /root\n");
        let cmd = berth(&["inspect", "-f", "{{json .Config.Cmd}}", "sf"]).ok();
        assert_eq!(cmd.trim(), r#"["/bin/sh","-c","echo shell form $((1+2)) $HOME"]"#);

        // SHELL holds for the RUNs after it when it comes from the cache too.
        let shell = "FROM busybox\nSHELL [\"/bin/env\", \"MARK=set\", \"/bin/sh\", \"-c\"]\n";
        let c = context(&[("Dockerfile", &format!("{shell}RUN echo $MARK > /one\n"))]);
        build(&["-t", "shell1", c.to_str().unwrap()]);
        let c = context(&[("Dockerfile", &format!("{shell}RUN echo $MARK > /two\n"))]);
        let out = build(&["-t", "shell2", c.to_str().unwrap()]);
        assert!(out.contains("Using cache"), "{out}");
        assert_eq!(berth(&["run", "--rm", "shell2", "cat", "/two"]).ok(), "set\n");
    });
}

#[test]
fn from_scratch_builds_an_image_of_only_what_is_copied() {
    isolated(|| {
        let c = context(&[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"echo\", \"from scratch\"]\n")]);
        fs::copy("/bin/busybox", c.join("busybox")).unwrap();
        build(&["-t", "tiny", c.to_str().unwrap()]);
        assert_eq!(berth(&["run", "--rm", "tiny"]).ok(), "from scratch\n");
        assert_eq!(berth(&["history", "-q", "tiny"]).ok().lines().count(), 2);
        assert_ne!(berth(&["run", "--rm", "tiny", "/bin/sh", "-c", "true"]).code, 0, "a shell in an image that has none");
    });
}

#[test]
fn multi_stage_copies_from_a_stage_and_never_through_its_symlinks() {
    isolated(|| {
        import_busybox("base");
        let dockerfile = "FROM busybox AS builder\n\
            RUN mkdir -p /out/lib && echo compiled > /out/app && echo lib > /out/lib/x && ln -s /etc/passwd /out/evil\n\
            FROM builder AS checker\n\
            RUN test -f /out/app\n\
            FROM scratch\n\
            COPY --from=builder /out/app /app\n\
            COPY --from=builder /out/lib /lib/\n\
            COPY --from=0 /out/evil /evil\n\
            COPY --from=busybox /bin/busybox /bin/busybox\n\
            CMD [\"/bin/busybox\", \"cat\", \"/app\", \"/lib/x\"]\n";
        let c = context(&[("Dockerfile", dockerfile)]);
        let out = build(&["-t", "staged", c.to_str().unwrap()]);
        assert!(out.contains("STEP 10/10"), "{out}");
        assert_eq!(berth(&["run", "--rm", "staged"]).ok(), "compiled\nlib\n");
        // The symlink came over as a symlink: nothing of the host's or the stage's passwd.
        assert_eq!(berth(&["run", "--rm", "staged", "/bin/busybox", "readlink", "/evil"]).ok(), "/etc/passwd\n");
        // Only the final stage is in the image: 4 COPY layers, nothing of busybox's import.
        assert_eq!(berth(&["history", "-q", "staged"]).ok().lines().count(), 5);
        assert_eq!(berth(&["images", "--format", "{{.Repository}}"]).ok(), "busybox\nstaged\n");
        // Cached the second time, stages included.
        let again = build(&["-t", "staged", c.to_str().unwrap()]);
        assert_eq!(again.matches("Using cache").count(), 7, "{again}");
        let bad = context(&[("Dockerfile", "FROM busybox\nCOPY --from=nosuchstage /x /x\n")]);
        let out = berth(&["build", bad.to_str().unwrap()]);
        assert!(out.code == 125 && out.stderr.contains("Dockerfile:2"), "{out:?}");
        assert_eq!(std::fs::read_dir("/var/lib/berth/tmp").map(|d| d.count()).unwrap_or(0), 0, "scratch left");
    });
}

#[test]
fn bad_dockerfiles_fail_on_their_line_and_write_nothing() {
    isolated(|| {
        import_busybox("base");
        let before = berth(&["images", "--format", "{{.Repository}}"]).ok();
        for (dockerfile, says) in [
            ("FROM busybox\nFORM oops\n", "Dockerfile:2"),
            ("FROM busybox\nRUN true\nCOPY missing.txt /x\n", "Dockerfile:3"),
            ("FROM busybox\nCOPY missing.txt /x\n", "not found in the build context"),
            ("FROM nosuchbase\nRUN true\n", "unable to find image"),
            ("FROM busybox\nRUN exit 3\n", "non-zero code: 3"),
            ("RUN true\n", "FROM"),
            ("FROM busybox\nADD http://example.invalid/x /x\n", "not supported"),
        ] {
            let c = context(&[("Dockerfile", dockerfile)]);
            let out = berth(&["build", "-t", "broken:1", c.to_str().unwrap()]);
            assert_eq!(out.code, 125, "{dockerfile:?}: {out:?}");
            assert!(out.stderr.contains(says), "{dockerfile:?}: {}", out.stderr);
            assert_eq!(out.stderr.trim().lines().count(), 1, "{dockerfile:?}: {}", out.stderr);
            assert_eq!(berth(&["images", "--format", "{{.Repository}}"]).ok(), before, "{dockerfile:?} named an image");
            assert_eq!(berth(&["ps", "-a", "-q"]).ok(), "", "{dockerfile:?} left a build container");
            let tmp = Path::new("/var/lib/berth/tmp");
            assert_eq!(fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0), 0, "{dockerfile:?} left scratch files");
        }
    });
}
