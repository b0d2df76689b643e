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

/// A small file system of its own (tmpfs, which needs root), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> Option<Self> {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(at))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn reads_work_while_the_disk_is_full() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    fx.cmd(&["like", "--user", "ana", &ids[0].to_string()])
        .assert()
        .success();
    let Some(disk) = SmallDisk::mount(fx.path("small"), "16m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let db = disk.0.join("catalog.db");
    std::fs::copy(fx.db(), &db).unwrap();
    // Fill the disk to the last byte.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(disk.0.join("filler")).unwrap();
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let byte = [0u8; 1];
        while f.write_all(&byte).is_ok() {}
    }
    let on_full = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
        c.arg("--db").arg(&db).args(args);
        c.env("LOOKBOOK_WEIGHTS", fx.weights())
            .env("XDG_DATA_HOME", fx.path("xdg"));
        assert_cmd::Command::from_std(c)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let id = ids[1].to_string();
    for args in [
        vec!["users"],
        vec!["show", &id],
        vec!["similar", &id, "-k", "3"],
        vec!["recommend", "--user", "ana", "-k", "3"],
        vec!["likes", "--user", "ana"],
        vec!["model", "info"],
    ] {
        let out = on_full(&args);
        assert!(
            out.status.success(),
            "{args:?} failed on a full disk: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A write says the disk is full, and nothing is lost.
    let out = on_full(&["like", "--user", "ana", &id]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a like was confirmed on a full disk");
    assert!(e.contains("full"), "{e}");
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    let out = on_full(&["likes", "--user", "ana", "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ids[0].to_string()));
}
