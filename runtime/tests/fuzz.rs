//! Property-based fuzzing of what images bring: tar headers of layers (mutated from a
//! valid layer with every entry kind) and `docker save` / OCI manifests and configs.
//! Short runs in CI; `cargo test -p berth --test fuzz -- --ignored` runs 100k cases per
//! target. No input may panic, and nothing may be written outside the layer directory.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use berth::error::Error;
use berth::image;
use berth::paths::Paths;

fn runner(short: u32, long: bool) -> TestRunner {
    let cases = if long { 100_000 } else { short };
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-fuzz-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A valid layer with a file, a directory, a symlink, a hard link, a device, whiteouts.
fn seed_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    };
    add("etc/", tar::EntryType::Directory, None, b"");
    add("etc/passwd", tar::EntryType::Regular, None, b"root:x:0:0::/:/bin/sh\n");
    add("etc/link", tar::EntryType::Symlink, Some("/etc/passwd"), b"");
    add("etc/hard", tar::EntryType::Link, Some("etc/passwd"), b"");
    add("etc/.wh.gone", tar::EntryType::Regular, None, b"");
    add("data/.wh..wh..opq", tar::EntryType::Regular, None, b"");
    add("fifo", tar::EntryType::Fifo, None, b"");
    b.into_inner().unwrap()
}

fn mutated_layer() -> impl Strategy<Value = Vec<u8>> {
    let seed = seed_layer();
    let len = seed.len();
    prop_oneof![
        // Byte flips anywhere (headers are at 512-byte boundaries).
        prop::collection::vec((0..len, any::<u8>()), 1..12).prop_map(move |muts| {
            let mut t = seed_layer();
            for (i, b) in muts {
                t[i] = b;
            }
            t
        }),
        // Header fields overwritten with hostile names and link targets.
        (
            0..7usize,
            prop_oneof![Just("../../x"), Just("/etc/shadow"), Just(".wh."), Just(".wh.."), Just("a/../../b"), Just("etc/link/x")],
            any::<bool>()
        )
            .prop_map(|(entry, name, as_link)| {
                let mut t = seed_layer();
                let off = entry * 1024 % t.len().max(1);
                let field = if as_link { off + 157 } else { off };
                for (i, b) in name.bytes().chain(std::iter::once(0)).enumerate() {
                    if field + i < t.len() {
                        t[field + i] = b;
                    }
                }
                t
            }),
        prop::collection::vec(any::<u8>(), 0..2048),
    ]
}

fn tar_headers(long: bool) {
    let dir = scratch("layers");
    let n = Cell::new(0u64);
    runner(300, long)
        .run(&mutated_layer(), |bytes| {
            n.set(n.get() + 1);
            let tarball = dir.join("layer.tar");
            fs::write(&tarball, &bytes).unwrap();
            let dest = dir.join("box/dest");
            let _ = fs::remove_dir_all(dir.join("box"));
            let res = image::unpack::unpack_layer(&tarball, &dest, &mut |_| {});
            if let Err(e) = &res {
                prop_assert!(matches!(e, Error::BadArchive { .. } | Error::Io { .. }), "untyped rejection: {e}");
            }
            // Nothing but the layer directory appeared beside it.
            let siblings: Vec<_> = fs::read_dir(dir.join("box")).unwrap().flatten().map(|e| e.file_name()).collect();
            prop_assert_eq!(siblings, vec![std::ffi::OsString::from("dest")]);
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    println!("fuzz tar_headers: {} cases, no panic, nothing outside the layer", n.get());
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("c.json".to_string()),
        Just("l.tar".to_string()),
        Just("link".to_string()),
        Just("../c.json".to_string()),
        Just("/etc/passwd".to_string()),
        Just("sha256:".to_string() + &"a".repeat(64)),
        Just("sha256:../../etc".to_string()),
        Just("img:v1".to_string()),
        Just("bad\nname".to_string()),
        "\\PC{0,16}",
    ]
}

fn manifest_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![name().prop_map(Value::String), any::<i64>().prop_map(|n| json!(n)), Just(Value::Null)];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let key = prop_oneof![
            Just("Config"),
            Just("Layers"),
            Just("RepoTags"),
            Just("manifests"),
            Just("digest"),
            Just("config"),
            Just("layers"),
            Just("annotations"),
            Just("org.opencontainers.image.ref.name"),
            Just("Env"),
            Just("Cmd"),
            Just("ExposedPorts"),
            Just("User"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn archive(manifest: &Value, index: Option<&Value>, config: &Value) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut file = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    file("manifest.json", manifest.to_string().as_bytes());
    if let Some(i) = index {
        file("index.json", i.to_string().as_bytes());
    }
    file("c.json", config.to_string().as_bytes());
    file("l.tar", &seed_layer());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_link_name("../../../etc/passwd").unwrap();
    b.append_data(&mut h, "link", &[][..]).unwrap();
    b.into_inner().unwrap()
}

fn manifests(long: bool) {
    let dir = scratch("archives");
    let paths = Paths::new(dir.join("lib"), dir.join("run"));
    let n = Cell::new(0u64);
    // Well-shaped manifests with hostile values reach past the shape checks.
    let shaped = (name(), prop::collection::vec(name(), 0..3), prop::collection::vec(name(), 0..2))
        .prop_map(|(c, l, t)| json!([{"Config": c, "Layers": l, "RepoTags": t}]));
    let strategy = (prop_oneof![manifest_value(), shaped], prop::option::of(manifest_value()), manifest_value());
    runner(300, long)
        .run(&strategy, |(m, i, c)| {
            n.set(n.get() + 1);
            let path = dir.join("a.tar");
            fs::write(&path, archive(&m, i.as_ref(), &c)).unwrap();
            if let Ok(imgs) = image::load(&paths, &path) {
                for img in imgs {
                    prop_assert!(netd::name::Name::image(img.name.trim_end_matches(":latest")).is_ok() || img.name.ends_with(":latest"));
                    prop_assert!(!img.name.contains(char::is_control));
                }
            }
            prop_assert!(!Path::new(&dir.join("lib/etc")).exists());
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    println!("fuzz manifests: {} cases, no panic", n.get());
}

#[test]
fn fuzz_tar_headers() {
    tar_headers(false);
}

#[test]
fn fuzz_manifests() {
    manifests(false);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_tar_headers_long() {
    tar_headers(true);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_manifests_long() {
    manifests(true);
}

/// COPY sources: arbitrary patterns over a context's file list resolve to entries of
/// that list (or a typed refusal), and a pattern without `/` never matches below the
/// top level (globs never cross `/`).
fn copy_sources(long: bool) {
    let files: Vec<PathBuf> = ["a", "a/f", "b", "b/d", "b/d/x", "b/f", "c.txt", "sub", "sub/a.txt", "sub/deep", "sub/deep/z.txt"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let n = Cell::new(0u32);
    runner(3000, long)
        .run(&"[a-z./*?\\[\\]!^{}\\-]{0,14}", |src| {
            n.set(n.get() + 1);
            match image::build::sources(&files, &src) {
                Ok(found) => {
                    for f in &found {
                        prop_assert!(f.as_os_str().is_empty() || files.contains(f), "{src:?} gave {f:?}");
                    }
                    let clean = berth::beneath::clean_in_root(&src);
                    if src.contains(['*', '?', '[']) && !clean.to_string_lossy().contains('/') {
                        prop_assert!(found.iter().all(|f| f.components().count() <= 1), "{src:?} crossed '/': {found:?}");
                    }
                }
                Err(e) => prop_assert!(matches!(e, Error::State(_)), "{e:?}"),
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz copy sources: {} cases, no panic", n.get());
}

/// Whole builds of `FROM scratch` + COPY lines with arbitrary sources and destinations,
/// from a context holding a symlink to a canary directory: a build or a typed error,
/// never a panic, and the canary never written.
fn dockerfile_copies(long: bool) {
    let dir = scratch("build");
    let (ctx, canary) = (dir.join("ctx"), dir.join("canary"));
    fs::create_dir_all(ctx.join("a")).unwrap();
    fs::create_dir_all(&canary).unwrap();
    fs::write(canary.join("file"), "precious").unwrap();
    fs::write(ctx.join("a/f"), "data").unwrap();
    fs::write(ctx.join("f"), "top").unwrap();
    std::os::unix::fs::symlink(&canary, ctx.join("link")).unwrap();
    std::os::unix::fs::symlink(canary.join("file"), ctx.join("a/g")).unwrap();
    let paths = Paths::new(dir.join("lib"), dir.join("run"));
    paths.ensure().unwrap();
    let word = "[a-z./*?\\[\\] \"'$-]{0,10}";
    let n = Cell::new(0u32);
    runner(300, long)
        .run(&(word, word, word), |(s1, s2, dest)| {
            n.set(n.get() + 1);
            let text = format!("FROM scratch\nCOPY {s1} {s2} {dest}\nCOPY f {dest}\n");
            fs::write(ctx.join("Dockerfile"), &text).unwrap();
            let o = image::build::Options { context: ctx.clone(), no_cache: true, ..Default::default() };
            let _ = image::build::build(&paths, &o, &mut std::io::sink());
            prop_assert_eq!(fs::read_dir(&canary).unwrap().count(), 1, "{}", text);
            prop_assert_eq!(fs::read_to_string(canary.join("file")).unwrap(), "precious", "{}", text);
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    println!("fuzz dockerfile copies: {} cases, no panic", n.get());
}

#[test]
fn fuzz_copy_sources() {
    copy_sources(false);
}

#[test]
fn fuzz_dockerfile_copies() {
    dockerfile_copies(false);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_copy_sources_long() {
    copy_sources(true);
}

#[test]
#[ignore = "long run: 100k cases"]
fn fuzz_dockerfile_copies_long() {
    dockerfile_copies(true);
}
