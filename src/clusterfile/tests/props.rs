//! No input panics, and every error is located: random text, YAML-like token soup, and the
//! valid fixtures mutated byte by byte (through `parse` and through `load`).

use crate::clusterfile::{load, parse};
use proptest::prelude::*;
use std::path::Path;

const SEEDS: &[&str] = &[
    include_str!("../../../tests/fixtures/clusterfiles/valid/ha-3m3w.yaml"),
    include_str!("../../../tests/fixtures/clusterfiles/valid/application.yaml"),
    include_str!("../../../tests/fixtures/clusterfiles/valid/ipv6.yaml"),
    include_str!("../../../tests/fixtures/clusterfiles/valid/external-registry.yaml"),
    include_str!("../../../tests/fixtures/clusterfiles/valid/single-node.yaml"),
];

/// Bytes that matter to YAML and to our rules.
const ALPHABET: &[u8] = b" \n\t-:,[]{}#&*!|>'\"%@`?=;./~0123456789abcxyzAZ";

fn check_located(result: crate::diag::Result<crate::clusterfile::Clusterfile>) {
    if let Err(e) = result {
        assert!(!e.diagnostics().is_empty());
        for d in e.diagnostics() {
            assert!(d.location.is_some(), "unlocated: {}", d.headline());
        }
    }
}

fn exercise(src: &str) {
    check_located(parse(Path::new("Clusterfile"), src));
}

/// Applies byte edits: replace, delete, insert, or duplicate a slice elsewhere.
fn mutate(seed: &str, ops: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for &(at, op, value) in ops {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let i = at % bytes.len();
        let byte = ALPHABET[usize::from(value) % ALPHABET.len()];
        match op % 5 {
            0 => bytes[i] = byte,
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, byte),
            3 => bytes[i] = value,
            _ => {
                let len = (usize::from(value) % 40).min(bytes.len() - i);
                let slice = bytes[i..i + len].to_vec();
                let to = (at / 7) % bytes.len();
                bytes.splice(to..to, slice);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,300}") {
        exercise(&src);
    }

    #[test]
    fn yaml_like_text_never_panics(
        src in "((apiVersion|kind|spec|hosts|ips|roles|env|ssh|Cluster|Plugin|metadata|name|[a-z0-9.]{0,6})( |:|- |\\[|\\]|\\{|\\}|,|&a|\\*a|!!str|\\||>|'|\"|#|=|;|\\n  |\\n){0,4}){0,40}"
    ) {
        exercise(&src);
    }

    #[test]
    fn mutated_clusterfiles_never_panic(
        seed in 0..SEEDS.len(),
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..16),
    ) {
        let bytes = mutate(SEEDS[seed], &ops);
        exercise(&String::from_utf8_lossy(&bytes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Through the file system too, so that invalid UTF-8 reaches `load`.
    #[test]
    fn mutated_files_never_panic_when_loaded(
        seed in 0..SEEDS.len(),
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Clusterfile");
        std::fs::write(&path, mutate(SEEDS[seed], &ops)).expect("write");
        check_located(load(&path));
    }
}

#[test]
fn alias_bombs_and_deep_nesting_are_errors_not_crashes() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (prev, name) = (pair[0], pair[1]);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let nested_maps = format!("{}x{}", "{a: ".repeat(5_000), "}".repeat(5_000));
    for (name, src, why) in [
        (
            "alias bomb",
            bomb.as_str(),
            "aliases expand to too many nodes",
        ),
        (
            "deep flow sequence",
            &"[".repeat(100_000),
            "recursion limit",
        ),
        ("deep block sequence", &"- ".repeat(10_000), ""),
        ("repeated key", &"a:\n".repeat(10_000), ""),
        ("deep flow mapping", &nested_maps, "recursion limit"),
    ] {
        // Each is refused, with a located error, never accepted as a Clusterfile.
        let err = parse(Path::new("Clusterfile"), src)
            .err()
            .unwrap_or_else(|| panic!("{name}: parsed"));
        assert!(
            err.diagnostics().iter().all(|d| d.location.is_some()),
            "{name}: {}",
            err.render()
        );
        assert!(err.render().contains(why), "{name}: {}", err.render());
    }
}
