//! Any text as a constraint and a version: parsing and matching never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealer::kubeversion::{Constraint, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (c, v) = text.split_once('\n').unwrap_or((text, "v1.22.15"));
    let version = Version::parse(v);
    if let Ok(constraint) = Constraint::parse(c)
        && let Ok(version) = version
    {
        let _ = constraint.matches(&version);
    }
});
