//! Tests for the Masterminds/semver v3.4 constraint language.
//!
//! Besides the tables, the scanners are checked against a naive backtracking matcher that
//! runs the literal Go regexes, with the leftmost-first semantics Go's regexp guarantees.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use proptest::prelude::*;

use super::constraint::{RangeMatch, build_item, find_ranges, first_version_suffix, rewritten};
use super::version::{Numbers, scan_parts};
use super::{Constraint, Version};

/// Checks one `(constraint, version, expected)` case, naming it on failure.
fn check(c: &str, v: &str, want: bool) {
    let constraint =
        Constraint::parse(c).unwrap_or_else(|e| panic!("constraint {c:?} should parse: {e}"));
    let version = Version::parse(v).unwrap_or_else(|e| panic!("version {v:?} should parse: {e}"));
    assert_eq!(
        constraint.matches(&version),
        want,
        "constraint {c:?} with version {v:?}: expected {want}"
    );
}

#[rustfmt::skip]
const MATCHES: &[(&str, &str, bool)] = &[
    // Hyphen ranges: `A - B` is `>= A, <= B`; a partial upper bound covers its whole range.
    ("1.22 - 1.24", "1.24.5", true),
    ("1.22 - 1.24", "v1.22.0", true),
    ("1.22 - 1.24", "1.21.9", false),
    ("1.22 - 1.24", "1.25.0", false),
    ("1.22.0 - 1.24.0", "1.24.5", false),
    ("1.22.0 - 1.24.0", "1.24.0", true),
    ("1.22.3 - 1.24", "1.22.2", false),
    ("1.24 - 1.22", "1.23.0", false),
    ("1.24 - 1.22", "1.24.0", false),
    ("  1.22   -   1.24  ", "1.23.1", true),
    ("1.22\t-\t1.24", "1.23.0", true),
    ("1.22\n-\r1.24", "1.23.0", true),
    ("v1.22 - v1.24", "1.24.9", true),
    ("1.22 - 1.24 || 1.26", "1.26.3", true),
    ("1.22 - 1.24 || 1.26", "1.25.0", false),
    ("1.22 - 1.24||1.26", "1.26.0", true),
    ("1.22 - 1.24, !=1.23.4", "1.23.4", false),
    ("1.22 - 1.24, !=1.23.4", "1.23.5", true),
    ("1.22 - 1.24 1.23", "1.23.3", true),
    ("1.22 - 1.24 1.23", "1.22.3", false),
    ("1.22 - 1.24 || 1.26 - 1.27", "1.27.1", true),
    ("* - 1.24", "1.0.0", true),
    ("* - 1.24", "1.25.0", false),
    ("1.22 - 1.24", "1.23.0-rc.1", false),
    ("1.22.0-0 - 1.24", "1.23.0-rc.1", true),
    ("1.22.0-0 - 1.24", "1.24.9-rc.1", true),
    // The rewrite is textual: what follows the range is simply the next item.
    ("1.22 - 1.24>=1.23", "1.22.5", false),
    ("1.22 - 1.24>=1.23", "1.23.1", true),
    ("1 - 2||3", "3.1.0", true),
    ("1,2 - 3", "2.5.0", false),
    // `<= *` only admits 0.0.z (see below), so a range up to `*` is odd too.
    ("1.22 - *", "1.23.0", false),
    ("0 - *", "0.0.5", true),
    ("0 - *", "0.1.0", false),
    // Without spaces around `-` it is a prerelease: `1.22-1.24` is 1.22.x, prereleases allowed.
    ("1.22-1.24", "1.22.0", true),
    ("1.22-1.24", "1.22.15", true),
    ("1.22-1.24", "1.23.0", false),
    ("1.22-1.24", "1.24.0", false),
    ("1.22-1.24", "1.21.0", false),
    ("1.22-1.24", "1.22.5-rc.1", true),
    // OR.
    ("1.20 || 1.22", "1.22.3", true),
    ("1.20 || 1.22", "1.21.0", false),
    ("1.20||1.22", "1.20.1", true),
    ("<1.20 || >1.24", "1.22.0", false),
    ("<1.20 || >1.24", "1.25.0", true),
    ("<1.20 || >1.24", "1.19.9", true),
    // AND separators: whitespace (Go's \s: tab, newline, form feed, return, space) or a comma.
    (">=1.22, <1.25", "1.24.9", true),
    (">=1.22,<1.25", "1.25.0", false),
    (">=1.22 <1.25", "1.22.0", true),
    (">=1.22 ,  <1.25", "1.23.0", true),
    (">= 1.22 , < 1.25", "1.21.0", false),
    ("\t>=1.22\n<1.25\r", "1.23.0", true),
    (">=1.22\u{c}<1.25", "1.23.0", true),
    ("~ 1.22", "1.22.7", true),
    ("^ 1.22", "1.30.0", true),
    (">=\t1.22", "1.22.0", true),
    // Every operator with an exact version.
    ("=1.22.3", "1.22.3", true),
    ("=1.22.3", "1.22.4", false),
    ("1.22.3", "v1.22.3", true),
    ("1.22.3", "1.22.4", false),
    ("!=1.22.3", "1.22.3", false),
    ("!=1.22.3", "1.22.4", true),
    (">1.22.3", "1.22.4", true),
    (">1.22.3", "1.22.3", false),
    ("<1.22.3", "1.22.2", true),
    ("<1.22.3", "1.22.3", false),
    (">=1.22.3", "1.22.3", true),
    (">=1.22.3", "1.22.2", false),
    ("=>1.22.3", "1.22.3", true),
    ("=>1.22.3", "1.22.2", false),
    ("<=1.22.3", "1.22.3", true),
    ("<=1.22.3", "1.22.4", false),
    ("=<1.22.3", "1.22.3", true),
    ("=<1.22.3", "1.22.4", false),
    ("~1.22.3", "1.22.9", true),
    ("~1.22.3", "1.22.2", false),
    ("~1.22.3", "1.23.0", false),
    ("~>1.22.3", "1.22.9", true),
    ("~>1.22.3", "1.23.0", false),
    ("^1.22.3", "1.99.0", true),
    ("^1.22.3", "1.22.2", false),
    ("^1.22.3", "2.0.0", false),
    // Wildcards; with a wildcard major everything after it is ignored.
    ("1.22.x", "1.22.9", true),
    ("1.22.X", "1.22.0", true),
    ("1.22.*", "1.23.0", false),
    ("1.x", "1.99.1", true),
    ("1.x", "2.0.0", false),
    ("1.X.X", "1.0.0", true),
    ("*", "0.0.0", true),
    ("*", "99.1.2", true),
    ("x", "1.2.3", true),
    ("X", "1.2.3", true),
    ("x.22", "3.4.5", true),
    ("x.22", "1.21.0", true),
    ("*.*.*", "7.0.0", true),
    ("1.x.2", "1.5.0", true),
    ("1.x.2", "1.0.0", true),
    ("1.x.2", "2.0.0", false),
    ("v1.22.x", "1.22.4", true),
    (">x.22", "0.0.1", true),
    ("<=1.x.2", "1.9.0", true),
    ("<=1.x.2", "2.0.0", false),
    // Partial versions with each operator.
    ("=1.22", "1.22.5", true),
    ("=1.22", "1.23.0", false),
    ("1", "1.9.9", true),
    ("1", "2.0.0", false),
    ("1", "0.9.0", false),
    (">=1.22", "1.22.0", true),
    (">=1.22", "1.21.99", false),
    (">=1", "1.0.0", true),
    (">=1", "0.99.0", false),
    ("<1.25", "1.24.99", true),
    ("<1.25", "1.25.0", false),
    ("<1", "0.9.9", true),
    ("<1", "1.0.0", false),
    ("<=1.24", "1.24.99", true),
    ("<=1.24", "1.25.0", false),
    ("<=1", "1.99.0", true),
    ("<=1", "2.0.0", false),
    ("<=1.22", "0.99.0", true),
    (">1.22", "1.22.15", false),
    (">1.22", "1.23.0", true),
    (">1.22", "2.0.0", true),
    (">1.22.x", "1.22.99", false),
    (">1", "1.99.0", false),
    (">1", "2.0.0", true),
    ("!=1.23", "1.23.0", false),
    ("!=1.23", "1.23.9", false),
    ("!=1.23", "1.22.9", true),
    ("!=1.23", "1.24.0", true),
    ("!=1", "1.5.0", false),
    ("!=1", "2.0.0", true),
    // Tilde.
    ("~1.22", "1.22.0", true),
    ("~1.22", "1.22.99", true),
    ("~1.22", "1.23.0", false),
    ("~1.22", "1.21.9", false),
    ("~>1.22", "1.22.4", true),
    ("~1", "1.0.0", true),
    ("~1", "1.99.0", true),
    ("~1", "2.0.0", false),
    ("~0", "0.0.0", true),
    ("~0", "0.99.0", true),
    ("~0", "1.0.0", false),
    ("~0.0", "0.0.9", true),
    ("~0.0", "0.1.0", false),
    ("~0.0.0", "5.0.0", true),
    ("~*", "5.0.0", true),
    ("~x", "0.1.0", true),
    // Caret.
    ("^1.22", "1.22.0", true),
    ("^1.22", "1.99.0", true),
    ("^1.22", "2.0.0", false),
    ("^1.22", "1.21.0", false),
    ("^1", "1.5.0", true),
    ("^1", "2.0.0", false),
    ("^0.3", "0.3.0", true),
    ("^0.3", "0.3.9", true),
    ("^0.3", "0.4.0", false),
    ("^0.3.1", "0.3.0", false),
    ("^0.0.5", "0.0.5", true),
    ("^0.0.5", "0.0.6", false),
    ("^0.0.5", "0.0.4", false),
    ("^0.0.5", "0.1.5", false),
    ("^0.0", "0.0.0", true),
    ("^0.0", "0.0.9", true),
    ("^0.0", "0.1.0", false),
    ("^0", "0.0.0", true),
    ("^0", "0.9.9", true),
    ("^0", "1.0.0", false),
    ("^0.x", "0.5.0", true),
    ("^0.x", "1.0.0", false),
    ("^*", "0.0.0", true),
    ("^*", "0.0.1", false),
    ("^*", "1.0.0", false),
    ("^0.0.0", "0.0.0", true),
    ("^0.0.0", "0.0.1", false),
    // Metadata is ignored on both sides.
    ("1.22.15+k3s1", "v1.22.15+rke2r1", true),
    ("!=1.23.4", "v1.23.4+k3s1", false),
    (">1.22.15", "v1.22.15+k3s1", false),
    ("<1.22.15+zzz", "v1.22.15+aaa", false),
    ("=1.22.15", "1.22.15+anything", true),
    (">=1.22", "v1.22.17+k3s1", true),
    // Prereleases are decided per AND group.
    ("*", "1.25.0-rc.1", false),
    ("!=1.25.0", "1.25.0-rc.1", false),
    ("!=1.26.0", "1.25.0-rc.1", false),
    ("1.25.x", "1.25.0-rc.1", false),
    ("<1.26", "1.25.0-rc.1", false),
    ("<1.25.0", "1.25.0-rc.1", false),
    (">=1.22", "1.25.0-rc.1", false),
    (">=1.22 || >=1.25.0-0", "1.25.0-rc.1", true),
    (">=1.20.0-0", "1.25.0-rc.1", true),
    ("~1.25.0-0", "1.25.3-rc.1", true),
    (">=1.20.0-0, <1.26", "1.26.0-alpha.1", true),
    (">=1.20.0-0, <1.26.0-0", "1.26.0-alpha.1", false),
    (">=1.20.0-0 <1.26", "1.25.0-rc.1", true),
    ("<1.26, >=1.20.0-0", "1.25.0-rc.1", true),
    (">=1.20.0-0 || <1.26", "1.19.0-rc.1", false),
    ("!=1.25.0, >=0.0.0-0", "1.25.0-rc.1", true),
    ("*, >=0.0.0-0", "1.25.0-rc.1", true),
    ("*-0", "1.25.0-rc.1", true),
    ("1.25.x-0", "1.25.0-rc.1", true),
    ("1.25.x-0", "1.26.0-rc.1", false),
    (">=1.25.0-0", "1.25.0-0", true),
    // Odd corners of Go's operators with a wildcard major (the spec is silent; Go decides).
    ("<=*", "0.0.5", true),
    ("<=*", "0.1.0", false),
    ("<=x.22", "1.0.0", false),
    ("!=*", "0.0.0", false),
    ("!=*", "1.0.0", true),
    ("!=*", "0.0.1", true),
    (">*", "0.0.0", false),
    ("<*", "0.0.0", false),
    (">=*", "3.1.4", true),
    // Go's `!=` with a partial version compares prereleases once they are let in.
    ("!=1.2, >=0.0.0-0", "1.2.5-rc.1", true),
    ("!=1.2, >=0.0.0-0", "1.2.5", false),
    // Vendor Kubernetes versions: `-` is a prerelease, `+` is metadata.
    (">=1.20", "v1.22.17-eks-0a21954", false),
    (">=1.20.0-0", "v1.22.17-eks-0a21954", true),
    ("1.22.x", "v1.22.17-gke.100", false),
    (">=1.22.0-0 <1.23.0-0", "v1.22.17-gke.100", true),
    ("~1.22.0-0", "v1.22.10-aliyun.1", true),
    (">=1.22", "v1.22.10-aliyun.1", false),
    (">=1.20", "v1.22.17+k3s1", true),
    ("1.22.x", "v1.22.17+rke2r1", true),
    // Prerelease identifier ordering.
    (">1.25.0-alpha.9", "1.25.0-alpha.10", true),
    ("<1.25.0-alpha.10", "1.25.0-alpha.9", true),
    (">1.25.0-rc.1", "1.25.0-rc.1.1", true),
    ("<1.25.0-rc.1", "1.25.0-rc.1.1", false),
    (">1.25.0-1", "1.25.0-alpha", true),
    ("<1.25.0-alpha", "1.25.0-99", true),
    ("<1.25.0-alpha", "1.25.0-Beta", true),
    (">1.25.0-alpha", "1.25.0-beta", true),
    (">1.25.0-alpha.beta", "1.25.0-alpha.1", false),
    ("<1.25.0-alpha.beta", "1.25.0-alpha", true),
    (">=1.25.0-rc.1", "1.25.0", true),
    ("=1.25.0-rc.1", "1.25.0-rc.1+build.7", true),
    // Versions are coerced: leading zeros are fine.
    ("1.22.3", "v1.022.3", true),
    (">=1.22", "v01.22.0", true),
];

#[test]
fn match_table() {
    assert!(MATCHES.len() >= 130, "only {} cases", MATCHES.len());
    for &(c, v, want) in MATCHES {
        check(c, v, want);
    }
}

/// Invalid constraints with the byte offset the error must point at.
#[rustfmt::skip]
const INVALID_CONSTRAINTS: &[(&str, usize)] = &[
    ("", 0),
    ("   ", 0),
    ("1.22 -1.24", 5),
    ("1.22- 1.24", 5),
    ("1.22 -", 5),
    ("- 1.24", 0),
    ("1.22 - 1.24 - 1.26", 12),
    ("1.22 - 1.24 - ", 12),
    (">=1.22 - 1.24", 0),
    ("1.22 \u{b}- 1.24", 5),
    ("1.22 ||", 5),
    ("|| 1.22", 0),
    ("1.22 || || 1.24", 5),
    ("1.22 - 1.24 ||", 12),
    ("1.22 | 1.24", 5),
    ("1.22 ||| 1.24", 7),
    ("|", 0),
    ("> =1.22", 2),
    ("1.22 && 1.24", 5),
    (">=1.22; <1.25", 6),
    (">=1.22,,<1.25", 7),
    (">=1.22,", 6),
    ("1.22 ,", 5),
    (",1.22", 0),
    ("==1.22", 0),
    ("~=1.22", 0),
    ("<>1.22", 0),
    (">>1.22", 0),
    ("!1.22", 0),
    (">=", 2),
    ("1.22>=1.21", 4),
    ("1.2.3.4", 5),
    ("V1.22", 0),
    ("v", 1),
    ("x1", 0),
    ("1.x2", 2),
    ("1.22.3-", 7),
    ("1.22.3+", 7),
    ("1.22.3-beta..1", 12),
    ("1.22.3-beta.01", 12),
    ("18446744073709551616", 0),
    ("1.18446744073709551616", 2),
    ("1.22\u{a0}", 4),
];

#[test]
fn invalid_constraints() {
    for &(c, offset) in INVALID_CONSTRAINTS {
        let err = match Constraint::parse(c) {
            Ok(parsed) => panic!("constraint {c:?} should be invalid, parsed as {parsed:?}"),
            Err(err) => err,
        };
        assert_eq!(err.offset(), Some(offset), "offset for {c:?}: {err}");
        let message = err.to_string();
        let prefix = format!("invalid constraint \"{}\": ", c.escape_debug());
        let reason = message
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("message for {c:?} should start with {prefix:?}: {message}"));
        assert!(
            reason.starts_with(|ch: char| ch.is_ascii_lowercase()),
            "reason for {c:?} should start in lowercase: {message}"
        );
        assert!(!message.contains('\n'), "one line for {c:?}: {message}");
    }
}

#[test]
fn error_messages_say_what_was_expected() {
    let cases = [
        ("1.22 -1.24", "hyphen range needs spaces"),
        ("1.22 ||", "expected a constraint after \"||\""),
        ("|| 1.22", "expected a constraint before \"||\""),
        ("==1.22", "unknown operator \"==\""),
        (
            ">=1.22 - 1.24",
            "operator cannot be applied to a hyphen range",
        ),
        (">=1.22; <1.25", "separated by whitespace or \",\""),
        ("1.22 | 1.24", "alternatives are separated by \"||\""),
        ("1.22.3-beta.01", "leading zero"),
        (
            "18446744073709551616",
            "is larger than 18446744073709551615",
        ),
        ("", "empty string"),
    ];
    for (c, fragment) in cases {
        let message = Constraint::parse(c).map(|_| ()).unwrap_err().to_string();
        assert!(
            message.contains(fragment),
            "{c:?}: {message:?} lacks {fragment:?}"
        );
    }
}

#[rustfmt::skip]
const VALID_CONSTRAINTS: &[&str] = &[
    "*", "x", "X", "x.22", "1.x.2", "~ 1.22", "1.22-1.24", "v1.22", "=> 1.22", "=<1.22",
    "~>1.22", "1 - 2||3", "1,2 - 3", "  >=1.22  ", ">=1.22 <1.25", "1.22 - 1.24", "\t1.22\n",
    "1.2.3-beta.1+build.5", "1.x-0", "*-0", "1.22 || 1.23 || 1.24", "^0.0", "!=1.2.3",
    ">=1.22.0-0 <1.23.0-0", "1.22 - 1.24>=1.23",
    // Go ignores everything after a wildcard major or minor, even a lone `|`.
    "*.|", "1.x.|",
];

#[test]
fn valid_constraints_keep_their_text() {
    for &c in VALID_CONSTRAINTS {
        let parsed = Constraint::parse(c).unwrap_or_else(|e| panic!("{c:?} should parse: {e}"));
        assert_eq!(parsed.to_string(), c);
        let via_from_str: Constraint = c.parse().unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(via_from_str.to_string(), c);
    }
}

/// Invalid versions with the byte offset the error must point at.
#[rustfmt::skip]
const INVALID_VERSIONS: &[(&str, usize)] = &[
    ("", 0),
    ("v1.x.2", 3),
    ("1.22.15.1", 7),
    ("V1.22.15", 0),
    (" 1.22.15", 0),
    ("1.22.15 ", 7),
    ("1.22.15-", 8),
    ("1.22.15+", 8),
    ("1.22.15-rc_1", 10),
    ("v1.22.15+k3s..1", 13),
    ("latest", 0),
    ("18446744073709551616", 0),
    ("1.18446744073709551616.0", 2),
    ("1.22.15-rc.01", 11),
    ("1..2", 2),
    ("1.", 2),
    ("v", 1),
    ("-1.2", 0),
    ("1.2.3-+x", 6),
    ("1.2.3+a+b", 7),
    ("1.*", 2),
    ("1.2.3 || 1.2.4", 5),
];

#[test]
fn invalid_versions() {
    for &(v, offset) in INVALID_VERSIONS {
        let err = match Version::parse(v) {
            Ok(parsed) => panic!("version {v:?} should be invalid, parsed as {parsed}"),
            Err(err) => err,
        };
        assert_eq!(err.offset(), Some(offset), "offset for {v:?}: {err}");
        let message = err.to_string();
        let prefix = format!("invalid version \"{}\": ", v.escape_debug());
        assert!(message.starts_with(&prefix), "{v:?}: {message}");
    }
}

#[rustfmt::skip]
const VALID_VERSIONS: &[(&str, &str)] = &[
    ("1", "1.0.0"),
    ("1.22", "1.22.0"),
    ("v1.022.3", "1.22.3"),
    ("00.01.02", "0.1.2"),
    ("1.22.15-rc.1+meta", "1.22.15-rc.1+meta"),
    ("v1.22.17-eks-0a21954", "1.22.17-eks-0a21954"),
    ("v1.22.15+rke2r1", "1.22.15+rke2r1"),
    ("1.2.3+01", "1.2.3+01"),
    ("1.2.3-0", "1.2.3-0"),
    ("1.2.3-0a", "1.2.3-0a"),
    ("1.2.3--", "1.2.3--"),
    ("1.2.3-x-y.z", "1.2.3-x-y.z"),
    ("1.2.3-99999999999999999999", "1.2.3-99999999999999999999"),
    ("18446744073709551615", "18446744073709551615.0.0"),
];

#[test]
fn valid_versions_display_normalized() {
    for &(v, shown) in VALID_VERSIONS {
        let parsed = Version::parse(v).unwrap_or_else(|e| panic!("{v:?} should parse: {e}"));
        assert_eq!(parsed.to_string(), shown, "display of {v:?}");
        let via_from_str: Version = v.parse().unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(via_from_str.to_string(), shown);
    }
    let v = Version::parse("v1.22.17-eks-0a21954+build.1").unwrap();
    assert_eq!(
        (
            v.major(),
            v.minor(),
            v.patch(),
            v.prerelease(),
            v.metadata()
        ),
        (1, 22, 17, "eks-0a21954", "build.1")
    );
}

#[test]
fn versions_sort_by_precedence() {
    let sorted = [
        "1.0.0-1",
        "1.0.0-5",
        // Too large for u64, so Go compares it as text: after numbers, before letters.
        "1.0.0-99999999999999999999",
        "1.0.0-Z",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ];
    let versions: Vec<Version> = sorted.iter().map(|v| Version::parse(v).unwrap()).collect();
    for (i, a) in versions.iter().enumerate() {
        for (j, b) in versions.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
        }
    }
    let a = Version::parse("1.2.3+a").unwrap();
    let b = Version::parse("1.2.3+b").unwrap();
    assert_eq!(a, b, "metadata is ignored by Eq");
    assert_eq!(hash_of(&a), hash_of(&b));
}

fn hash_of(v: &Version) -> u64 {
    let mut hasher = DefaultHasher::new();
    v.hash(&mut hasher);
    hasher.finish()
}

#[test]
fn suffix_table_examples() {
    let cases: [(&str, Option<usize>); 8] = [
        ("1.2.3", Some(0)),
        ("1.2.3.4", Some(2)),
        ("a1", Some(1)),
        (">=1.22", Some(2)),
        ("x-", None),
        ("v1-a.b+c", Some(0)),
        ("1,2", Some(2)),
        ("", None),
    ];
    for (run, want) in cases {
        assert_eq!(first_version_suffix(run.as_bytes()), want, "{run:?}");
    }
}

#[test]
fn range_matches_examples() {
    let m = |whole: std::ops::Range<usize>, low: std::ops::Range<usize>, high| RangeMatch {
        whole,
        low,
        high,
    };
    assert_eq!(find_ranges(b"1 - 2"), vec![m(0..5, 0..1, 4..5)]);
    assert_eq!(find_ranges(b" 1 - 2 , 3"), vec![m(0..7, 1..2, 5..6)]);
    assert_eq!(find_ranges(b">=1 - 2"), vec![m(2..7, 2..3, 6..7)]);
    assert_eq!(find_ranges(b"1-2 - 3-4 - 5"), vec![m(0..10, 0..3, 6..9)]);
    assert!(find_ranges(b"1 -2").is_empty());
}

#[test]
fn rewrite_replaces_the_first_occurrence_like_go() {
    assert_eq!(rewritten("1.22 - 1.24"), ">= 1.22, <= 1.24 ");
    // The leading `\s*` belongs to the match, so the space before the range goes too.
    assert_eq!(rewritten("a 1 - 2 b"), "a>= 1, <= 2 b");
    // Go's strings.Replace hits the earlier " 2 - 3" created by the first rewrite.
    assert_eq!(rewritten("1 - 2 - 3, 2 - 3"), ">= 1, <=>= 2, <= 3 , 2 - 3");
    assert_eq!(
        reference::rewrite("1 - 2 - 3, 2 - 3"),
        ">= 1, <=>= 2, <= 3 , 2 - 3"
    );
}

mod reference {
    //! A naive backtracking matcher. Go's regexp picks the match a backtracking engine would
    //! (leftmost-first), so on short inputs this is a faithful, if slow, model of it.

    #[derive(Clone)]
    pub(super) enum Re {
        Class(fn(u8) -> bool),
        Lit(&'static str),
        Seq(Vec<Re>),
        Alt(Vec<Re>),
        Opt(Box<Re>),
        Star(Box<Re>),
        Cap(usize, Box<Re>),
    }

    pub(super) type Caps = [Option<(usize, usize)>; 5];

    type Next<'a> = &'a mut dyn FnMut(usize, &mut Caps) -> bool;

    fn run(re: &Re, s: &[u8], i: usize, caps: &mut Caps, next: Next<'_>) -> bool {
        match re {
            Re::Class(f) => s.get(i).is_some_and(|&b| f(b)) && next(i + 1, caps),
            Re::Lit(l) => {
                s.get(i..)
                    .is_some_and(|rest| rest.starts_with(l.as_bytes()))
                    && next(i + l.len(), caps)
            }
            Re::Seq(items) => run_seq(items, s, i, caps, next),
            Re::Alt(options) => options.iter().any(|r| run(r, s, i, caps, &mut *next)),
            Re::Opt(r) => {
                if run(r, s, i, caps, &mut *next) {
                    return true;
                }
                next(i, caps)
            }
            Re::Star(r) => run_star(r, s, i, caps, next),
            Re::Cap(n, r) => {
                let n = *n;
                run(r, s, i, caps, &mut |j, caps: &mut Caps| {
                    let saved = caps[n];
                    caps[n] = Some((i, j));
                    if next(j, caps) {
                        return true;
                    }
                    caps[n] = saved;
                    false
                })
            }
        }
    }

    fn run_seq(items: &[Re], s: &[u8], i: usize, caps: &mut Caps, next: Next<'_>) -> bool {
        match items.split_first() {
            None => next(i, caps),
            Some((first, rest)) => run(first, s, i, caps, &mut |j, caps: &mut Caps| {
                run_seq(rest, s, j, caps, &mut *next)
            }),
        }
    }

    fn run_star(r: &Re, s: &[u8], i: usize, caps: &mut Caps, next: Next<'_>) -> bool {
        if run(r, s, i, caps, &mut |j, caps: &mut Caps| {
            j > i && run_star(r, s, j, caps, &mut *next)
        }) {
            return true;
        }
        next(i, caps)
    }

    /// Anchored match of the whole input.
    pub(super) fn full(re: &Re, s: &[u8]) -> Option<Caps> {
        let mut caps = [None; 5];
        run(re, s, 0, &mut caps, &mut |j, _| j == s.len()).then_some(caps)
    }

    /// Go's `FindAllStringSubmatchIndex(s, -1)` for patterns that never match empty.
    pub(super) fn find_all(re: &Re, s: &[u8]) -> Vec<(usize, usize, Caps)> {
        let first_from = |pos: usize| {
            (pos..=s.len()).find_map(|start| {
                let mut caps = [None; 5];
                let mut end = start;
                run(re, s, start, &mut caps, &mut |j, _| {
                    end = j;
                    true
                })
                .then_some((start, end, caps))
            })
        };
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(found) = first_from(pos) {
            pos = found.1.max(found.0 + 1);
            out.push(found);
        }
        out
    }

    fn space(b: u8) -> bool {
        matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
    }
    fn wild(b: u8) -> bool {
        b.is_ascii_digit() || matches!(b, b'|' | b'x' | b'X' | b'*')
    }
    fn digit(b: u8) -> bool {
        b.is_ascii_digit()
    }
    fn ident(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'-'
    }

    fn seq(items: Vec<Re>) -> Re {
        Re::Seq(items)
    }
    fn lit(l: &'static str) -> Re {
        Re::Lit(l)
    }
    fn class(f: fn(u8) -> bool) -> Re {
        Re::Class(f)
    }
    fn maybe(r: Re) -> Re {
        Re::Opt(Box::new(r))
    }
    fn many(r: Re) -> Re {
        Re::Star(Box::new(r))
    }
    fn many1(r: Re) -> Re {
        seq(vec![r.clone(), many(r)])
    }
    fn cap(n: usize, r: Re) -> Re {
        Re::Cap(n, Box::new(r))
    }
    fn spaces() -> Re {
        many(class(space))
    }
    fn spaces1() -> Re {
        many1(class(space))
    }

    /// `[0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*`
    fn idents() -> Re {
        seq(vec![
            many1(class(ident)),
            many(seq(vec![lit("."), many1(class(ident))])),
        ])
    }

    /// Go's `cvRegex`.
    fn cv() -> Re {
        seq(vec![
            maybe(lit("v")),
            many1(class(wild)),
            maybe(seq(vec![lit("."), many1(class(wild))])),
            maybe(seq(vec![lit("."), many1(class(wild))])),
            maybe(seq(vec![lit("-"), idents()])),
            maybe(seq(vec![lit("+"), idents()])),
        ])
    }

    /// `=||!=|>|<|>=|=>|<=|=<|~|~>|\^`, alternatives in Go's order.
    fn ops() -> Re {
        let all = [
            "=", "", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^",
        ];
        Re::Alt(all.into_iter().map(lit).collect())
    }

    /// `constraintRangeRegex`: `\s*(CV)\s+-\s+(CV)\s*`.
    pub(super) fn range_re() -> Re {
        seq(vec![
            spaces(),
            cap(1, cv()),
            spaces1(),
            lit("-"),
            spaces1(),
            cap(2, cv()),
            spaces(),
        ])
    }

    /// `validConstraintRegex` without its anchors (`full` anchors).
    pub(super) fn valid_re() -> Re {
        seq(vec![
            seq(vec![spaces(), ops(), spaces(), cv(), spaces()]),
            many(seq(vec![
                Re::Alt(vec![spaces1(), seq(vec![lit(","), spaces()])]),
                ops(),
                spaces(),
                cv(),
                spaces(),
            ])),
        ])
    }

    /// `findConstraintRegex`: `(OPS)\s*(CV)`.
    pub(super) fn find_re() -> Re {
        seq(vec![cap(1, ops()), spaces(), cap(2, cv())])
    }

    /// `constraintRegex` without its anchors: `\s*(OPS)\s*(CV)\s*`.
    pub(super) fn constraint_re() -> Re {
        seq(vec![
            spaces(),
            cap(1, ops()),
            spaces(),
            cap(2, cv()),
            spaces(),
        ])
    }

    /// `looseSemVerRegex` without its anchors, capturing the numbers and the prerelease.
    pub(super) fn loose_version_re() -> Re {
        seq(vec![
            maybe(lit("v")),
            cap(1, many1(class(digit))),
            maybe(seq(vec![lit("."), cap(2, many1(class(digit)))])),
            maybe(seq(vec![lit("."), cap(3, many1(class(digit)))])),
            maybe(seq(vec![lit("-"), cap(4, idents())])),
            maybe(seq(vec![lit("+"), idents()])),
        ])
    }

    fn text(s: &str, cap: Option<(usize, usize)>) -> Option<&str> {
        cap.and_then(|(a, b)| s.get(a..b))
    }

    /// Go's `rewriteRange`.
    pub(super) fn rewrite(c: &str) -> String {
        let mut rewritten = c.to_owned();
        for (start, end, caps) in find_all(&range_re(), c.as_bytes()) {
            let (Some(whole), Some(low), Some(high)) =
                (c.get(start..end), text(c, caps[1]), text(c, caps[2]))
            else {
                continue;
            };
            rewritten = rewritten.replacen(whole, &format!(">= {low}, <= {high} "), 1);
        }
        rewritten
    }

    /// `NewConstraint` up to (not including) `NewVersion`: each group's (operator, version).
    pub(super) fn new_constraint(c: &str) -> Option<Vec<Vec<(String, String)>>> {
        rewrite(c)
            .split("||")
            .map(|branch| {
                full(&valid_re(), branch.as_bytes())?;
                find_all(&find_re(), branch.as_bytes())
                    .into_iter()
                    .map(|(a, b, _)| {
                        let item = branch.get(a..b)?;
                        let caps = full(&constraint_re(), item.as_bytes())?;
                        Some((
                            text(item, caps[1])?.to_owned(),
                            text(item, caps[2])?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .collect()
    }

    /// `NewVersion` in coerce mode: (major, minor, patch, prerelease).
    pub(super) fn new_version(v: &str) -> Option<(u64, u64, u64, String)> {
        let caps = full(&loose_version_re(), v.as_bytes())?;
        let number = |i: usize| match text(v, caps[i]) {
            None => Some(0),
            Some(digits) => digits.parse::<u64>().ok(),
        };
        let pre = text(v, caps[4]).unwrap_or_default();
        let leading_zero = pre.split('.').any(|id| {
            id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit())
        });
        if leading_zero {
            return None;
        }
        Some((number(1)?, number(2)?, number(3)?, pre.to_owned()))
    }

    pub(super) fn cv_full(s: &[u8]) -> bool {
        full(&cv(), s).is_some()
    }
}

/// Short strings built from constraint-ish pieces, so ranges and odd mixes are frequent.
fn constraint_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "1", "2", "1.2", "1.2.3", "0", "01", "x", "X", "*", "v", "v1", ".", "-", "-0", "-rc.1",
        "+m", "+b.1", " ", "  ", "\t", " - ", "|", "||", ",", ", ", ">", "<", "=", ">=", "<=",
        "=>", "=<", "~", "~>", "^", "!=", "a", "V", "\u{e9}", "\u{b}", ";",
    ]);
    let chars = prop::sample::select(b"12.0xX*|-+ ,\t>=<~^!va".to_vec());
    prop_oneof![
        prop::collection::vec(pieces, 0..8).prop_map(|parts| parts.concat()),
        prop::collection::vec(chars, 0..14)
            .prop_map(|bytes| bytes.into_iter().map(char::from).collect()),
    ]
}

fn version_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "1",
        "2",
        "0",
        "00",
        "01",
        "18446744073709551615",
        "18446744073709551616",
        "v",
        "V",
        ".",
        "-",
        "+",
        "a",
        "rc",
        "x",
        "--",
        "_",
        " ",
    ]);
    prop::collection::vec(pieces, 0..9).prop_map(|parts| parts.concat())
}

fn group_items(c: &Constraint) -> Vec<Vec<(String, String)>> {
    c.groups()
        .iter()
        .map(|g| {
            g.items
                .iter()
                .map(|i| (i.op_text.clone(), i.orig.clone()))
                .collect()
        })
        .collect()
}

fn sample_versions() -> Vec<Version> {
    [
        "0.0.0",
        "0.0.1",
        "0.1.0",
        "1.0.0",
        "1.2.3",
        "1.2.3-rc.1",
        "1.22.17-eks-1",
        "2.0.0+m",
    ]
    .iter()
    .filter_map(|v| Version::parse(v).ok())
    .collect()
}

/// Many cases for the cheap differential tests; no regression files are written next to the
/// sources (failures print the minimal input instead).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn ranges_agree_with_go_regex(s in constraint_like()) {
        let expected: Vec<RangeMatch> = reference::find_all(&reference::range_re(), s.as_bytes())
            .into_iter()
            .filter_map(|(start, end, caps)| {
                let (low, high) = (caps[1]?, caps[2]?);
                Some(RangeMatch { whole: start..end, low: low.0..low.1, high: high.0..high.1 })
            })
            .collect();
        prop_assert_eq!(find_ranges(s.as_bytes()), expected, "{:?}", s);
        prop_assert_eq!(rewritten(&s), reference::rewrite(&s), "{:?}", s);
    }

    #[test]
    fn parsing_agrees_with_go_regexes(s in constraint_like()) {
        let mine = Constraint::parse(&s);
        match reference::new_constraint(&s) {
            None => prop_assert!(mine.is_err(), "{:?} should be invalid", s),
            Some(groups) => {
                let versions_ok = groups.iter().flatten().all(|(op, v)| build_item(op, v).is_ok());
                prop_assert_eq!(mine.is_ok(), versions_ok, "{:?}: {:?}", s, mine);
                if let Ok(parsed) = mine {
                    prop_assert_eq!(group_items(&parsed), groups, "{:?}", s);
                }
            }
        }
    }

    #[test]
    fn versions_agree_with_go_regex(s in version_like()) {
        let mine = Version::parse(&s)
            .map(|v| (v.major(), v.minor(), v.patch(), v.prerelease().to_owned()));
        prop_assert_eq!(mine.ok(), reference::new_version(&s), "{:?}", s);
    }

    #[test]
    fn suffix_table_agrees_with_scanner(s in constraint_like()) {
        let bytes = s.as_bytes();
        let by_scanner = (0..bytes.len())
            .find(|&q| scan_parts(bytes.get(q..).unwrap_or_default(), Numbers::Wildcards).is_ok());
        let by_regex = (0..bytes.len())
            .find(|&q| reference::cv_full(bytes.get(q..).unwrap_or_default()));
        prop_assert_eq!(first_version_suffix(bytes), by_scanner, "{:?}", s);
        prop_assert_eq!(by_scanner, by_regex, "{:?}", s);
    }
}

#[rustfmt::skip]
const MUTATION_BASES: &[&str] = &[
    ">= 1.22, < 1.25 || 1.26 - 1.27", "1.22.0-0 - 1.24", "~1.25.0-0", "^0.0.x", "*-0",
    "v1.2.3-rc.1+build.5 || !=1.2", "1.22-1.24", ">=1.20.0-0, <1.26.0-0", "1 - 2||3",
];

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        let _ = Version::parse(&s);
        if let Ok(c) = Constraint::parse(&s) {
            for v in sample_versions() {
                let _ = c.matches(&v);
            }
        }
    }

    #[test]
    fn mutated_constraints_never_panic(
        base in prop::sample::select(MUTATION_BASES.to_vec()),
        edits in prop::collection::vec((any::<usize>(), any::<char>(), 0u8..3), 0..6),
    ) {
        let mut chars: Vec<char> = base.chars().collect();
        for (at, c, kind) in edits {
            let at = at % (chars.len() + 1);
            match kind {
                0 => chars.insert(at, c),
                1 if at < chars.len() => { chars.remove(at); }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        let text: String = chars.into_iter().collect();
        match Constraint::parse(&text) {
            Ok(c) => {
                prop_assert_eq!(c.to_string(), text.as_str());
                for v in sample_versions() {
                    let _ = c.matches(&v);
                }
            }
            Err(e) => {
                prop_assert!(e.offset().is_some_and(|o| o <= text.len()), "{:?}: {}", text, e);
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
        if let Ok(v) = Version::parse(&text) {
            prop_assert_eq!(Version::parse(&v.to_string()).ok(), Some(v));
        }
    }
}

fn version_text() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec![
        "0",
        "1",
        "2",
        "10",
        "alpha",
        "beta",
        "rc",
        "a-b",
        "Z",
        "99999999999999999999",
    ]);
    (
        0u64..3,
        0u64..3,
        0u64..3,
        prop::option::of(prop::collection::vec(id, 1..4)),
        prop::option::of(prop::sample::select(vec!["build", "k3s1", "001"])),
        any::<bool>(),
    )
        .prop_map(|(major, minor, patch, pre, meta, v)| {
            let mut text = format!("{}{major}.{minor}.{patch}", if v { "v" } else { "" });
            if let Some(pre) = pre {
                text = format!("{text}-{}", pre.join("."));
            }
            if let Some(meta) = meta {
                text = format!("{text}+{meta}");
            }
            text
        })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn ordering_is_total_and_round_trips(
        a in version_text(),
        b in version_text(),
        c in version_text(),
    ) {
        let [a, b, c] = [a, b, c].map(|v| Version::parse(&v).unwrap());
        for v in [&a, &b, &c] {
            let again = Version::parse(&v.to_string()).unwrap();
            prop_assert_eq!(again.cmp(v), Ordering::Equal);
            prop_assert_eq!(again.to_string(), v.to_string());
            prop_assert_eq!(again.metadata(), v.metadata());
        }
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        if a == b {
            prop_assert_eq!(hash_of(&a), hash_of(&b));
        }
        if a <= b && b <= c {
            prop_assert!(a <= c, "{} <= {} <= {}", a, b, c);
        }
        let mut sorted = [a.clone(), b.clone(), c.clone()];
        sorted.sort();
        prop_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    }
}
