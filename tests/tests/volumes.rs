//! Volumes: data that outlives containers. A named volume is created on first use and
//! read by the next container; `:ro` is enforced; anonymous volumes go with `rm -v`;
//! `volume prune`; bad specs change nothing.

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::isolated;

fn volumes() -> Vec<String> {
    berth(&["volume", "ls", "-q"]).ok().lines().map(str::to_string).collect()
}

#[test]
fn named_volumes_outlive_their_containers_and_ro_is_enforced() {
    isolated(|| {
        import_busybox("vol");
        // Written by one container (created on first use)...
        berth(&["run", "--name", "writer", "-v", "data:/srv", "busybox", "sh", "-c", "echo kept > /srv/f"]).ok();
        assert_eq!(volumes(), ["data"]);
        berth(&["rm", "-v", "writer"]).ok();
        assert_eq!(volumes(), ["data"], "rm -v removed a named volume");
        // ...read by the next, through --mount too.
        assert_eq!(berth(&["run", "--rm", "--mount", "type=volume,source=data,target=/in", "busybox", "cat", "/in/f"]).ok(), "kept\n");
        // Read-only: the write fails inside, the data stays.
        let out = berth(&["run", "--rm", "-v", "data:/srv:ro", "busybox", "sh", "-c", "echo changed > /srv/f"]);
        assert_ne!(out.code, 0, "a write to a :ro volume succeeded");
        assert!(out.stderr.contains("Read-only"), "{}", out.stderr);
        let out = berth(&["run", "--rm", "--mount", "type=volume,src=data,dst=/srv,readonly", "busybox", "touch", "/srv/g"]);
        assert_ne!(out.code, 0);
        assert_eq!(berth(&["run", "--rm", "-v", "data:/srv", "busybox", "cat", "/srv/f"]).ok(), "kept\n");

        // inspect as Docker shows it; in use, it cannot be removed.
        let v: serde_json::Value = serde_json::from_str(&berth(&["volume", "inspect", "data"]).ok()).unwrap();
        let mp = v[0]["Mountpoint"].as_str().unwrap().to_string();
        assert_eq!(std::fs::read_to_string(format!("{mp}/f")).unwrap(), "kept\n");
        assert_eq!(berth(&["volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "data"]).ok(), "local data\n");
        berth(&["run", "-d", "--name", "holder", "-v", "data:/srv", "busybox", "sleep", "300"]).ok();
        let out = berth(&["volume", "rm", "data"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("in use by container holder"), "{}", out.stderr);
        assert!(std::path::Path::new(&mp).join("f").exists());
        berth(&["rm", "-f", "holder"]).ok();
        berth(&["volume", "rm", "data"]).ok();
        assert_eq!(volumes(), Vec::<String>::new());
        assert!(!std::path::Path::new(&mp).exists(), "data left after volume rm");
    });
}

#[test]
fn a_new_volume_starts_with_the_images_content() {
    isolated(|| {
        import_busybox("from the image");
        // The volume is empty: the image's /www is copied in, then the container's write
        // stays in the volume.
        berth(&["run", "--rm", "-v", "site:/www", "busybox", "sh", "-c", "cat /www/index.html; echo added > /www/new.html"]).ok();
        let mp = berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", "site"]).ok();
        assert_eq!(std::fs::read_to_string(format!("{}/index.html", mp.trim())).unwrap(), "from the image");
        // Not empty any more: nothing is copied over what the volume holds.
        std::fs::write(format!("{}/index.html", mp.trim()), "changed in the volume").unwrap();
        assert_eq!(
            berth(&["run", "--rm", "-v", "site:/www", "busybox", "cat", "/www/index.html", "/www/new.html"]).ok(),
            "changed in the volumeadded\n"
        );
        // A bind mount is never filled.
        std::fs::create_dir_all("/run/berth/bind").unwrap();
        berth(&["run", "--rm", "-v", "/run/berth/bind:/www", "busybox", "true"]).ok();
        assert_eq!(std::fs::read_dir("/run/berth/bind").unwrap().count(), 0);
    });
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_prune() {
    isolated(|| {
        import_busybox("vol");
        berth(&["volume", "create", "--label", "keep=yes", "named"]).ok();
        berth(&["run", "--name", "a", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/x"]).ok();
        berth(&["run", "--name", "b", "--mount", "type=volume,target=/scratch", "busybox", "true"]).ok();
        assert_eq!(volumes().len(), 3);
        let anon_a = berth(&["inspect", "-f", "{{json .}}", "a"]).ok();
        assert!(!anon_a.is_empty());
        berth(&["rm", "-v", "a"]).ok();
        assert_eq!(volumes().len(), 2, "rm -v kept the anonymous volume");
        berth(&["rm", "b"]).ok();
        assert_eq!(volumes().len(), 2, "rm without -v removed a volume");
        // --rm takes its anonymous volumes with it.
        berth(&["run", "--rm", "-v", "/tmpdata", "busybox", "true"]).ok();
        assert_eq!(volumes().len(), 2);
        // prune: unused anonymous ones; -a: every unused one.
        let out = berth(&["volume", "prune", "-f"]).ok();
        assert!(out.starts_with("Deleted Volumes:"), "{out}");
        assert_eq!(volumes(), ["named"]);
        berth(&["run", "-d", "--name", "user", "-v", "named:/n", "busybox", "sleep", "300"]).ok();
        berth(&["volume", "prune", "-a", "-f"]).ok();
        assert_eq!(volumes(), ["named"], "prune -a removed a volume in use");
        berth(&["rm", "-f", "user"]).ok();
        berth(&["volume", "prune", "--all", "--force"]).ok();
        assert_eq!(volumes(), Vec::<String>::new());
    });
}

#[test]
fn bad_volume_specs_are_refused_and_create_nothing() {
    isolated(|| {
        import_busybox("vol");
        for (spec, flag, says) in [
            ("bad name:/x", "-v", "volume name"),
            ("data:/", "-v", "cannot mount over the root"),
            ("data:relative", "-v", "absolute"),
            ("data:/x:rx", "-v", "ro or rw"),
            ("/does/not/exist:/x", "-v", "does not exist"),
            ("type=tmpfs,target=/x", "--mount", "bind or volume"),
            ("type=bind,target=/x", "--mount", "absolute source"),
            ("type=volume,source=data", "--mount", "target"),
        ] {
            let out = berth(&["run", "--rm", flag, spec, "-v", "ok:/ok", "-v", "/anon", "busybox", "true"]);
            assert_eq!(out.code, 125, "{spec}: {out:?}");
            assert!(out.stderr.contains(says), "{spec}: {}", out.stderr);
            assert_eq!(volumes(), Vec::<String>::new(), "{spec}: a refused run created a volume");
        }
        // Host bind mounts, a file read-only and a directory read-write.
        std::fs::write("/run/berth/motd", "from the host\n").unwrap();
        let spec = "/run/berth/motd:/etc/motd:ro";
        assert_eq!(berth(&["run", "--rm", "-v", spec, "busybox", "cat", "/etc/motd"]).ok(), "from the host\n");
        assert_ne!(berth(&["run", "--rm", "-v", spec, "busybox", "sh", "-c", "echo x > /etc/motd"]).code, 0);
        std::fs::create_dir_all("/run/berth/shared").unwrap();
        berth(&["run", "--rm", "--mount", "type=bind,source=/run/berth/shared,target=/s", "busybox", "touch", "/s/made"]).ok();
        assert!(std::path::Path::new("/run/berth/shared/made").exists());
        assert_eq!(std::fs::read_to_string("/run/berth/motd").unwrap(), "from the host\n");
        // A target climbing out of the root stays inside it.
        berth(&["run", "--rm", "-v", "esc:/../../../outside", "busybox", "sh", "-c", "echo in > /outside/f"]).ok();
        assert!(!std::path::Path::new("/outside").exists(), "the mount escaped the container's root");
        assert_eq!(berth(&["run", "--rm", "-v", "esc:/o", "busybox", "cat", "/o/f"]).ok(), "in\n");
    });
}
