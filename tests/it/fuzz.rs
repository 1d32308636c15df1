//! Replays what the fuzz targets (`fuzz/`) ever found, their committed seeds, and the corpus
//! grown on this machine if there is one: no input panics, every error is located.
//! `scripts/fuzz.sh` runs the fuzzers themselves.

use crate::support::repo_root;
use std::path::Path;

fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["regressions", "seeds", "corpus"] {
        let path = repo_root().join("fuzz").join(sub).join(dir);
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "README" {
                out.push((
                    format!("{sub}/{dir}/{name}"),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn kubefile_inputs_never_panic() {
    let all = inputs("kubefile");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match sealer::kubefile::parse(Path::new("Kubefile"), text) {
            Ok(file) => {
                let _ = sealer::image::build::recipe::resolve(&file, &Default::default(), "amd64");
            }
            Err(e) => assert!(
                e.diagnostics().iter().all(|d| d.location.is_some()),
                "{name}"
            ),
        }
    }
}

#[test]
fn clusterfile_inputs_never_panic() {
    let all = inputs("clusterfile");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Err(e) = sealer::clusterfile::parse(Path::new("Clusterfile"), text) {
            assert!(
                e.diagnostics().iter().all(|d| d.location.is_some()),
                "{name}"
            );
        }
    }
}

#[test]
fn kubeversion_inputs_never_panic() {
    let all = inputs("kubeversion");
    assert!(!all.is_empty());
    for (_, bytes) in all {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let (c, v) = text.split_once('\n').unwrap_or((text, "v1.22.15"));
        if let (Ok(c), Ok(v)) = (
            sealer::kubeversion::Constraint::parse(c),
            sealer::kubeversion::Version::parse(v),
        ) {
            let _ = c.matches(&v);
        }
    }
}
