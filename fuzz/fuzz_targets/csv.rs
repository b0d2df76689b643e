//! The strict CSV reader on arbitrary bytes (as `import` reads them: lossy UTF-8).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for r in lookbook::ingest::csv::records(&text).into_iter().flatten() {
        assert!(r.fields.len() <= text.len() + 1);
    }
});
