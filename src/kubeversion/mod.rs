//! `KUBEVERSION` constraints: the constraint language of the Go library Masterminds/semver v3.4.
//!
//! Image authors test their constraints against the Go library, so this module reproduces it
//! exactly, odd corners included:
//!
//! - `A - B` (spaces required on both sides of `-`) is rewritten to `>= A, <= B` before anything
//!   else; `1.22-1.24` is the single version `1.22` with prerelease `1.24`.
//! - `||` separates alternatives (OR groups); inside a group, items are separated by whitespace
//!   or one comma.
//! - Partial versions are ranges: `1.22` ≡ `1.22.x`, `>1.22` needs 1.23+, `<=1.24` ≡ `<1.25.0`.
//! - A prerelease version only matches a group in which some item carries a prerelease
//!   (`>=1.20.0-0`), and then ordinary semver ordering applies.
//!
//! No regular-expression engine is used: small hand-written scanners accept exactly the
//! strings the Go regexes accept.
//!
//! ```
//! use sealer::kubeversion::{Constraint, Version};
//!
//! let constraint = Constraint::parse(">= 1.22, < 1.25 || 1.26 - 1.27").unwrap();
//! assert!(constraint.matches(&Version::parse("v1.24.3").unwrap()));
//! assert!(constraint.matches(&Version::parse("v1.27.9+k3s1").unwrap()));
//! assert!(!constraint.matches(&Version::parse("v1.25.0").unwrap()));
//! // Vendor versions with `-` are prereleases and need a `-0` somewhere in the group.
//! assert!(!constraint.matches(&Version::parse("v1.24.3-eks-0a21954").unwrap()));
//!
//! let err = Constraint::parse("1.22 -1.24").unwrap_err();
//! assert_eq!(err.offset(), Some(5));
//! ```

use std::fmt;

mod constraint;
mod version;

#[cfg(test)]
mod tests;

pub use constraint::Constraint;
pub use version::Version;

/// Why a constraint or a version could not be parsed.
///
/// `Display` gives one line: `invalid constraint "<input>": <what was expected>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    subject: Subject,
    input: String,
    offset: Option<usize>,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Constraint,
    Version,
}

impl Error {
    fn new(subject: Subject, input: &str, fault: Fault) -> Self {
        Self {
            subject,
            input: input.to_owned(),
            offset: Some(fault.at),
            reason: fault.reason,
        }
    }

    /// Byte offset in the parsed text where the problem was found, when known.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match self.subject {
            Subject::Constraint => "constraint",
            Subject::Version => "version",
        };
        // escape_debug keeps the message on one line even when the input has newlines.
        write!(
            f,
            "invalid {subject} \"{}\": {}",
            self.input.escape_debug(),
            self.reason
        )
    }
}

impl std::error::Error for Error {}

/// A parse problem before it is attached to the text the caller passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    at: usize,
    reason: String,
}

impl Fault {
    fn new(at: usize, reason: impl Into<String>) -> Self {
        Self {
            at,
            reason: reason.into(),
        }
    }
}

/// Names the character at `at` for messages such as `expected ..., found "x"`.
fn describe_at(text: &str, at: usize) -> String {
    match text.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("\"{}\"", c.escape_debug()),
        None => "the end of the text".to_owned(),
    }
}
