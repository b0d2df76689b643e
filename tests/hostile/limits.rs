//! Unbounded inputs: devices, FIFOs, huge files and decompression bombs are refused quickly,
//! with a message that names them, and cost little memory.

use crate::common::Fixture;
use std::time::Duration;

fn quick(fx: &Fixture, args: &[&str]) -> String {
    let out = fx.cmd(args).timeout(Duration::from_secs(60)).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn devices_are_not_read() {
    let fx = Fixture::mini();
    fx.ready();
    let e = quick(&fx, &["similar", "--image", "/dev/zero"]);
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    let e = quick(&fx, &["import", "--images", "images", "--metadata", "/dev/zero"]);
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    let e = quick(&fx, &["embed", "--weights", "/dev/zero"]);
    assert!(e.contains("/dev/zero"), "{e}");
}

#[test]
fn fifos_do_not_hang() {
    let fx = Fixture::mini();
    fx.ready();
    let fifo = fx.path("pipe.jpg");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = quick(&fx, &["similar", "--image", fifo.to_str().unwrap()]);
    assert!(e.contains("pipe.jpg") && e.contains("not a regular file"), "{e}");
    let e = quick(&fx, &["import", "--images", "images", "--metadata", fifo.to_str().unwrap()]);
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn huge_files_are_refused_by_size() {
    let fx = Fixture::mini();
    fx.ready();
    let big = fx.path("big.csv");
    std::fs::File::create(&big).unwrap().set_len(lookbook::files::MAX_METADATA_BYTES + 1).unwrap();
    let e = quick(&fx, &["import", "--images", "images", "--metadata", big.to_str().unwrap()]);
    assert!(e.contains("big.csv") && e.contains("limit"), "{e}");
    let photo = fx.path("big.jpg");
    std::fs::File::create(&photo).unwrap().set_len(lookbook::files::MAX_PHOTO_BYTES + 1).unwrap();
    let e = quick(&fx, &["similar", "--image", photo.to_str().unwrap()]);
    assert!(e.contains("big.jpg") && e.contains("limit"), "{e}");
}

/// An all-black greyscale PNG: a few hundred KB on disk, `side`² pixels once decoded.
fn bomb(path: &std::path::Path, side: u32) {
    let img = image::GrayImage::new(side, side);
    img.save(path).unwrap();
}

#[test]
fn a_decompression_bomb_under_the_side_limit_is_refused_from_its_header() {
    let fx = Fixture::mini();
    fx.ready();
    let p = fx.path("bomb.png");
    bomb(&p, 11_000);
    assert!(std::fs::metadata(&p).unwrap().len() < 1 << 20);
    let e = quick(&fx, &["similar", "--image", p.to_str().unwrap()]);
    assert!(e.contains("bomb.png") && e.contains("megapixel"), "{e}");
}
