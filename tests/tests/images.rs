//! The image life after import: commit, tag, history, save → load (berth's and podman's),
//! with the store keyed by digest.

use std::path::Path;

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{isolated, podman, try_sh};

#[test]
fn commit_keeps_changes_and_whiteouts_but_not_the_init_files() {
    isolated(|| {
        import_busybox("base page");
        berth(&[
            "run",
            "--name",
            "maker",
            "--hostname",
            "maker-host",
            "busybox",
            "sh",
            "-c",
            "echo made > /www/new.txt && rm /etc/passwd && mkdir -p /data/deep && echo d > /data/deep/f && cat /etc/hostname",
        ])
        .ok();
        let id = berth(&[
            "commit",
            "-m",
            "add a page",
            "-c",
            "CMD [\"cat\", \"/www/new.txt\"]",
            "-c",
            "ENV STAGE=committed",
            "maker",
            "made:v1",
        ])
        .ok();
        assert!(id.trim().starts_with("sha256:") && id.trim().len() == 71, "{id}");
        // The new image runs with the new CMD and ENV and has the file.
        assert_eq!(berth(&["run", "--rm", "made:v1"]).ok(), "made\n");
        assert_eq!(berth(&["run", "--rm", "made:v1", "sh", "-c", "echo $STAGE; cat /data/deep/f"]).ok(), "committed\nd\n");
        // A deleted file stays deleted (a whiteout in the layer).
        assert_ne!(berth(&["run", "--rm", "made:v1", "cat", "/etc/passwd"]).code, 0);
        // The per-container files are not in the image: a new container sees its own.
        let out = berth(&["run", "--rm", "--hostname", "other", "made:v1", "cat", "/etc/hostname"]).ok();
        assert_eq!(out.trim(), "other");
        let store = Path::new("/var/lib/berth/layers");
        let (_, listing) = try_sh(&format!("find {} -path '*etc/host*' -o -path '*resolv.conf'", store.display()));
        assert_eq!(listing.trim(), "", "an init file was committed into a layer");
        // history: the commit on top, its message, the import below.
        let h = berth(&["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "made:v1"]).ok();
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 2, "{h}");
        assert_eq!(lines[0], "berth commit maker|add a page");
        assert!(lines[1].starts_with("berth import"), "{h}");
        let cfg: serde_json::Value =
            serde_json::from_str(berth(&["history", "--format", "json", "made:v1"]).ok().lines().next().unwrap()).unwrap();
        assert!(cfg["Size"].as_str().unwrap().ends_with('B'));
        // tag: another name for the same image.
        berth(&["tag", "made:v1", "made:latest"]).ok();
        let ids = berth(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).ok();
        assert!(ids.contains(&format!("made:latest {}", id.trim())) && ids.contains(&format!("made:v1 {}", id.trim())), "{ids}");
        // Bad input: one line, exit 125, nothing new.
        for (args, says) in [
            (vec!["commit", "nobody", "x:1"], "no such container"),
            (vec!["commit", "-c", "RUN rm -rf /", "maker", "x:1"], "--change takes"),
            (vec!["commit", "maker", "Bad Name"], "image name"),
            (vec!["tag", "nosuch", "x:1"], "unable to find image"),
        ] {
            let out = berth(&args);
            assert_eq!(out.code, 125, "{args:?}: {out:?}");
            assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        }
        assert_eq!(berth(&["images", "-q"]).ok().lines().count(), 3);
        berth(&["rm", "maker"]).ok();
    });
}

#[test]
fn save_then_load_round_trips_and_podman_loads_it() {
    isolated(|| {
        import_busybox("saved page");
        berth(&["run", "--name", "m", "busybox", "sh", "-c", "echo layered > /www/index.html"]).ok();
        let id =
            berth(&["commit", "-c", "CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]", "-c", "EXPOSE 80", "m", "site:v1"]).ok();
        berth(&["rm", "m"]).ok();
        let archive = "/run/berth/site.tar";
        berth(&["save", "-o", archive, "site:v1"]).ok();
        let (_, members) = try_sh(&format!("tar -tf {archive}"));
        for m in ["manifest.json", "index.json", "oci-layout", "repositories"] {
            assert!(members.lines().any(|l| l == m), "{m} missing: {members}");
        }
        assert!(berth(&["save", "-o", "/run/berth/x.tar", "nosuch"]).code == 125 && !Path::new("/run/berth/x.tar").exists());
        // Round trip: gone from the store, loaded back, the same ID, and it runs.
        berth(&["rmi", "site:v1"]).ok();
        assert_eq!(berth(&["images", "--format", "{{.Repository}}"]).ok(), "busybox\n");
        assert!(berth(&["load", "-i", archive]).ok().contains("site:v1"));
        assert_eq!(berth(&["images", "--no-trunc", "--format", "{{.ID}}",]).ok().lines().filter(|l| *l == id.trim()).count(), 1);
        berth(&["run", "-d", "--name", "web", "-P", "site:v1"]).ok();
        let port = berth(&["port", "web"]).ok();
        let host_port: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
        berth_tests::harness::wait_for("the loaded image to serve", || berth_tests::harness::netns::http_answers(host_port, "layered"));
        berth(&["rm", "-f", "web"]).ok();

        if !podman::installed() {
            println!("SKIP podman load: podman not installed");
            return;
        }
        let base = Path::new("/run/berth/podman-load");
        std::fs::create_dir_all(base).unwrap();
        std::fs::write(
            base.join("storage.conf"),
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{b}/root\"\nrunroot = \"{b}/runroot\"\n", b = base.display()),
        )
        .unwrap();
        let pm = |args: &str| try_sh(&format!("CONTAINERS_STORAGE_CONF={}/storage.conf podman {args}", base.display()));
        let (ok, out) = pm(&format!("load -i {archive}"));
        assert!(ok, "podman load: {out}");
        let (ok, out) = pm("images --format '{{.Repository}}:{{.Tag}} {{.ID}}'");
        assert!(ok && out.contains("site:v1"), "{out}");
        assert!(out.contains(&id.trim().trim_start_matches("sha256:")[..12]), "podman computed another image ID: {out}");
    });
}
