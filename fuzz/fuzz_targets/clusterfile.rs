//! Any bytes as a Clusterfile: loading never panics; every error is located.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = sealer::clusterfile::parse(Path::new("Clusterfile"), text) {
        for d in e.diagnostics() {
            assert!(d.location.is_some(), "unlocated: {}", d.headline());
        }
    }
});
