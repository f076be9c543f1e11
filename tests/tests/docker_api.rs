//! The Docker Engine API served by netd on /run/berth/docker.sock, judged by the real
//! `docker` CLI and Docker's Python SDK: containers run, attach, exec, logs, stop, remove;
//! images, volumes, events, info; errors with Docker's codes and nothing left behind;
//! berth's CLI and the API on one store.

use berth_tests::harness::berth::{berth, bridge_allocations, import_busybox};
use berth_tests::harness::docker::{cli, docker, docker_in, docker_on_terminal, python_with_sdk, DOCKER_SOCK};
use berth_tests::harness::netd::Netd;
use berth_tests::harness::{curl, isolated, sh, try_sh, wait_for, wait_for_secs};
use serde_json::Value;

const PAGE: &str = "docker api page";

/// Runs `body` in an isolated host with the busybox image and netd serving, unless there
/// is no docker CLI (a SKIP line then, never a silent pass).
fn with_docker(test: &str, body: impl FnOnce()) {
    with_docker_netd(test, |_netd| body());
}

/// As [`with_docker`], handing `body` the netd it started (to stop it, as a reboot).
fn with_docker_netd(test: &str, body: impl FnOnce(Netd)) {
    isolated(|| {
        if cli().is_none() {
            println!("SKIP {test}: no docker CLI (CI extracts it from Debian's docker.io)");
            return;
        }
        import_busybox(PAGE);
        body(Netd::start());
    });
}

/// (status, body) of one raw request to the Docker socket.
fn http(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let data = body.map(|b| format!("-H 'Content-Type: application/json' --data-binary @- <<'EOF'\n{b}\nEOF\n")).unwrap_or_default();
    let out = sh(&format!("curl -s --unix-socket {DOCKER_SOCK} -X {method} -w '\\n%{{http_code}}' 'http://x{path}' {data}"));
    let (b, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    (code.parse().unwrap_or(0), serde_json::from_str(b).unwrap_or(Value::String(b.to_string())))
}

/// Containers as berth's store has them.
fn records() -> usize {
    std::fs::read_dir("/var/lib/berth/containers")
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

#[test]
fn docker_cli_runs_containers_through_berths_api() {
    with_docker("docker_cli_runs_containers_through_berths_api", || {
        // run -d -p: the port answers; ps, inspect (Docker's Networks shape), port, logs.
        let id = docker(&["run", "-d", "--name", "web", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert_eq!(id.trim().len(), 64, "{id}");
        wait_for("the page on 127.0.0.1:4000", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
        assert!(docker(&["ps"]).ok().contains("0.0.0.0:4000->80/tcp"));
        let ip = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]).ok();
        assert_eq!(ip.trim(), "172.17.0.2");
        assert_eq!(docker(&["port", "web"]).ok().trim(), "80/tcp -> 0.0.0.0:4000");
        let v: Value = serde_json::from_str(&docker(&["inspect", "web"]).ok()).unwrap();
        assert_eq!(v[0]["Name"], "/web");
        assert_eq!(v[0]["State"]["Running"], true);
        assert_eq!(v[0]["NetworkSettings"]["Networks"]["bridge"]["Gateway"], "172.17.0.1");

        // The foreground: output, exit codes, stdin, a command that does not exist.
        let o = docker(&["run", "--rm", "busybox", "echo", "hello from run"]);
        assert_eq!((o.code, o.stdout.as_str()), (0, "hello from run\n"), "{}", o.stderr);
        let o = docker(&["run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (3, "out\n", "err\n"));
        let o = docker_in(&["run", "-i", "--rm", "busybox", "sh", "-c", "read x; echo got:$x"], Some("piped\n"));
        assert_eq!((o.code, o.stdout.as_str()), (0, "got:piped\n"), "{}", o.stderr);
        let o = docker(&["run", "--rm", "busybox", "no-such-command"]);
        assert_eq!(o.code, 127, "{}", o.stderr);
        assert!(o.stderr.contains("executable file not found"), "{}", o.stderr);
        // --rm: the code survives the container's removal.
        for _ in 0..3 {
            assert_eq!(docker(&["run", "--rm", "busybox", "sh", "-c", "exit 5"]).code, 5);
        }
        // -it: a terminal (the docker CLI needs one of its own: script gives it).
        let it = |input: &str, cmd: &str| docker_on_terminal(&format!("run -it --rm busybox {cmd}"), input);
        let out = it("", "sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-terminal; exit 4'");
        assert!(out.contains("on-a-terminal") && out.contains("rc=4"), "{out}");
        let out = it("echo typed-in\\nexit 6\\n", "sh");
        assert!(out.contains("\ntyped-in\n") && out.contains("rc=6"), "{out}");
        // The terminal is the container's own (its devpts names it) and PID 1's
        // controlling terminal (tty_nr, field 7 of stat, is not 0).
        let ctty = "sh -c 'tty; read a b c d e f t r < /proc/self/stat; echo ctty=\\$t'";
        let out = it("", ctty);
        assert!(out.contains("/dev/pts/0\n") && out.contains("ctty=") && !out.contains("ctty=0\n"), "{out}");

        // Logs, tail, follow to the end.
        docker(&["run", "-d", "--name", "talk", "busybox", "sh", "-c", "echo one; echo two; sleep 1; echo three"]).ok();
        wait_for("talk's first lines", || docker(&["logs", "talk"]).stdout == "one\ntwo\n");
        assert_eq!(docker(&["logs", "--tail", "1", "talk"]).ok(), "two\n");
        assert_eq!(docker(&["logs", "-f", "talk"]).ok(), "one\ntwo\nthree\n");
        // stdout and stderr stay apart; each entry has its time; since/until select (the
        // docker CLI sends whole seconds for "1s": the lines are 2.5 s apart).
        docker(&["run", "-d", "--name", "streams", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; sleep 2.5; echo later"]).ok();
        wait_for("the streams' log", || docker(&["logs", "streams"]).stderr == "to-err\n");
        let o = docker(&["logs", "streams"]);
        assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("to-out\n", "to-err\n"));
        let o = berth(&["logs", "streams"]);
        assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("to-out\n", "to-err\n"));
        let stamped = docker(&["logs", "-t", "streams"]).ok();
        let (time, text) = stamped.split_once(' ').expect("a timestamp");
        assert_eq!(text, "to-out\n", "{stamped}");
        assert!(time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{stamped}");
        assert_eq!(berth(&["logs", "-t", "streams"]).ok(), stamped);
        wait_for("the later line", || docker(&["logs", "streams"]).stdout.ends_with("later\n"));
        assert_eq!(docker(&["logs", "--since", "1s", "streams"]).ok(), "later\n");
        assert_eq!(docker(&["logs", "--until", "1s", "streams"]).ok(), "to-out\n");
        docker(&["rm", "-f", "streams"]).ok();

        // exec, with output, exit code, stdin.
        let o = docker(&["exec", "web", "sh", "-c", "echo in exec; exit 5"]);
        assert_eq!((o.code, o.stdout.as_str()), (5, "in exec\n"));
        let o = docker_in(&["exec", "-i", "web", "sh", "-c", "read x; echo exec got $x"], Some("it\n"));
        assert_eq!(o.ok(), "exec got it\n");
        assert!(docker(&["top", "web"]).ok().contains("httpd -f -p 80"));
        // exec -it: on a terminal, with its exit code, taking typed input.
        let exec_it = |input: &str, cmd: &str| docker_on_terminal(&format!("exec -it web {cmd}"), input);
        let out = exec_it("", "sh -c '[ -t 0 ] && [ -t 1 ] && echo exec-on-a-terminal; exit 7'");
        assert!(out.contains("exec-on-a-terminal") && out.contains("rc=7"), "{out}");
        let out = exec_it("echo typed-in-exec\\nexit 3\\n", "sh");
        assert!(out.contains("\ntyped-in-exec\n") && out.contains("rc=3"), "{out}");
        let out = exec_it("", ctty);
        assert!(out.contains("/dev/pts/") && out.contains("ctty=") && !out.contains("ctty=0\n"), "{out}");

        // pause freezes (the port stops answering), unpause thaws; stats from the cgroup.
        docker(&["pause", "web"]).ok();
        assert_eq!(docker(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "web"]).ok().trim(), "paused true");
        assert!(docker(&["ps", "--filter", "status=paused", "--format", "{{.Names}}"]).ok().contains("web"));
        assert!(!try_sh("curl -s --max-time 0.5 http://127.0.0.1:4000/").0, "a paused container answered");
        // berth's CLI sees and undoes the API's pause: one store, one freezer.
        assert!(berth(&["ps", "--format", "{{.Status}}"]).ok().contains("(Paused)"));
        berth(&["unpause", "web"]).ok();
        assert_ne!(docker(&["unpause", "web"]).code, 0, "unpause of a running container succeeded");
        wait_for("the page after unpause", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
        let st = docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "web"]).ok();
        let f: Vec<&str> = st.split_whitespace().collect();
        assert_eq!(f[0], "web", "{st}");
        assert!(f[1].parse::<u32>().is_ok_and(|n| n >= 1), "{st}");
        assert!(!f[2].starts_with("0B"), "no memory use read: {st}");
        // Streamed: a document a second, each with the previous sample as precpu; the
        // client leaving ends the stream and nothing else.
        let (_, streamed) = try_sh(&format!("timeout 2.5 curl -sN --unix-socket {DOCKER_SOCK} http://x/v1.45/containers/web/stats"));
        let docs: Vec<Value> = streamed.lines().map(|l| serde_json::from_str(l).expect("a stats document")).collect();
        assert!(docs.len() >= 2, "{streamed}");
        assert_eq!(docs[1]["precpu_stats"]["cpu_usage"]["total_usage"], docs[0]["cpu_stats"]["cpu_usage"]["total_usage"], "{streamed}");
        assert!(docs.iter().all(|d| d["pids_stats"]["current"].as_u64().is_some_and(|n| n >= 1)), "{streamed}");
        assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", "web"]).ok().trim(), "true");

        // stop, start, restart, rename, kill; wait's exit code; rm -f.
        docker(&["stop", "-t", "1", "web"]).ok();
        assert_eq!(docker(&["inspect", "-f", "{{.State.Status}}", "web"]).ok().trim(), "exited");
        assert!(try_sh(&curl("http://127.0.0.1:4000/")).1 != PAGE);
        docker(&["start", "web"]).ok();
        wait_for("the page after start", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
        docker(&["restart", "-t", "1", "web"]).ok();
        wait_for("the page after restart", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
        docker(&["rename", "web", "site"]).ok();
        assert_eq!(docker(&["ps", "--format", "{{.Names}}"]).ok().trim(), "site");
        docker(&["kill", "site"]).ok();
        assert_eq!(docker(&["wait", "site"]).ok().trim(), "137");
        docker(&["rm", "-f", "site", "three", "talk"]).ok();
        assert_eq!(docker(&["ps", "-aq"]).ok(), "");
        assert_eq!(records(), 0);
        assert_eq!(bridge_allocations(), 0, "an address is still held");
        assert!(!sh("ip -o link show type veth").contains("veth"), "a veth is left");
        // netd reaped what it spawned: no zombie for each container it started.
        let netd = std::fs::read_to_string("/run/berth/netd.pid").unwrap();
        let zombies = sh(&format!("ps -o stat=,args= --ppid {} | grep '^Z' || true", netd.trim()));
        assert_eq!(zombies, "", "netd's zombie children");
    });
}

#[test]
fn images_volumes_events_and_info_through_the_api() {
    with_docker("images_volumes_events_and_info_through_the_api", || {
        assert!(docker(&["images"]).ok().contains("busybox"));
        docker(&["tag", "busybox", "site:v1"]).ok();
        let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
        assert!(tags.contains("site:v1") && tags.contains("busybox:latest"), "{tags}");
        // Untagging one of two names succeeds while a container uses the image, as Docker.
        docker(&["run", "-d", "--name", "user", "busybox", "sleep", "60"]).ok();
        assert!(docker(&["rmi", "site:v1"]).ok().contains("Untagged: site:v1"));
        let o = docker(&["rmi", "busybox"]);
        assert_ne!(o.code, 0, "the last name of an image in use was removed");
        assert!(o.stderr.contains("must force"), "{}", o.stderr);
        assert!(docker(&["image", "inspect", "busybox"]).ok().contains("RootFS"));

        // Volumes: create, ls, mounted by a container, rm refused while used.
        docker(&["volume", "create", "data"]).ok();
        assert!(docker(&["volume", "ls", "-q"]).ok().contains("data"));
        let o = docker(&["run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f; cat /data/f"]);
        assert_eq!(o.ok(), "kept\n");
        assert_eq!(docker(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]).ok(), "kept\n");
        docker(&["volume", "rm", "data"]).ok();
        assert!(!docker(&["volume", "ls", "-q"]).ok().contains("data"));

        // Events of a run, seen live.
        let since = sh("date +%s").trim().to_string();
        docker(&["run", "--rm", "--name", "ev", "busybox", "true"]).ok();
        // Whole seconds: +2 leaves at least a second for the die and destroy that the
        // daemon sees within 100 ms (+1 left as little as nothing at a second's end).
        let until = (sh("date +%s").trim().parse::<u64>().unwrap() + 2).to_string();
        let ev = docker(&["events", "--since", &since, "--until", &until, "--filter", "container=ev", "--format", "{{.Action}}"]);
        let ev = ev.ok();
        for action in ["create", "start", "die", "destroy"] {
            assert!(ev.lines().any(|l| l == action), "no {action} event in {ev:?}");
        }

        let df = docker(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}/{{.Active}}"]).ok();
        for want in ["Images=1/1", "Containers=1/1", "Local Volumes=0/0"] {
            assert!(df.lines().any(|l| l == want), "{want} not in {df:?}");
        }
        let info = docker(&["info", "--format", "{{.ContainersRunning}} {{.Driver}}"]).ok();
        assert_eq!(info.trim(), "1 overlay2");
        // image prune: nothing dangling; with -a, what no container uses goes, each name.
        docker(&["tag", "busybox", "spare:1"]).ok();
        docker(&["tag", "busybox", "spare:2"]).ok();
        let out = docker(&["image", "prune", "-f"]).ok();
        assert!(out.contains("Total reclaimed space: 0B"), "{out}");
        let out = docker(&["image", "prune", "-a", "-f"]).ok();
        assert!(out.is_empty() || !out.contains("spare"), "an image in use was pruned: {out}");
        assert!(docker(&["images"]).ok().contains("spare"), "busybox's other names went while user uses it");
        docker(&["rm", "-f", "user"]).ok();
        let out = docker(&["image", "prune", "-a", "-f"]).ok();
        for name in ["spare:1", "spare:2", "busybox"] {
            assert!(out.contains(&format!("untagged: {name}")), "{name} not pruned: {out}");
        }
        assert!(out.contains("deleted: sha256:") && !out.contains("Total reclaimed space: 0B"), "{out}");
        assert_eq!(docker(&["images", "-q"]).ok(), "");
        assert_eq!(records(), 0);
    });
}

#[test]
fn api_errors_carry_dockers_codes_and_change_nothing() {
    with_docker("api_errors_carry_dockers_codes_and_change_nothing", || {
        // An unknown endpoint, with a body: a 404 in Docker's shape, not a reset.
        let (code, v) = http("POST", "/v1.45/no/such/endpoint", Some(r#"{"Image":"busybox"}"#));
        assert_eq!((code, v["message"].as_str()), (404, Some("page not found")));
        assert_eq!(http("GET", "/v1.45/swarm", None).0, 503);
        let (code, v) = http("GET", "/v1.45/containers/nope/json", None);
        assert_eq!((code, v["message"].as_str()), (404, Some("No such container: nope")));
        // Bad requests: each a 4xx with a message, and no container, address or volume made.
        for (why, path, body, want) in [
            ("malformed JSON", "/v1.45/containers/create", "{not json", 400),
            ("no image", "/v1.45/containers/create", r#"{"Cmd":["true"]}"#, 400),
            ("unknown image", "/v1.45/containers/create", r#"{"Image":"nosuch"}"#, 404),
            ("bad name", "/v1.45/containers/create?name=a%2Fb", r#"{"Image":"busybox"}"#, 400),
            (
                "restart policy",
                "/v1.45/containers/create",
                r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
                400,
            ),
            ("devices", "/v1.45/containers/create", r#"{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}]}}"#, 400),
            (
                "bad port",
                "/v1.45/containers/create",
                r#"{"Image":"busybox","HostConfig":{"PortBindings":{"99999/tcp":[{"HostPort":"1"}]}}}"#,
                400,
            ),
            ("bad volume", "/v1.45/containers/create", r#"{"Image":"busybox","HostConfig":{"Binds":["/tmp:relative"]}}"#, 400),
            ("unknown network", "/v1.45/containers/create", r#"{"Image":"busybox","HostConfig":{"NetworkMode":"nonet"}}"#, 404),
        ] {
            let (code, v) = http("POST", path, Some(body));
            assert_eq!(code, want, "{why}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{why}: no message in {v}");
            assert_eq!(records(), 0, "{why}: a container was recorded");
        }
        assert!(docker(&["volume", "ls", "-q"]).ok().is_empty(), "a volume was made");
        // What the API does not do yet is said plainly, with nothing made.
        // A terminal's size for a container without one: refused.
        docker(&["create", "--name", "noterm", "busybox", "true"]).ok();
        let (code, v) = http("POST", "/v1.45/containers/noterm/resize?h=10&w=10", None);
        assert_eq!(code, 400, "{v}");
        docker(&["rm", "noterm"]).ok();
        assert_eq!(records(), 0);
        // A body over the limit is refused whole.
        let big = format!(r#"{{"Image":"busybox","Labels":{{"x":"{}"}}}}"#, "a".repeat(3 << 20));
        std::fs::write("/run/berth/big.json", big).unwrap();
        let code = sh(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --unix-socket {DOCKER_SOCK} -H 'Content-Type: application/json' --data-binary @/run/berth/big.json http://x/v1.45/containers/create"
        ));
        assert_eq!(code.trim(), "413");
        assert_eq!(records(), 0);
        // Conflicts: a name in use, removing a running container.
        docker(&["run", "-d", "--name", "busy", "busybox", "sleep", "60"]).ok();
        let (code, v) = http("POST", "/v1.45/containers/create?name=busy", Some(r#"{"Image":"busybox","Cmd":["true"]}"#));
        assert_eq!(code, 409, "{v}");
        let (code, v) = http("DELETE", "/v1.45/containers/busy", None);
        assert_eq!(code, 409, "{v}");
        assert_eq!(http("POST", "/v1.45/containers/busy/start", None).0, 304);
        // A client that leaves a followed log and an attach mid-stream: the daemon and the
        // container are fine.
        let _ =
            try_sh(&format!("timeout 0.5 curl -sN --unix-socket {DOCKER_SOCK} 'http://x/v1.45/containers/busy/logs?stdout=1&follow=1'"));
        let _ = try_sh(&format!(
            "timeout 0.5 curl -sN --unix-socket {DOCKER_SOCK} -X POST 'http://x/v1.45/containers/busy/attach?stream=1&stdout=1'"
        ));
        assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", "busy"]).ok().trim(), "true");
        assert_eq!(http("GET", "/_ping", None).1, "OK");
        docker(&["rm", "-f", "busy"]).ok();
        assert_eq!((records(), bridge_allocations()), (0, 0));
    });
}

#[test]
fn berths_cli_and_the_api_share_one_store() {
    with_docker("berths_cli_and_the_api_share_one_store", || {
        // Started by berth: seen, stopped and removed by docker.
        berth(&["run", "-d", "--name", "from-cli", "-p", "4001:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert!(docker(&["ps", "--format", "{{.Names}}"]).ok().contains("from-cli"));
        docker(&["stop", "-t", "1", "from-cli"]).ok();
        assert!(berth(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]).ok().contains("from-cli exited"));
        docker(&["rm", "from-cli"]).ok();
        assert!(!berth(&["ps", "-a"]).ok().contains("from-cli"));
        // Started by docker: seen, exec'd into, stopped and removed by berth.
        docker(&["run", "-d", "--name", "from-api", "-p", "4002:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        wait_for("the page on 4002", || try_sh(&curl("http://127.0.0.1:4002/")).1 == PAGE);
        assert!(berth(&["ps", "--format", "{{.Names}}"]).ok().contains("from-api"));
        assert_eq!(berth(&["exec", "from-api", "cat", "/www/index.html"]).ok(), PAGE);
        let range = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
        let ip = berth(&["inspect", "-f", range, "from-api"]).ok();
        assert!(ip.starts_with("172.17.0."), "{ip}");
        assert_eq!(docker(&["inspect", "-f", range, "from-api"]).ok(), ip);
        berth(&["stop", "-t", "1", "from-api"]).ok();
        assert_eq!(docker(&["inspect", "-f", "{{.State.Status}}", "from-api"]).ok().trim(), "exited");
        berth(&["rm", "from-api"]).ok();
        assert_eq!(docker(&["ps", "-aq"]).ok(), "");
        // berth create/start/rename/restart, the same library calls as the API's.
        let id = berth(&["create", "--name", "made", "-p", "4003:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert_eq!(docker(&["inspect", "-f", "{{.Id}} {{.State.Status}}", "made"]).ok().trim(), format!("{} created", id.trim()));
        assert!(try_sh(&curl("http://127.0.0.1:4003/")).1 != PAGE);
        berth(&["start", "made"]).ok();
        wait_for("the page on 4003", || try_sh(&curl("http://127.0.0.1:4003/")).1 == PAGE);
        berth(&["rename", "made", "renamed"]).ok();
        let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", "renamed"]).ok();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        berth(&["restart", "-t", "1", "renamed"]).ok();
        assert_ne!(docker(&["inspect", "-f", "{{.State.StartedAt}}", "renamed"]).ok(), started);
        wait_for("the page after restart", || try_sh(&curl("http://127.0.0.1:4003/")).1 == PAGE);
        let o = berth(&["start", "no-such"]);
        assert_eq!(o.code, 125, "{}", o.stderr);
        assert!(o.stderr.contains("no-such"), "{}", o.stderr);
        docker(&["rm", "-f", "renamed"]).ok();
        assert_eq!((records(), bridge_allocations()), (0, 0));
    });
}

#[test]
fn dockers_python_sdk_runs_its_script() {
    isolated(|| {
        let Some(py) = python_with_sdk() else {
            println!("SKIP dockers_python_sdk_runs_its_script: no Python with Docker's SDK (apt-get install python3-docker)");
            return;
        };
        import_busybox(PAGE);
        let _d = Netd::start();
        let script = format!(
            r#"
import docker
c = docker.DockerClient(base_url="unix://{DOCKER_SOCK}")
assert c.ping()
assert "busybox:latest" in [t for i in c.images.list() for t in i.tags]
ctr = c.containers.run("busybox", ["sh", "-c", "echo sdk-hello; sleep 30"], detach=True, name="sdk")
import time
for _ in range(100):
    if ctr.logs() == b"sdk-hello\n":
        break
    time.sleep(0.05)
assert ctr.logs() == b"sdk-hello\n", ctr.logs()
r = ctr.exec_run(["sh", "-c", "echo exec-out; exit 4"])
assert (r.exit_code, r.output) == (4, b"exec-out\n"), r
ctr.kill()
assert ctr.wait()["StatusCode"] == 137
ctr.remove()
v = c.volumes.create("sdkvol")
assert "sdkvol" in [x.name for x in c.volumes.list()]
v.remove()
assert "bridge" in [n.name for n in c.networks.list()]
assert c.containers.run("busybox", ["echo", "run-rm"], remove=True) == b"run-rm\n"
assert c.containers.list(all=True) == []
print("sdk script ok")
"#
        );
        std::fs::write("/run/berth/sdk.py", script).unwrap();
        let out = sh(&format!("{py} /run/berth/sdk.py 2>&1"));
        assert!(out.contains("sdk script ok"), "{out}");
        assert_eq!(records(), 0);
    });
}

#[test]
fn docker_compose_brings_an_app_up_and_down_leaving_nothing() {
    with_docker("docker_compose_brings_an_app_up_and_down_leaving_nothing", || {
        if !try_sh("command -v docker-compose").0 {
            println!("SKIP docker_compose_brings_an_app_up_and_down_leaving_nothing: no docker-compose (apt-get install docker-compose)");
            return;
        }
        let dir = "/run/berth/app";
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            format!("{dir}/docker-compose.yml"),
            r#"version: "3.7"
services:
  web:
    image: busybox
    command: httpd -f -p 80 -h /www
    ports: ["4300:80"]
    depends_on: [api]
  api:
    image: busybox
    command: sh -c "echo api-ok > /data/index.html; exec httpd -f -p 8080 -h /data"
    volumes: ["data:/data"]
    depends_on: [db]
  db:
    image: busybox
    command: sh -c "echo db-ready; exec sleep 600"
volumes:
  data:
"#,
        )
        .unwrap();
        let compose = |args: &str| sh(&format!("cd {dir} && DOCKER_HOST=unix://{DOCKER_SOCK} docker-compose -p app {args} 2>&1"));
        compose("up -d");
        let ps = compose("ps");
        assert_eq!(ps.lines().filter(|l| l.starts_with("app_") && l.contains(" Up")).count(), 3, "{ps}");
        wait_for("the front on 4300", || try_sh(&curl("http://127.0.0.1:4300/")).1 == PAGE);
        // The front reaches the back end by its service name, on the app's network.
        let got = compose("exec -T web sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc api 8080\"");
        assert!(got.contains("api-ok"), "{got}");
        wait_for("db's log", || compose("logs db").contains("db-ready"));
        let net = docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Options \"com.docker.network.bridge.name\"}}",
            "app_default",
        ])
        .ok();
        let (subnet, bridge) = net.trim().split_once(' ').expect("subnet and bridge");
        assert!(berth_tests::harness::net::rules().join("\n").contains(subnet), "the app network's rules are not installed");
        compose("down -v -t 1");
        assert_eq!(docker(&["ps", "-aq"]).ok(), "");
        assert_eq!(docker(&["volume", "ls", "-q"]).ok(), "");
        assert!(!docker(&["network", "ls"]).ok().contains("app_default"));
        assert!(!sh("ip -o link show type veth").contains("veth"), "a veth is left");
        assert!(!sh("ls /var/lib/berth/ipam").contains("app_default"), "the network's addresses are left");
        let rules = berth_tests::harness::net::rules().join("\n");
        assert!(!rules.contains(subnet) && !rules.contains(bridge), "the app network's firewall rules are left:\n{rules}");
        assert!(!sh("ip -o link").contains(bridge), "its bridge is left");
        assert_eq!(records(), 0);
    });
}

#[test]
fn docker_build_save_load_push_and_pull_through_the_api() {
    with_docker("docker_build_save_load_push_and_pull_through_the_api", || {
        let ctx = "/run/berth/ctx";
        std::fs::create_dir_all(ctx).unwrap();
        std::fs::write(format!("{ctx}/Dockerfile"), "FROM busybox\nCOPY page.html /www/index.html\nRUN echo built > /built\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n").unwrap();
        std::fs::write(format!("{ctx}/page.html"), "built page").unwrap();
        // The legacy builder's /build (BuildKit's session protocol is not served).
        let b = |args: &str| {
            try_sh(&format!("cd {ctx} && DOCKER_BUILDKIT=0 DOCKER_HOST=unix://{DOCKER_SOCK} {} build {args} 2>&1", cli().unwrap())).1
        };
        let out = b("-t site:v1 .");
        assert!(out.contains("Successfully tagged site:v1"), "{out}");
        docker(&["run", "-d", "--name", "site", "-p", "4400:80", "site:v1"]).ok();
        wait_for("the built page", || try_sh(&curl("http://127.0.0.1:4400/")).1 == "built page");
        assert_eq!(docker(&["exec", "site", "cat", "/built"]).ok(), "built\n");
        docker(&["rm", "-f", "site"]).ok();
        // A Dockerfile outside the context is refused; a broken RUN fails the build.
        sh(&format!("tar -C {ctx} -cf /run/berth/ctx.tar ."));
        let code = sh(&format!(
            "curl -s -o /run/berth/out.json -w '%{{http_code}}' --unix-socket {DOCKER_SOCK} -H 'Content-Type: application/x-tar' --data-binary @/run/berth/ctx.tar 'http://x/v1.41/build?dockerfile=../../etc/passwd&t=bad'"
        ));
        let body = std::fs::read_to_string("/run/berth/out.json").unwrap_or_default();
        assert_eq!(code.trim(), "400", "{body}");
        assert!(body.contains("outside the build context"), "{body}");
        std::fs::write(format!("{ctx}/Dockerfile.bad"), "FROM busybox\nRUN exit 7\n").unwrap();
        let out = b("-f Dockerfile.bad -t bad .");
        assert!(!out.contains("Successfully built"), "{out}");
        assert!(!docker(&["images"]).ok().contains("bad"));
        assert_eq!(std::fs::read_dir("/var/lib/berth/tmp").unwrap().count(), 0, "scratch files left");
        // A client that leaves mid-build: the build finishes (as one that stayed), leaving
        // its image and no container or scratch file; the daemon answers on.
        std::fs::write(format!("{ctx}/Dockerfile.slow"), "FROM busybox\nRUN sleep 1\nRUN echo done > /done\n").unwrap();
        sh(&format!("tar -C {ctx} -cf /run/berth/ctx.tar ."));
        let _ = try_sh(&format!(
            "curl -s --max-time 0.4 --unix-socket {DOCKER_SOCK} -H 'Content-Type: application/x-tar' --data-binary @/run/berth/ctx.tar 'http://x/v1.41/build?dockerfile=Dockerfile.slow&t=left:v1'"
        ));
        assert_eq!(http("GET", "/_ping", None).1, "OK");
        wait_for_secs("the build the client left", 30, || docker(&["images"]).ok().contains("left"));
        assert_eq!(docker(&["run", "--rm", "left:v1", "cat", "/done"]).ok(), "done\n");
        wait_for("no scratch file", || std::fs::read_dir("/var/lib/berth/tmp").unwrap().count() == 0);
        assert_eq!(records(), 0);

        // save, rmi, load.
        docker(&["save", "-o", "/run/berth/site.tar", "site:v1"]).ok();
        docker(&["rmi", "site:v1"]).ok();
        assert!(!docker(&["images"]).ok().contains("site"));
        assert!(docker(&["load", "-i", "/run/berth/site.tar"]).ok().contains("Loaded image: site:v1"));
        assert_eq!(docker(&["run", "--rm", "site:v1", "cat", "/built"]).ok(), "built\n");

        // push to and pull from a registry on loopback.
        let Some(_reg) = berth_tests::harness::registry::registry(None) else { return };
        docker(&["tag", "site:v1", "127.0.0.1:5000/site:v1"]).ok();
        let out = docker(&["push", "127.0.0.1:5000/site:v1"]).ok();
        assert!(out.contains("pushed") || out.contains("v1"), "{out}");
        docker(&["rmi", "127.0.0.1:5000/site:v1", "site:v1"]).ok();
        docker(&["pull", "127.0.0.1:5000/site:v1"]).ok();
        assert_eq!(docker(&["run", "--rm", "127.0.0.1:5000/site:v1", "cat", "/built"]).ok(), "built\n");
        // A client that leaves mid-pull (a 40 MB layer): the pull completes and leaves no
        // scratch file; a pull after it finds the image.
        std::fs::write(format!("{ctx}/Dockerfile.big"), "FROM busybox\nRUN head -c 40000000 /dev/urandom > /big\n").unwrap();
        assert!(b("-f Dockerfile.big -t 127.0.0.1:5000/big:v1 .").contains("Successfully tagged"));
        docker(&["push", "127.0.0.1:5000/big:v1"]).ok();
        docker(&["rmi", "127.0.0.1:5000/big:v1"]).ok();
        let (_, partial) = try_sh(&format!(
            "curl -sN --max-time 0.15 --unix-socket {DOCKER_SOCK} -X POST 'http://x/v1.45/images/create?fromImage=127.0.0.1:5000/big&tag=v1'"
        ));
        assert!(!partial.contains("Downloaded newer image"), "the pull ended before the client left: {partial}");
        assert_eq!(http("GET", "/_ping", None).1, "OK");
        // A debug build on a busy machine takes a while over 40 MB: up to a minute.
        let t0 = std::time::Instant::now();
        while !docker(&["images"]).ok().contains("big") {
            assert!(t0.elapsed() < std::time::Duration::from_secs(60), "the pull the client left did not finish");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        wait_for("no scratch file", || std::fs::read_dir("/var/lib/berth/tmp").unwrap().count() == 0);
        assert!(docker(&["pull", "127.0.0.1:5000/big:v1"]).ok().contains("big:v1"));
        assert_eq!(docker(&["run", "--rm", "127.0.0.1:5000/big:v1", "wc", "-c", "/big"]).ok().split_whitespace().next(), Some("40000000"));
        // docker run of an image that is not here pulls it.
        docker(&["rmi", "127.0.0.1:5000/site:v1"]).ok();
        let o = docker(&["run", "--rm", "127.0.0.1:5000/site:v1", "cat", "/built"]);
        assert_eq!(o.ok(), "built\n");
        assert_eq!(records(), 0);
    });
}

#[test]
fn restart_policies_start_containers_again_as_dockers() {
    with_docker_netd("restart_policies_start_containers_again_as_dockers", |netd| {
        let state = |name: &str| docker(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name]).ok().trim().to_string();
        // on-failure:2: started again twice after its failures, then left exited.
        docker(&["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3"]).ok();
        wait_for("two restarts", || state("flaky") == "2 exited" && docker(&["logs", "flaky"]).stdout.matches("run").count() == 3);
        std::thread::sleep(std::time::Duration::from_millis(1000));
        assert_eq!(state("flaky"), "2 exited");
        assert_eq!(docker(&["logs", "flaky"]).ok(), "run\nrun\nrun\n");
        let policy = "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.State.ExitCode}}";
        assert_eq!(docker(&["inspect", "-f", policy, "flaky"]).ok().trim(), "on-failure:2 3");
        // always: a clean exit is restarted too (berth's CLI, the same library); stop
        // ends it for good, even in the delay between two runs.
        berth(&["run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "echo up; sleep 0.3"]).ok();
        wait_for("restarts of loop", || state("loop").split(' ').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 2));
        berth(&["stop", "-t", "1", "loop"]).ok();
        let stopped = state("loop");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(state("loop"), stopped);
        assert!(stopped.ends_with(" exited"), "{stopped}");
        // Between two runs it is restarting, as Docker shows it: running without a PID,
        // listed by a plain `ps`; stop ends that at once.
        docker(&["run", "-d", "--name", "crashy", "--restart", "always", "busybox", "sh", "-c", "exit 1"]).ok();
        let shown =
            || docker(&["inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.Pid}}", "crashy"]).ok();
        wait_for("crashy restarting", || shown().trim() == "restarting true true 0");
        let ps = docker(&["ps", "--filter", "status=restarting", "--format", "{{.Names}} {{.Status}}"]).ok();
        assert!(ps.starts_with("crashy Restarting (1) "), "{ps}");
        assert!(docker(&["ps", "--format", "{{.Names}}"]).ok().lines().any(|l| l == "crashy"));
        assert!(!docker(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]).ok().contains("crashy"));
        // Removing it takes -f, as dockerd's; restarting or not, the refusal changes nothing.
        let o = docker(&["rm", "crashy"]);
        assert!(o.code != 0 && (o.stderr.contains("restarting") || o.stderr.contains("running")), "{}", o.stderr);
        docker(&["stop", "-t", "1", "crashy"]).ok();
        assert_eq!(shown().trim(), "exited false false 0");
        let ps = docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
        assert!(!ps.contains("crashy"), "{ps}");
        // Conflicts and bad policies are refused; nothing is made.
        let o = berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
        assert_eq!(o.code, 125, "{}", o.stderr);
        assert!(o.stderr.contains("--restart and --rm"), "{}", o.stderr);
        assert_eq!(berth(&["run", "-d", "--restart", "sometimes", "busybox", "true"]).code, 125);

        // unless-stopped across a "reboot": netd and every process of the container die
        // unseen; the next netd starts it again, but not the one stopped by hand.
        docker(&[
            "run",
            "-d",
            "--name",
            "back",
            "--restart",
            "unless-stopped",
            "-p",
            "4010:80",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .ok();
        docker(&["run", "-d", "--name", "held", "--restart", "unless-stopped", "busybox", "sleep", "600"]).ok();
        docker(&["stop", "-t", "1", "held"]).ok();
        wait_for("back's page", || try_sh(&curl("http://127.0.0.1:4010/")).1 == PAGE);
        let id = docker(&["inspect", "-f", "{{.Id}}", "back"]).ok().trim().to_string();
        let rec: Value = serde_json::from_slice(&std::fs::read(format!("/var/lib/berth/containers/{id}/container.json")).unwrap()).unwrap();
        drop(netd);
        for key in ["monitor_pid", "pid"] {
            sh(&format!("kill -9 {}", rec["state"][key].as_i64().unwrap()));
        }
        wait_for("back to be down", || try_sh(&curl("http://127.0.0.1:4010/")).1 != PAGE);
        let _netd = Netd::start();
        wait_for("back's page after netd's start", || try_sh(&curl("http://127.0.0.1:4010/")).1 == PAGE);
        // netd logs the start once the container's monitor has reported, which can be
        // after the page answers.
        let logged = || std::fs::read_to_string("/run/berth/netd.log").unwrap_or_default().contains("started by its restart policy");
        wait_for("netd's log of the start by policy", logged);
        assert_eq!(docker(&["inspect", "-f", "{{.State.Status}}", "held"]).ok().trim(), "exited");
        docker(&["rm", "-f", "back", "held", "loop", "flaky", "crashy"]).ok();
        assert_eq!((records(), bridge_allocations()), (0, 0));
    });
}

/// PIDs of this test's standby monitors (`berth __monitor --standby` in this test's mount
/// namespace: tests run side by side, each with its own netd).
fn standbys() -> Vec<i32> {
    const STANDBY: &[u8] = b"__monitor\0--standby\0";
    let mnt = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let me = mnt("self");
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    cmd.windows(STANDBY.len()).any(|w| w == STANDBY) && mnt(&pid.to_string()) == me
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The standby monitor netd has logged as ready, other than those in `not`: the one
/// process `standbys` finds once netd's log says it keeps it ready.
fn wait_ready(not: &[i32]) -> i32 {
    let mut pid = 0;
    wait_for("a standby monitor netd keeps ready", || {
        let log = std::fs::read_to_string("/run/berth/netd.log").unwrap_or_default();
        match standbys()[..] {
            [p] if !not.contains(&p) && log.contains(&format!("monitor kept ready pid={p}")) => {
                pid = p;
                true
            }
            _ => false,
        }
    });
    pid
}

/// The parent of `pid`, from /proc/PID/stat.
fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

#[test]
fn netd_keeps_a_monitor_ready_and_leaves_none_behind() {
    with_docker_netd("netd_keeps_a_monitor_ready_and_leaves_none_behind", |netd| {
        // One is made at start-up; a start hands its container to it.
        let ready = wait_ready(&[]);
        docker(&["run", "-d", "--name", "first", "busybox", "sleep", "600"]).ok();
        let pid: i32 = docker(&["inspect", "-f", "{{.State.Pid}}", "first"]).ok().trim().parse().unwrap();
        assert_eq!(ppid(pid), ready, "PID 1 of a container netd started is not the standby's child");
        // The next is made; one killed is not missed: the start spawns its own monitor.
        let next = wait_ready(&[ready]);
        sh(&format!("kill -9 {next}"));
        wait_for("the standby to be gone", || standbys().is_empty());
        docker(&["run", "-d", "--name", "second", "busybox", "sleep", "600"]).ok();
        let v: Value = serde_json::from_str(&docker(&["inspect", "second"]).ok()).unwrap();
        assert_eq!(v[0]["State"]["Running"], true, "{v}");
        wait_ready(&[ready, next]);
        // netd gone: the one it kept ready ends too.
        drop(netd);
        wait_for("no standby monitor left", || standbys().is_empty());
    });
}
