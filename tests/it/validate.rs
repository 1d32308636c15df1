//! `sealer validate -f FILE`: every invalid Clusterfile fixture fails with exit code 1 and
//! its located errors, compiler-style.

use crate::support::{Sandbox, failure_of, fixture};
use std::path::PathBuf;

fn invalid_fixtures() -> Vec<PathBuf> {
    let dir = fixture("clusterfiles/invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

/// `# expect: LINE:COL: error: MESSAGE` lines at the end of a fixture.
fn expectations(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("fixture")
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_invalid_clusterfile_fails_with_its_located_errors() {
    let sb = Sandbox::new();
    let paths = invalid_fixtures();
    assert!(paths.len() >= 10, "{paths:?}");
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let stderr = failure_of(
            sb.sealer()
                .current_dir(path.parent().unwrap())
                .args(["validate", "-f", &name]),
        );
        let expected = expectations(&path);
        assert!(!expected.is_empty(), "{name} has no expectations");
        for headline in expected {
            let line = format!("{name}:{headline}\n");
            assert!(
                stderr.contains(&line),
                "{name}: missing\n{line}in:\n{stderr}"
            );
        }
    }
}

#[test]
fn errors_quote_the_line_with_a_caret_and_a_hint() {
    let sb = Sandbox::new();
    let dir = fixture("clusterfiles/invalid");
    let stderr =
        failure_of(
            sb.sealer()
                .current_dir(&dir)
                .args(["validate", "-f", "bad-hosts.yaml"]),
        );
    let expected = "bad-hosts.yaml:8:26: error: invalid IP address `192.168.0.256`\n\
                    8 |     - ips: [192.168.0.2, 192.168.0.256]\n  \
                      |                          ^\n\
                    hint: write an IPv4 address such as 192.168.0.2 or an IPv6 address such as fd00::2\n";
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn a_missing_clusterfile_is_an_error() {
    let sb = Sandbox::new();
    let stderr = failure_of(
        sb.sealer()
            .args(["validate", "-f", "/nonexistent/Clusterfile"]),
    );
    assert!(
        stderr.contains("error: read /nonexistent/Clusterfile: No such file or directory"),
        "{stderr}"
    );
}
