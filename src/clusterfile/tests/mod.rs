//! Tests of the Clusterfile loader: rules (table-driven), the resolved view, fixtures and
//! property tests.

mod props;
mod resolve;
mod rules;

use super::*;
use std::path::{Path, PathBuf};

/// A valid Cluster document; tests append to or replace parts of it.
pub(super) const CLUSTER: &str = "\
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: test
spec:
  image: sealerio/kubernetes:v1.22.15
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
";

pub(super) fn load_ok(src: &str) -> Clusterfile {
    match parse(Path::new("Clusterfile"), src) {
        Ok(file) => file,
        Err(e) => panic!("unexpected error:\n{}\nfor:\n{src}", e.render()),
    }
}

/// The headline of every diagnostic.
pub(super) fn headlines(src: &str) -> Vec<String> {
    match parse(Path::new("Clusterfile"), src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e.diagnostics().iter().map(|d| d.headline()).collect(),
    }
}

fn fixture_dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clusterfiles")
        .join(kind)
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_valid_fixture_loads() {
    let paths = fixtures("valid");
    assert!(paths.len() >= 5);
    for path in paths {
        if let Err(e) = load(&path) {
            panic!("{}:\n{}", path.display(), e.render());
        }
    }
}

/// Each invalid fixture lists its errors at its end as `# expect: LINE:COL: error: ...`.
#[test]
fn every_invalid_fixture_reports_exactly_its_expected_errors() {
    let paths = fixtures("invalid");
    assert!(paths.len() >= 10);
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| format!("{}:{l}", path.display()))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no expectations",
            path.display()
        );
        let actual: Vec<String> = match load(&path) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| d.headline()).collect(),
        };
        assert_eq!(actual, expected, "{}", path.display());
    }
}

#[test]
fn located_errors_quote_the_line_and_hint() {
    let src = CLUSTER.replace("[10.0.0.2]", "[10.0.0.256]");
    let e = parse(Path::new("Clusterfile"), &src).unwrap_err();
    assert_eq!(
        e.render(),
        "Clusterfile:8:13: error: invalid IP address `10.0.0.256`\n\
         8 |     - ips: [10.0.0.256]\n  \
           |             ^\n\
         hint: write an IPv4 address such as 192.168.0.2 or an IPv6 address such as fd00::2\n"
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Clusterfile");
    std::fs::write(&path, b"kind: Cluster\nmetadata: {name: \xff}\n").unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(
        e.diagnostics()[0].headline(),
        format!("{}:2:18: error: the file is not UTF-8 text", path.display())
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let e = load(Path::new("/nonexistent/Clusterfile")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error: no Clusterfile at /nonexistent/Clusterfile"
    );
    assert!(
        e.diagnostics()[0]
            .hints
            .iter()
            .any(|h| h.starts_with("pass the file with -f PATH")),
        "{e:?}"
    );
}

#[test]
fn a_key_indented_too_little_is_told_where_it_belongs() {
    let src = format!("{CLUSTER}  ssh:\n    user: root\n  passwd: hunter2\n");
    let e = parse(Path::new("Clusterfile"), &src).unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!(
        d.headline(),
        "Clusterfile:12:3: error: unknown field `passwd` in Cluster.spec"
    );
    assert_eq!(
        d.hints[0],
        "`passwd` is a field of Cluster.spec.ssh: indent it under `ssh:`"
    );
    // In a host group too.
    let src = CLUSTER.replace(
        "      roles: [master]\n",
        "      roles: [master]\n      pk: ~/.ssh/id\n",
    );
    let e = parse(Path::new("Clusterfile"), &src).unwrap_err();
    assert_eq!(
        e.diagnostics()[0].hints[0],
        "`pk` is a field of Cluster.spec.hosts[0].ssh: indent it under `ssh:`"
    );
}
