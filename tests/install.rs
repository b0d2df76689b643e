//! A binary that has lost its source tree (`cargo install`, then the checkout moves): after one
//! `lookbook demo`, the demo and the model live in the data folder and every command works from
//! any directory. The source tree is simulated by a temporary folder (LOOKBOOK_BUNDLED_DIR) that
//! is deleted halfway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn lookbook(cwd: &Path, src: &Path, xdg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lookbook"))
        .args(args)
        .current_dir(cwd)
        .env_remove("LOOKBOOK_WEIGHTS")
        .env_remove("LOOKBOOK_DB")
        .env("LOOKBOOK_BUNDLED_DIR", src)
        .env("XDG_DATA_HOME", xdg)
        .output()
        .unwrap()
}

#[test]
fn the_demo_keeps_working_after_the_source_tree_is_gone() {
    let fx = common::Fixture::mini();
    let root = tempfile::tempdir().unwrap();
    let (src, xdg, first, second) = (
        root.path().join("src"),
        root.path().join("xdg"),
        root.path().join("one"),
        root.path().join("two"),
    );
    for d in [&src.join("demo/images"), &src.join("models"), &first, &second] {
        std::fs::create_dir_all(d).unwrap();
    }
    for e in std::fs::read_dir(fx.images()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), src.join("demo/images").join(e.file_name())).unwrap();
    }
    std::fs::copy(fx.csv(), src.join("demo/styles.csv")).unwrap();
    common::write_weights(&src.join("models/lookbook-fashion-resnet50.safetensors"), 5);

    let out = lookbook(&first, &src, &xdg, &["demo"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(xdg.join("lookbook/demo/styles.csv").is_file());
    assert!(
        xdg.join("lookbook/models/lookbook-fashion-resnet50.safetensors")
            .is_file()
    );

    std::fs::remove_dir_all(&src).unwrap();
    let id = fx.ids()[0].to_string();
    // The first catalogue still finds its photos and model.
    let out = lookbook(&first, &src, &xdg, &["similar", &id, "-k", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let photo = xdg.join(format!("lookbook/demo/images/{id}.jpg"));
    let out = lookbook(
        &first,
        &src,
        &xdg,
        &["similar", "--image", photo.to_str().unwrap(), "-k", "3"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A new catalogue elsewhere is made from the installed copy.
    let out = lookbook(&second, &src, &xdg, &["demo"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = lookbook(&second, &src, &xdg, &["similar", &id, "-k", "3", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::json(&out.stdout)["results"].as_array().unwrap().len(), 3);
}

#[test]
fn without_source_or_installed_copy_the_error_says_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let out = lookbook(
        root.path(),
        &root.path().join("gone"),
        &root.path().join("xdg"),
        &["demo"],
    );
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("lookbook demo --from"), "{e}");
}
