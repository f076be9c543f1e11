//! Test images built at test time from busybox-static: a plain rootfs tarball, and
//! `docker save` / OCI layout archives with two layers and whiteouts.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::netns::sh;

/// Where test images are built (tmpfs in every test host).
const WORK: &str = "/run/berth/test-images";

/// Creates a busybox root filesystem in `dir`: /bin/busybox with every applet linked,
/// and /www/index.html saying `page`.
pub fn busybox_rootfs(dir: &Path, page: &str) {
    fs::create_dir_all(dir.join("bin")).expect("mkdir");
    fs::create_dir_all(dir.join("www")).expect("mkdir");
    fs::create_dir_all(dir.join("etc")).expect("mkdir");
    fs::create_dir_all(dir.join("tmp")).expect("mkdir");
    fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static is installed (apt-get install busybox-static)");
    for applet in sh("/bin/busybox --list").lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    fs::write(dir.join("www/index.html"), page).expect("page");
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n").expect("passwd");
}

/// A rootfs tarball of busybox; returns its path.
pub fn busybox_tar(page: &str) -> PathBuf {
    let dir = PathBuf::from(WORK).join("rootfs");
    busybox_rootfs(&dir, page);
    let tar = PathBuf::from(WORK).join("busybox.tar");
    sh(&format!("tar -C {} -cf {} .", dir.display(), tar.display()));
    tar
}

fn sha(path: &Path) -> String {
    sh(&format!("sha256sum {}", path.display())).split_whitespace().next().unwrap_or_default().to_string()
}

/// The second layer used by both archive formats: deletes /etc/gone (whiteout), makes
/// /data opaque (hiding /data/old), adds /data/new and /etc/motd.
fn layers(work: &Path) -> (PathBuf, PathBuf) {
    let l1 = work.join("l1");
    busybox_rootfs(&l1, "loaded page");
    fs::write(l1.join("etc/gone"), "should be hidden").unwrap();
    fs::create_dir_all(l1.join("data")).unwrap();
    fs::write(l1.join("data/old"), "old").unwrap();
    let l2 = work.join("l2");
    fs::create_dir_all(l2.join("etc")).unwrap();
    fs::create_dir_all(l2.join("data")).unwrap();
    fs::write(l2.join("etc/.wh.gone"), "").unwrap();
    fs::write(l2.join("data/.wh..wh..opq"), "").unwrap();
    fs::write(l2.join("data/new"), "new").unwrap();
    fs::write(l2.join("etc/motd"), "layer two").unwrap();
    let (t1, t2) = (work.join("layer1.tar"), work.join("layer2.tar"));
    sh(&format!("tar -C {} -cf {} .", l1.display(), t1.display()));
    sh(&format!("tar -C {} -cf {} . && gzip -kf {}", l2.display(), t2.display(), t2.display()));
    (t1, t2)
}

fn config() -> serde_json::Value {
    json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "GREETING=from-image"],
            "Cmd": ["sh", "-c", "echo $GREETING in $(pwd)"],
            "WorkingDir": "/data",
            "ExposedPorts": {"80/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    })
}

/// A `docker save` archive named `name` (e.g. "loaded:v1").
pub fn docker_archive(name: &str) -> PathBuf {
    let work = PathBuf::from(WORK).join("docker");
    let (t1, t2) = layers(&work);
    let out = work.join("out");
    fs::create_dir_all(out.join("l1")).unwrap();
    fs::create_dir_all(out.join("l2")).unwrap();
    fs::copy(&t1, out.join("l1/layer.tar")).unwrap();
    fs::copy(&t2, out.join("l2/layer.tar")).unwrap();
    fs::write(out.join("config.json"), config().to_string()).unwrap();
    let manifest = json!([{"Config": "config.json", "RepoTags": [name], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]);
    fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
    let tar = PathBuf::from(WORK).join("docker.tar");
    sh(&format!("tar -C {} -cf {} manifest.json config.json l1 l2", out.display(), tar.display()));
    tar
}

/// An OCI image layout archive named `name`, with a gzip-compressed second layer.
pub fn oci_archive(name: &str) -> PathBuf {
    let work = PathBuf::from(WORK).join("oci");
    let (t1, t2) = layers(&work);
    let t2gz = PathBuf::from(format!("{}.gz", t2.display()));
    let out = work.join("out");
    let blobs = out.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |p: &Path| -> (String, u64) {
        let d = sha(p);
        fs::copy(p, blobs.join(&d)).unwrap();
        (d, fs::metadata(p).unwrap().len())
    };
    let (d1, s1) = put(&t1);
    let (d2, s2) = put(&t2gz);
    let cfg = work.join("config.json");
    fs::write(&cfg, config().to_string()).unwrap();
    let (dc, sc) = put(&cfg);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{dc}"), "size": sc},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{d1}"), "size": s1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{d2}"), "size": s2}
        ]
    });
    let mf = work.join("manifest.json");
    fs::write(&mf, manifest.to_string()).unwrap();
    let (dm, sm) = put(&mf);
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{dm}"), "size": sm, "annotations": {"org.opencontainers.image.ref.name": name}}]});
    fs::write(out.join("index.json"), index.to_string()).unwrap();
    fs::write(out.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let tar = PathBuf::from(WORK).join("oci.tar");
    sh(&format!("tar -C {} -cf {} oci-layout index.json blobs", out.display(), tar.display()));
    tar
}
