//! Shared fixtures: a small real catalogue (48 photos of 8 types) copied into a temp dir, broken
//! inputs written next to it, and random ResNet50 weights with the real names and shapes.
#![allow(dead_code)]

pub mod api;
pub mod http;
pub mod shop_history;
pub mod ssh;

use assert_cmd::Command;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A temporary catalogue folder.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Copies tests/fixtures/mini into a fresh temp dir.
    pub fn mini() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini");
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        for e in std::fs::read_dir(src.join("images")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join("images").join(e.file_name())).unwrap();
        }
        std::fs::copy(src.join("styles.csv"), dir.path().join("styles.csv")).unwrap();
        Fixture { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn db(&self) -> PathBuf {
        self.path("catalog.db")
    }

    pub fn images(&self) -> PathBuf {
        self.path("images")
    }

    pub fn csv(&self) -> PathBuf {
        self.path("styles.csv")
    }

    /// Ids in the fixture CSV, in file order.
    pub fn ids(&self) -> Vec<i64> {
        std::fs::read_to_string(self.csv())
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect()
    }

    /// Writes random weights (64x48 input so tests are quick) and returns their path.
    pub fn weights(&self) -> PathBuf {
        let p = self.path("random-resnet50.safetensors");
        if !p.exists() {
            write_weights(&p, 7);
        }
        p
    }

    /// `lookbook --db <db> args...` with weights pointed at the random file.
    pub fn cmd(&self, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd(args))
    }

    /// The same command as a plain `std::process::Command` (for pipes and PTYs).
    pub fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
        c.arg("--db").arg(self.db()).args(args);
        c.env("LOOKBOOK_WEIGHTS", self.weights());
        c.env("XDG_DATA_HOME", self.path("xdg"));
        c.current_dir(self.dir.path());
        c
    }

    /// Imports the fixture (no vectors yet).
    pub fn import(&self) -> &Self {
        self.cmd(&[
            "import",
            "--images",
            self.images().to_str().unwrap(),
            "--metadata",
            self.csv().to_str().unwrap(),
        ])
        .assert()
        .success();
        self
    }

    /// Imports the fixture and embeds it.
    pub fn ready(&self) -> &Self {
        self.import();
        self.cmd(&["embed", "--batch", "8"]).assert().success();
        self
    }
}

/// Random torchvision-layout ResNet50 weights with a small input size in the metadata.
pub fn write_weights(path: &Path, seed: u64) {
    let mut meta = HashMap::new();
    meta.insert("lookbook.input_height".to_string(), "64".to_string());
    meta.insert("lookbook.input_width".to_string(), "48".to_string());
    meta.insert("lookbook.crop_fraction".to_string(), "1.0".to_string());
    lookbook::vision::write_random_weights(path, seed, 8, meta).unwrap();
}

/// The ids of a ranking command's `--json` results, in order.
pub fn result_ids(v: &serde_json::Value) -> Vec<i64> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// stdout as JSON.
pub fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// The `method` names of an `eval --json` report, in order.
pub fn method_names(report: &serde_json::Value) -> Vec<String> {
    report["methods"]
        .as_array()
        .expect("an eval report has methods")
        .iter()
        .map(|m| m["method"].as_str().expect("each method has a name").to_string())
        .collect()
}
