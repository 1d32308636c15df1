//! Versions as parsed by `NewVersion` of Masterminds/semver v3.4 (its default "coerce" mode),
//! plus the scanner for the version grammar that constraints reuse.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::str::FromStr;

use super::{Error, Fault, Subject, describe_at};

/// A semantic version: `X.Y.Z[-prerelease][+metadata]`.
///
/// Parsing follows Go's coerce mode: an optional lowercase `v`, one to three numbers (missing
/// ones are 0, leading zeros are allowed), then an optional prerelease and metadata.
///
/// Ordering is semver precedence. Build metadata takes no part in it, and so that `Ord` stays
/// consistent with `Eq`, equality (and `Hash`) ignore metadata too: `1.2.3+a == 1.2.3+b`.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
}

impl Version {
    /// Parses a version such as `v1.22.17-eks-0a21954` or `1.22`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_version(text).map_err(|fault| Error::new(Subject::Version, text, fault))
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The prerelease without its leading `-`; empty when there is none.
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The build metadata without its leading `+`; empty when there is none.
    pub fn metadata(&self) -> &str {
        &self.metadata
    }
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A release sorts after all of its prereleases.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    // Metadata is left out because `Eq` ignores it; equal prereleases are equal strings.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.major, self.minor, self.patch, &self.pre).hash(state);
    }
}

/// Go's `comparePrerelease`: dot-separated ids compared pairwise, a missing id counts as "".
///
/// The `!=` operator also calls this with one side empty, so "" must behave as Go's does.
pub(super) fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => match compare_identifier(l.unwrap_or(""), r.unwrap_or("")) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
    }
}

/// Go's `comparePrePart`: numeric ids (those that fit in a u64) sort below alphanumeric ones.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    match (parse_u64(a), parse_u64(b)) {
        (None, None) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        // The string tie-break never decides for valid versions (no leading zeros); it only
        // keeps the order total.
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`: ASCII digits only, `None` when empty or too large.
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Parses a version; errors carry byte offsets into `text`.
pub(super) fn parse_version(text: &str) -> Result<Version, Fault> {
    if text.is_empty() {
        return Err(Fault::new(0, "expected a version, found an empty string"));
    }
    let parts = scan_parts(text.as_bytes(), Numbers::Digits).map_err(|e| e.fault(text, 0))?;
    let number = |range: Option<&Range<usize>>| match range {
        None => Ok(0),
        Some(range) => {
            let digits = piece(text, range);
            parse_u64(digits).ok_or_else(|| {
                Fault::new(
                    range.start,
                    format!("number {digits} is larger than {}", u64::MAX),
                )
            })
        }
    };
    let version = Version {
        major: number(Some(&parts.major))?,
        minor: number(parts.minor.as_ref())?,
        patch: number(parts.patch.as_ref())?,
        pre: parts.pre.as_ref().map_or("", |r| piece(text, r)).to_owned(),
        metadata: parts
            .meta
            .as_ref()
            .map_or("", |r| piece(text, r))
            .to_owned(),
    };
    if let Some(range) = &parts.pre {
        check_numeric_ids(text, range)?;
    }
    Ok(version)
}

/// Semver forbids leading zeros in numeric prerelease ids; Go enforces it even when coercing.
fn check_numeric_ids(text: &str, range: &Range<usize>) -> Result<(), Fault> {
    let mut start = range.start;
    for id in piece(text, range).split('.') {
        if id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Fault::new(
                start,
                format!("numeric prerelease identifier \"{id}\" has a leading zero"),
            ));
        }
        start += id.len() + 1;
    }
    Ok(())
}

/// The substring for a range the scanner produced (always on ASCII boundaries).
pub(super) fn piece<'a>(text: &'a str, range: &Range<usize>) -> &'a str {
    text.get(range.clone()).unwrap_or_default()
}

/// Go's `\s`: note that it does not include the vertical tab.
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// Go's `[0-9|x|X|\*]`: the `|` inside the class is a literal, which is why a lone `|`
/// passes the constraint syntax check and only fails later.
pub(super) fn is_wild_number(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'|' | b'x' | b'X' | b'*')
}

/// `[0-9A-Za-z-]`: prerelease and metadata identifier characters.
pub(super) fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// How many bytes from `from` on satisfy `pred`.
pub(super) fn count_while(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| pred(b)).count())
}

/// Which characters make up the numeric parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Numbers {
    /// `[0-9]+`, as in `NewVersion`.
    Digits,
    /// `[0-9|xX*]+`, as in a constraint's version.
    Wildcards,
}

impl Numbers {
    fn accepts(self, b: u8) -> bool {
        match self {
            Self::Digits => b.is_ascii_digit(),
            Self::Wildcards => is_wild_number(b),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Digits => "a number",
            Self::Wildcards => "a number, \"x\" or \"*\"",
        }
    }
}

/// Where the pieces of `v?N(.N)?(.N)?(-pre)?(+meta)?` are; ranges exclude the punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parts {
    pub(super) major: Range<usize>,
    pub(super) minor: Option<Range<usize>>,
    pub(super) patch: Option<Range<usize>>,
    pub(super) pre: Option<Range<usize>>,
    pub(super) meta: Option<Range<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ScanError {
    pub(super) at: usize,
    kind: ScanErrorKind,
    numbers: Numbers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanErrorKind {
    /// A number is missing; the byte before it (`v` or `.`), if any.
    Number(Option<u8>),
    TooManyParts,
    /// An identifier is missing after this byte (`-`, `+` or `.`).
    Identifier(u8),
    Unexpected,
}

impl ScanError {
    /// Turns the error into a message. The scanned bytes started at `base` in `text`, which is
    /// used for the "found" part and for the returned offset.
    pub(super) fn fault(self, text: &str, base: usize) -> Fault {
        let at = base + self.at;
        let found = describe_at(text, at);
        let reason = match self.kind {
            ScanErrorKind::Number(None) => {
                format!("expected {}, found {found}", self.numbers.expected())
            }
            ScanErrorKind::Number(Some(before)) => format!(
                "expected {} after \"{}\", found {found}",
                self.numbers.expected(),
                char::from(before)
            ),
            ScanErrorKind::TooManyParts => {
                format!("a version has at most 3 numbers, found {found} after the third")
            }
            ScanErrorKind::Identifier(b'-') => {
                format!(
                    "expected a prerelease identifier ([0-9A-Za-z-]) after \"-\", found {found}"
                )
            }
            ScanErrorKind::Identifier(b'+') => {
                format!("expected a metadata identifier ([0-9A-Za-z-]) after \"+\", found {found}")
            }
            ScanErrorKind::Identifier(_) => {
                format!("expected an identifier ([0-9A-Za-z-]) after \".\", found {found}")
            }
            ScanErrorKind::Unexpected => format!("unexpected {found}"),
        };
        Fault::new(at, reason)
    }
}

/// Matches all of `bytes` against `v?N(\.N)?(\.N)?(-I(\.I)*)?(\+I(\.I)*)?`.
///
/// The grammar is deterministic (no character can both continue a piece and start the next
/// one), so a single greedy pass accepts exactly what the anchored Go regex accepts.
pub(super) fn scan_parts(bytes: &[u8], numbers: Numbers) -> Result<Parts, ScanError> {
    let fail = |at, kind| ScanError { at, kind, numbers };
    let has_v = bytes.first() == Some(&b'v');
    let mut at = usize::from(has_v);
    let len = count_while(bytes, at, |b| numbers.accepts(b));
    if len == 0 {
        return Err(fail(at, ScanErrorKind::Number(has_v.then_some(b'v'))));
    }
    let major = at..at + len;
    at += len;
    let mut more = [None, None];
    for slot in &mut more {
        if bytes.get(at) != Some(&b'.') {
            break;
        }
        let len = count_while(bytes, at + 1, |b| numbers.accepts(b));
        if len == 0 {
            return Err(fail(at + 1, ScanErrorKind::Number(Some(b'.'))));
        }
        *slot = Some(at + 1..at + 1 + len);
        at += 1 + len;
    }
    let [minor, patch] = more;
    if patch.is_some() && bytes.get(at) == Some(&b'.') {
        return Err(fail(at, ScanErrorKind::TooManyParts));
    }
    let pre = scan_identifiers(bytes, &mut at, b'-').map_err(|e| fail(e.0, e.1))?;
    let meta = scan_identifiers(bytes, &mut at, b'+').map_err(|e| fail(e.0, e.1))?;
    if at < bytes.len() {
        return Err(fail(at, ScanErrorKind::Unexpected));
    }
    Ok(Parts {
        major,
        minor,
        patch,
        pre,
        meta,
    })
}

/// Scans `lead I(\.I)*` at `*at` if `lead` is there, advancing `*at` past it.
fn scan_identifiers(
    bytes: &[u8],
    at: &mut usize,
    lead: u8,
) -> Result<Option<Range<usize>>, (usize, ScanErrorKind)> {
    if bytes.get(*at) != Some(&lead) {
        return Ok(None);
    }
    let start = *at + 1;
    let mut end = start;
    let mut before = lead;
    loop {
        let len = count_while(bytes, end, is_ident);
        if len == 0 {
            return Err((end, ScanErrorKind::Identifier(before)));
        }
        end += len;
        if bytes.get(end) != Some(&b'.') {
            break;
        }
        end += 1;
        before = b'.';
    }
    *at = end;
    Ok(Some(start..end))
}
