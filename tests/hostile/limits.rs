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
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = quick(&fx, &["similar", "--image", fifo.to_str().unwrap()]);
    assert!(e.contains("pipe.jpg") && e.contains("not a regular file"), "{e}");
    let e = quick(
        &fx,
        &["import", "--images", "images", "--metadata", fifo.to_str().unwrap()],
    );
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn huge_files_are_refused_by_size() {
    let fx = Fixture::mini();
    fx.ready();
    let big = fx.path("big.csv");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(lookbook::files::MAX_METADATA_BYTES + 1)
        .unwrap();
    let e = quick(
        &fx,
        &["import", "--images", "images", "--metadata", big.to_str().unwrap()],
    );
    assert!(e.contains("big.csv") && e.contains("limit"), "{e}");
    let photo = fx.path("big.jpg");
    std::fs::File::create(&photo)
        .unwrap()
        .set_len(lookbook::files::MAX_PHOTO_BYTES + 1)
        .unwrap();
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

/// Eight photos just under the pixel limit, embedded with eight decoding threads: the pixel
/// budget keeps at most two such decodes in flight, so memory stays far below eight at once.
#[test]
fn big_photos_do_not_multiply_memory_by_the_thread_count() {
    let fx = Fixture::mini();
    let side = 7_000u32; // 49 megapixels: under the limit, ~150 MB each once decoded to RGB
    let mut csv = String::from("id,articleType\n");
    for i in 0..8 {
        bomb(&fx.images().join(format!("{}.png", 800_000 + i)), side);
        csv.push_str(&format!("{},Shoes,{}.png\n", 800_000 + i, 800_000 + i));
    }
    let csv = csv.replace("id,articleType\n", "id,articleType,image\n");
    std::fs::write(fx.path("big.csv"), csv).unwrap();
    fx.cmd(&["import", "--images", "images", "--metadata", "big.csv"])
        .env("RAYON_NUM_THREADS", "8")
        .assert()
        .success();
    let out = fx
        .cmd(&["embed", "--batch", "8", "--json"])
        .env("RAYON_NUM_THREADS", "8")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = crate::common::json(&out.stdout);
    assert_eq!(report["embedded"], 8);
    let peak = report["peak_memory_mib"].as_f64().unwrap();
    // Eight decodes at once would need over 1.5 GB; two at a time stay well under 1 GB.
    assert!(peak < 1000.0, "peak {peak:.0} MiB");
    eprintln!("embed of eight 49-megapixel photos with 8 threads: peak {peak:.0} MiB");
}

/// A 200,000-row CSV is streamed in chunks: the import's peak memory stays far below what
/// holding every parsed row at once cost (about 12 times the file).
#[test]
fn a_large_csv_is_imported_in_bounded_memory() {
    let fx = Fixture::mini();
    let photos: Vec<String> = fx.ids().iter().map(|i| format!("{i}.jpg")).collect();
    let mut csv = String::from(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName,image\n",
    );
    for i in 0..200_000u32 {
        let photo = &photos[i as usize % photos.len()];
        csv.push_str(&format!(
            "{},Men,Apparel,Topwear,Tshirts,Blue,Summer,2012,Casual,Some Brand Men Blue Printed T-shirt {i},{photo}\n",
            1_000_000 + i
        ));
    }
    std::fs::write(fx.path("large.csv"), &csv).unwrap();
    let mb = csv.len() as f64 / (1 << 20) as f64;
    let out = fx
        .cmd(&["import", "--images", "images", "--metadata", "large.csv", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = crate::common::json(&out.stdout);
    assert_eq!(report["inserted"], 200_000);
    let peak = report["peak_memory_mib"].as_f64().unwrap();
    eprintln!("import of a {mb:.0} MB, 200,000-row CSV: peak {peak:.0} MiB");
    assert!(peak < 100.0, "peak {peak:.0} MiB for a {mb:.0} MB CSV");
}
