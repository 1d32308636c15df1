//! Any bytes as a Kubefile: parsing and resolution never panic; every error is located.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match sealer::kubefile::parse(Path::new("Kubefile"), text) {
        Ok(file) => {
            let _ = sealer::image::build::recipe::resolve(&file, &Default::default(), "amd64");
        }
        Err(e) => {
            for d in e.diagnostics() {
                assert!(d.location.is_some(), "unlocated: {}", d.headline());
            }
        }
    }
});
