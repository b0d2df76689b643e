//! Decoding untrusted photo bytes and preprocessing what decodes: errors, never panics, and
//! every network input is finite.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(img) = lookbook::vision::decode(data) {
        let v = lookbook::vision::Preprocess::imagenet().apply(&img);
        assert!(v.iter().all(|x| x.is_finite()));
    }
});
