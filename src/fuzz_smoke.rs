//! Short property-based runs of the fuzz targets' properties (see `fuzz/`), inside `cargo
//! test`: untrusted CSV text, safetensors headers and image bytes never panic the readers, and
//! decoded images of any shape preprocess to finite values. cargo-fuzz runs the same properties
//! for longer, with coverage guidance, where a nightly toolchain is available.

use proptest::prelude::*;

/// Bytes that look like the start of a real file more often than uniform noise does.
fn looks_like(prefix: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..512)).prop_map(move |(with, mut tail)| {
        if with {
            let mut v = prefix.to_vec();
            v.append(&mut tail);
            v
        } else {
            tail
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_reader_never_panics(text in "(?s)[a-z0-9,\"\\n\\r é\u{1b}]{0,200}") {
        for r in crate::ingest::csv::records(&text).into_iter().flatten() {
            prop_assert!(r.fields.len() <= text.len() + 1);
        }
    }

    #[test]
    fn safetensors_header_reader_never_panics(bytes in prop_oneof![
        looks_like(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let p = dir.path().join("w.safetensors");
        std::fs::write(&p, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = crate::vision::weights::WeightFile::read(&p);
    }

    #[test]
    fn image_decoder_never_panics(bytes in prop_oneof![
        looks_like(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        looks_like(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
        looks_like(b"GIF89a"),
        looks_like(b"RIFF\x00\x00\x00\x00WEBPVP8 "),
        looks_like(b"BM"),
    ]) {
        let _ = crate::vision::decode(&bytes);
    }

    #[test]
    fn any_image_shape_preprocesses_to_finite_values(w in 1u32..300, h in 1u32..300, seed in any::<u8>()) {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x as u8) ^ seed, y as u8, seed]));
        let pre = crate::vision::Preprocess::imagenet();
        let v = pre.apply(&img);
        prop_assert_eq!(v.len(), 3 * pre.height * pre.width);
        prop_assert!(v.iter().all(|x| x.is_finite()));
    }
}
