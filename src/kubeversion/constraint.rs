//! Constraint parsing and matching, following `NewConstraint` and `Check` of
//! Masterminds/semver v3.4 step by step:
//!
//! 1. `rewriteRange`: every match of `\s*CV\s+-\s+CV\s*` (leftmost-first, non-overlapping) is
//!    replaced, one after the other, by `>= A, <= B `.
//! 2. The result is split on the literal `||`.
//! 3. Each branch must match `^\s*OP\s*CV\s*((\s+|,\s*)OP\s*CV\s*)*$`; its items are parsed
//!    and their versions go through `NewVersion`.
//!
//! Byte offsets are tracked through the rewrite so errors point into the caller's text.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::version::{
    Numbers, Parts, compare_prerelease, count_while, is_ident, is_space, is_wild_number,
    parse_version, piece, scan_parts,
};
use super::{Error, Fault, Subject, Version, describe_at};

/// A parsed `KUBEVERSION` constraint such as `>= 1.22, < 1.25 || 1.26 - 1.27`.
///
/// `Display` gives back the text exactly as it was given to [`Constraint::parse`].
#[derive(Debug, Clone)]
pub struct Constraint {
    text: String,
    groups: Vec<Group>,
}

/// One `||` alternative: all items must admit the version.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) items: Vec<Item>,
    /// Some item has a prerelease, which lets prerelease versions through every item.
    pub(super) include_pre: bool,
}

/// One comparison, e.g. `>=1.22`.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) op: Op,
    /// The operator and version as written (Go's `origfunc` and `orig`), for tests that
    /// compare the tokenization with a reference regex engine.
    #[cfg(test)]
    pub(super) op_text: String,
    #[cfg(test)]
    pub(super) orig: String,
    /// The version with wildcards and missing parts replaced by 0 (Go's `con`).
    pub(super) con: Version,
    pub(super) wild: Wild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `=` or no operator.
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    /// `>=` or `=>`.
    GreaterEqual,
    /// `<=` or `=<`.
    LessEqual,
    /// `~` or `~>`.
    Tilde,
    Caret,
}

impl Op {
    fn from_text(text: &str) -> Option<Self> {
        Some(match text {
            "" | "=" => Self::TildeOrEqual,
            "!=" => Self::NotEqual,
            ">" => Self::Greater,
            "<" => Self::Less,
            ">=" | "=>" => Self::GreaterEqual,
            "<=" | "=<" => Self::LessEqual,
            "~" | "~>" => Self::Tilde,
            "^" => Self::Caret,
            _ => return None,
        })
    }
}

/// The first wildcard or missing part of the constraint's version (Go's dirty flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wild {
    /// `1.2.3`: nothing is dirty.
    None,
    /// `1.2`, `1.2.x`: Go's `patchDirty`.
    Patch,
    /// `1`, `1.x`: Go's `minorDirty`.
    Minor,
    /// `*`, `x.2`: dirty, but Go sets neither `minorDirty` nor `patchDirty`.
    Major,
}

impl Constraint {
    /// Parses a constraint; errors name the input and carry the byte offset of the problem.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_groups(text)
            .map(|groups| Self {
                text: text.to_owned(),
                groups,
            })
            .map_err(|fault| Error::new(Subject::Constraint, text, fault))
    }

    /// Whether `version` satisfies some `||` alternative.
    pub fn matches(&self, version: &Version) -> bool {
        self.groups.iter().any(|group| {
            group
                .items
                .iter()
                .all(|item| item.admits(version, group.include_pre))
        })
    }

    #[cfg(test)]
    pub(super) fn groups(&self) -> &[Group] {
        &self.groups
    }
}

impl FromStr for Constraint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_groups(text: &str) -> Result<Vec<Group>, Fault> {
    if text.is_empty() {
        return Err(Fault::new(
            0,
            "expected a constraint, found an empty string",
        ));
    }
    let rewritten = rewrite_ranges(text);
    let branches = split_branches(&rewritten.text);
    let mut groups = Vec::with_capacity(branches.len());
    for (index, branch) in branches.iter().enumerate() {
        let blank = piece(&rewritten.text, branch).bytes().all(is_space);
        let group = if blank {
            Err(blank_branch_fault(index, &branches))
        } else {
            parse_group(&rewritten, branch.clone())
        };
        groups.push(group.map_err(|fault| Fault::new(rewritten.origin(fault.at), fault.reason))?);
    }
    Ok(groups)
}

/// Byte ranges of the text between `||` separators (Go's `strings.Split(c, "||")`).
fn split_branches(text: &str) -> Vec<Range<usize>> {
    let mut branches = Vec::new();
    let mut start = 0;
    for (at, sep) in text.match_indices("||") {
        branches.push(start..at);
        start = at + sep.len();
    }
    branches.push(start..text.len());
    branches
}

/// Explains an empty alternative, pointing at the `||` next to it.
fn blank_branch_fault(index: usize, branches: &[Range<usize>]) -> Fault {
    match (index, branches.get(index)) {
        (0, Some(branch)) if branches.len() > 1 => {
            Fault::new(branch.end, "expected a constraint before \"||\"")
        }
        (_, Some(branch)) if index > 0 => Fault::new(
            branch.start.saturating_sub(2),
            "expected a constraint after \"||\"",
        ),
        _ => Fault::new(0, "expected a constraint, found only whitespace"),
    }
}

/// An item as written: operator and version text with their offsets in the rewritten text.
struct RawItem<'a> {
    op: &'a str,
    version: &'a str,
    version_at: usize,
}

/// Checks one branch against the branch regex and parses its items.
///
/// An item is an operator (a run of `=!<>~^`), optional whitespace, then a version that runs
/// up to whitespace, `,` or the end; none of these characters can appear inside another
/// token, so this tokenization accepts exactly what the regex accepts.
fn parse_group(rewritten: &Mapped, branch: Range<usize>) -> Result<Group, Fault> {
    let text = rewritten.text.as_str();
    let bytes = text.as_bytes().get(..branch.end).unwrap_or_default();
    let mut at = branch.start + count_while(bytes, branch.start, is_space);
    let mut raw = Vec::new();
    loop {
        let item = scan_item(rewritten, bytes, &mut at)?;
        raw.push(item);
        let after_version = at;
        at += count_while(bytes, at, is_space);
        match bytes.get(at) {
            None => break,
            Some(b',') => {
                let comma = at;
                at += 1;
                at += count_while(bytes, at, is_space);
                if at >= bytes.len() {
                    return Err(Fault::new(comma, "expected a constraint after \",\""));
                }
            }
            // The version stopped at whitespace, so this starts the next item.
            Some(_) if at > after_version => {}
            Some(_) => return Err(unexpected(text, at)),
        }
    }
    // Go checks the whole branch before parsing any item's version; keep that error order.
    let items = raw
        .iter()
        .map(|item| {
            build_item(item.op, item.version)
                .map_err(|fault| Fault::new(item.version_at + fault.at, fault.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let include_pre = items.iter().any(|item| !item.con.prerelease().is_empty());
    Ok(Group { items, include_pre })
}

/// Scans `OP\s*CV` at `*at`, leaving `*at` just after the version.
fn scan_item<'a>(
    rewritten: &'a Mapped,
    bytes: &[u8],
    at: &mut usize,
) -> Result<RawItem<'a>, Fault> {
    let text = rewritten.text.as_str();
    let op_at = *at;
    *at += count_while(bytes, *at, is_op_char);
    let op = text.get(op_at..*at).unwrap_or_default();
    if Op::from_text(op).is_none() {
        // `>=1.22 - 1.24` becomes `>=>= 1.22, <= 1.24 `: name the cause, not the odd operator.
        let reason = if rewritten.is_spliced(op_at..*at) {
            "an operator cannot be applied to a hyphen range \"A - B\"".to_owned()
        } else {
            format!(
                "unknown operator \"{op}\", expected one of =, !=, >, <, >=, =>, <=, =<, ~, ~>, ^"
            )
        };
        return Err(Fault::new(op_at, reason));
    }
    *at += count_while(bytes, *at, is_space);
    let version_at = *at;
    *at += count_while(bytes, *at, |b| !is_space(b) && b != b',');
    let version = text.get(version_at..*at).unwrap_or_default();
    if let Err(error) = scan_parts(version.as_bytes(), Numbers::Wildcards) {
        return Err(version_fault(text, op, version, version_at, error.at)
            .unwrap_or_else(|| error.fault(text, version_at)));
    }
    Ok(RawItem {
        op,
        version,
        version_at,
    })
}

/// Messages for mistakes that are about the constraint syntax rather than the version.
fn version_fault(
    text: &str,
    op: &str,
    version: &str,
    version_at: usize,
    at: usize,
) -> Option<Fault> {
    let abs = version_at + at;
    let found = describe_at(text, abs);
    let bytes = version.as_bytes();
    if at == 0 {
        let reason = if op.is_empty() {
            format!("expected an operator or a version, found {found}")
        } else {
            format!("expected a version after \"{op}\", found {found}")
        };
        return Some(Fault::new(abs, with_range_hint(reason, bytes.first())));
    }
    if at == bytes.len() && bytes.last() == Some(&b'-') {
        let reason = format!("expected a prerelease identifier after \"-\", found {found}");
        return Some(Fault::new(abs, with_range_hint(reason, Some(&b'-'))));
    }
    match bytes.get(at) {
        Some(&b) if is_op_char(b) || b == b';' || b == b'&' => Some(Fault::new(
            abs,
            format!(
                "unexpected {found} after version \"{}\", constraints are separated by whitespace or \",\"",
                version.get(..at).unwrap_or_default()
            ),
        )),
        _ => None,
    }
}

fn with_range_hint(reason: String, culprit: Option<&u8>) -> String {
    if culprit == Some(&b'-') {
        format!("{reason} (a hyphen range needs spaces around \"-\": \"A - B\")")
    } else {
        reason
    }
}

fn unexpected(text: &str, at: usize) -> Fault {
    Fault::new(at, format!("unexpected {}", describe_at(text, at)))
}

fn is_op_char(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'<' | b'>' | b'~' | b'^')
}

fn is_x(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Go's `parseConstraint` for an item that passed the syntax check: finds the first wildcard
/// or missing part, builds the `con` version text from it and parses that with `NewVersion`.
/// Fault offsets are relative to `version`.
pub(super) fn build_item(op_text: &str, version: &str) -> Result<Item, Fault> {
    let op = Op::from_text(op_text).ok_or_else(|| Fault::new(0, "unknown operator"))?;
    let parts =
        scan_parts(version.as_bytes(), Numbers::Wildcards).map_err(|e| e.fault(version, 0))?;
    let text = |range: &Range<usize>| piece(version, range);
    let wild = if is_x(text(&parts.major)) {
        Wild::Major
    } else if parts.minor.as_ref().is_none_or(|r| is_x(text(r))) {
        Wild::Minor
    } else if parts.patch.as_ref().is_none_or(|r| is_x(text(r))) {
        Wild::Patch
    } else {
        Wild::None
    };
    let con_text = con_text(version, &parts, wild);
    let con = parse_version(&con_text.text).map_err(|fault| {
        let at = con_text.origin(fault.at);
        let hint = if version.as_bytes().get(at) == Some(&b'|') {
            ", alternatives are separated by \"||\""
        } else {
            ""
        };
        Fault::new(
            at,
            format!("invalid version \"{version}\": {}{hint}", fault.reason),
        )
    })?;
    Ok(Item {
        op,
        #[cfg(test)]
        op_text: op_text.to_owned(),
        #[cfg(test)]
        orig: version.to_owned(),
        con,
        wild,
    })
}

/// The text Go hands to `NewVersion`, mapped back to offsets in the constraint's version.
/// Wildcards and missing parts become 0, and so does everything after a wildcard major;
/// metadata is kept only when nothing is dirty (it never affects matching).
fn con_text(version: &str, parts: &Parts, wild: Wild) -> Mapped {
    // Ranges include their leading punctuation ("-pre", ".minor") as in Go's submatches.
    let dotted = |r: &Option<Range<usize>>| r.as_ref().map(|r| r.start.saturating_sub(1)..r.end);
    let mut out = Mapped::new(version.len());
    match wild {
        Wild::Major => out.push_lit("0.0.0", parts.major.start),
        Wild::Minor => {
            out.push_source(version, &parts.major);
            out.push_lit(".0.0", parts.major.end);
        }
        Wild::Patch => {
            out.push_source(version, &parts.major);
            if let Some(minor) = dotted(&parts.minor) {
                out.push_source(version, &minor);
                out.push_lit(".0", minor.end);
            }
        }
        Wild::None => {
            out.push_source(version, &(0..version.len()));
            return out;
        }
    }
    if let Some(pre) = dotted(&parts.pre) {
        out.push_source(version, &pre);
    }
    out
}

impl Item {
    /// Go's constraint functions. Every one of them first refuses a prerelease version unless
    /// the group lets prereleases in.
    fn admits(&self, v: &Version, include_pre: bool) -> bool {
        if !v.prerelease().is_empty() && !include_pre {
            return false;
        }
        match self.op {
            Op::TildeOrEqual if self.wild != Wild::None => self.tilde(v),
            Op::TildeOrEqual => *v == self.con,
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => *v < self.con,
            Op::GreaterEqual => *v >= self.con,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.wild != Wild::None {
            if c.major() != v.major() {
                return true;
            }
            if self.wild == Wild::Minor {
                return false;
            }
            if c.minor() != v.minor() {
                return true;
            }
            if self.wild == Wild::Patch {
                // Go compares prereleases here, so `!=1.2` admits 1.2.5-rc.1 when the group
                // lets prereleases in.
                return (!v.prerelease().is_empty() || !c.prerelease().is_empty())
                    && compare_prerelease(v.prerelease(), c.prerelease()).is_ne();
            }
            // A wildcard major (`!=*`) falls through to plain inequality with 0.0.0.
        }
        *v != *c
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.wild == Wild::None {
            return *v > *c;
        }
        if v.major() != c.major() {
            return v.major() > c.major();
        }
        match self.wild {
            // `>1` means above the whole 1.x range.
            Wild::Minor => false,
            // `>1.22` means above the whole 1.22.x range.
            Wild::Patch => v.minor() > c.minor(),
            // A wildcard major falls back to a plain comparison with 0.0.0.
            _ => *v > *c,
        }
    }

    fn less_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.wild == Wild::None {
            return *v <= *c;
        }
        // The whole partial range counts: `<=1.24` admits 1.24.9. With a wildcard major Go
        // still compares the minor against 0, so `<=*` only admits 0.0.z.
        !(v.major() > c.major()
            || (v.major() == c.major() && v.minor() > c.minor() && self.wild != Wild::Minor))
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if *v < *c {
            return false;
        }
        let zero = c.major() == 0 && c.minor() == 0 && c.patch() == 0;
        // `~0.0.0`, `~*` and `~x` admit anything (but `~0` and `~0.0` do not).
        if zero && matches!(self.wild, Wild::None | Wild::Major) {
            return true;
        }
        v.major() == c.major() && (v.minor() == c.minor() || self.wild == Wild::Minor)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if *v < *c {
            return false;
        }
        if c.major() > 0 || self.wild == Wild::Minor {
            return v.major() == c.major();
        }
        if v.major() > 0 {
            return false;
        }
        if c.minor() > 0 || self.wild == Wild::Patch {
            return v.minor() == c.minor();
        }
        // Major and minor are 0 and not wildcards: the patch must match, so `^*` (whose
        // wildcard major sets no dirty flag) admits only 0.0.0.
        v.minor() == 0 && v.patch() == c.patch()
    }
}

/// Text built from pieces of another text, remembering where each byte came from.
#[derive(Debug, Clone, Default)]
struct Mapped {
    text: String,
    /// `origin[i]` is the source offset of `text`'s byte `i`.
    origin: Vec<usize>,
    /// Source offset reported for positions at or past the end of `text`.
    end: usize,
}

impl Mapped {
    fn new(end: usize) -> Self {
        Self {
            end,
            ..Self::default()
        }
    }

    fn identity(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            origin: (0..text.len()).collect(),
            end: text.len(),
        }
    }

    fn origin(&self, at: usize) -> usize {
        self.origin.get(at).copied().unwrap_or(self.end)
    }

    /// Whether `text[range]` is not a plain copy of consecutive source bytes.
    fn is_spliced(&self, range: Range<usize>) -> bool {
        let origins = self.origin.get(range).unwrap_or_default();
        origins
            .windows(2)
            .any(|pair| matches!(pair, [a, b] if a.checked_add(1) != Some(*b)))
    }

    /// Appends `source[range]`, where `source` is the text offsets refer to.
    fn push_source(&mut self, source: &str, range: &Range<usize>) {
        let text = piece(source, range);
        self.text.push_str(text);
        self.origin.extend(range.start..range.start + text.len());
    }

    /// Appends text that does not come from the source, attributed to offset `at`.
    fn push_lit(&mut self, lit: &str, at: usize) {
        self.text.push_str(lit);
        self.origin.extend(std::iter::repeat_n(at, lit.len()));
    }

    /// Replaces `self.text[range]` with `with`, whose offsets already refer to the source.
    fn splice(&mut self, range: Range<usize>, with: Mapped) {
        let (Some(head), Some(tail)) = (self.text.get(..range.start), self.text.get(range.end..))
        else {
            return;
        };
        let text = format!("{head}{}{tail}", with.text);
        let mut origin = Vec::with_capacity(text.len());
        origin.extend_from_slice(self.origin.get(..range.start).unwrap_or_default());
        origin.extend(with.origin);
        origin.extend_from_slice(self.origin.get(range.end..).unwrap_or_default());
        self.text = text;
        self.origin = origin;
    }
}

/// One match of `\s*(CV)\s+-\s+(CV)\s*`: the whole match and the two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RangeMatch {
    pub(super) whole: Range<usize>,
    pub(super) low: Range<usize>,
    pub(super) high: Range<usize>,
}

/// The text after the hyphen-range rewrite, for tests.
#[cfg(test)]
pub(super) fn rewritten(text: &str) -> String {
    rewrite_ranges(text).text
}

/// Go's `rewriteRange`: each match, in order, replaces the first occurrence of its text in the
/// string rewritten so far (usually, but not always, the matched place itself).
fn rewrite_ranges(text: &str) -> Mapped {
    let mut out = Mapped::identity(text);
    for m in find_ranges(text.as_bytes()) {
        let whole = piece(text, &m.whole);
        let Some(at) = out.text.find(whole) else {
            continue;
        };
        let mut with = Mapped::default();
        with.push_lit(">= ", out.origin(at));
        with.push_source(text, &m.low);
        with.push_lit(", <= ", m.high.start);
        with.push_source(text, &m.high);
        with.push_lit(" ", m.high.end);
        out.splice(at..at + whole.len(), with);
    }
    out
}

/// All leftmost-first, non-overlapping matches of `\s*(CV)\s+-\s+(CV)\s*`.
pub(super) fn find_ranges(bytes: &[u8]) -> Vec<RangeMatch> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(m) = find_range(bytes, from) {
        from = m.whole.end;
        found.push(m);
    }
    found
}

/// The first range match starting at or after `from`.
///
/// The low version must be followed by whitespace and cannot contain any, so it always runs
/// to the end of a whitespace-free run; the part after the run does not depend on where in the
/// run the low version starts. So each run is examined once: check what follows it, then find
/// the earliest start in the run whose suffix is a whole version.
fn find_range(bytes: &[u8], from: usize) -> Option<RangeMatch> {
    let mut pos = from;
    while pos < bytes.len() {
        let run_start = pos + count_while(bytes, pos, is_space);
        let run_end = run_start + count_while(bytes, run_start, |b| !is_space(b));
        if run_start >= bytes.len() {
            return None;
        }
        if let Some((high, end)) = range_tail(bytes, run_end) {
            let run = bytes.get(run_start..run_end).unwrap_or_default();
            if let Some(offset) = first_version_suffix(run) {
                let low = run_start + offset;
                // A leading `\s*` only reaches the low version from before the run.
                let start = if offset == 0 { pos } else { low };
                return Some(RangeMatch {
                    whole: start..end,
                    low: low..run_end,
                    high,
                });
            }
        }
        pos = run_end;
    }
    None
}

/// Matches `\s+-\s+(CV)\s*` at `at`: the high version's range and the end of the match.
fn range_tail(bytes: &[u8], at: usize) -> Option<(Range<usize>, usize)> {
    let spaces = count_while(bytes, at, is_space);
    let dash = at + spaces;
    if spaces == 0 || bytes.get(dash) != Some(&b'-') {
        return None;
    }
    let spaces = count_while(bytes, dash + 1, is_space);
    if spaces == 0 {
        return None;
    }
    let high_start = dash + 1 + spaces;
    let high_end = greedy_version_end(bytes, high_start)?;
    Some((
        high_start..high_end,
        high_end + count_while(bytes, high_end, is_space),
    ))
}

/// Where the all-greedy path of the version regex ends when matching at `at`.
///
/// Nothing after the high version can fail, so Go's leftmost-first match takes every optional
/// part that can start and every repetition as long as possible.
fn greedy_version_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = at + usize::from(bytes.get(at) == Some(&b'v'));
    let len = count_while(bytes, end, is_wild_number);
    if len == 0 {
        return None;
    }
    end += len;
    for _ in 0..2 {
        let len = if bytes.get(end) == Some(&b'.') {
            count_while(bytes, end + 1, is_wild_number)
        } else {
            0
        };
        if len == 0 {
            break;
        }
        end += 1 + len;
    }
    end = greedy_identifiers_end(bytes, end, b'-');
    Some(greedy_identifiers_end(bytes, end, b'+'))
}

/// Greedy `(lead I+(\.I+)*)?` at `at`.
fn greedy_identifiers_end(bytes: &[u8], at: usize, lead: u8) -> usize {
    if bytes.get(at) != Some(&lead) {
        return at;
    }
    let mut end = at;
    let mut sep = lead;
    while bytes.get(end) == Some(&sep) {
        let len = count_while(bytes, end + 1, is_ident);
        if len == 0 {
            break;
        }
        end += 1 + len;
        sep = b'.';
    }
    end
}

/// The smallest `q` such that all of `run[q..]` is a constraint version, found in one
/// right-to-left pass: each table says whether the suffix from `q` belongs to a language.
pub(super) fn first_version_suffix(run: &[u8]) -> Option<usize> {
    let n = run.len();
    let at = |table: &[bool], i: usize| table.get(i).copied().unwrap_or(false);
    // I+(\.I+)*
    let mut idents = vec![false; n + 1];
    // I+(\.I+)*(\+I+(\.I+)*)?  (a prerelease, then maybe metadata)
    let mut pre_tail = vec![false; n + 1];
    // (-pre_tail | \+idents)?  (what may follow the numbers)
    let mut tail = vec![false; n + 1];
    // N+(\.N+){0,d} tail, for d = 0, 1, 2
    let mut numbers = [vec![false; n + 1], vec![false; n + 1], vec![false; n + 1]];
    if let Some(last) = tail.last_mut() {
        *last = true;
    }
    for q in (0..n).rev() {
        let b = run.get(q).copied().unwrap_or_default();
        let next = run.get(q + 1).copied();
        let ends = q + 1 == n;
        let dot_then = |table: &[bool]| next == Some(b'.') && at(table, q + 2);
        idents[q] = is_ident(b) && (ends || at(&idents, q + 1) || dot_then(&idents));
        pre_tail[q] = is_ident(b)
            && (ends
                || at(&pre_tail, q + 1)
                || dot_then(&pre_tail)
                || (next == Some(b'+') && at(&idents, q + 2)));
        tail[q] = (b == b'-' && at(&pre_tail, q + 1)) || (b == b'+' && at(&idents, q + 1));
        for d in 0..3 {
            let more_dots = d > 0 && dot_then(&numbers[d - 1]);
            let value =
                is_wild_number(b) && (at(&numbers[d], q + 1) || at(&tail, q + 1) || more_dots);
            numbers[d][q] = value;
        }
    }
    let [_, _, full] = &numbers;
    (0..n).find(|&q| at(full, q) || (run.get(q) == Some(&b'v') && at(full, q + 1)))
}
