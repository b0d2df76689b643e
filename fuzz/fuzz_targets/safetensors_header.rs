//! The weights loader on arbitrary files: errors, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let p = dir.path().join("w.safetensors");
    if std::fs::write(&p, data).is_ok() {
        let _ = lookbook::vision::weights::WeightFile::read(&p);
    }
});
