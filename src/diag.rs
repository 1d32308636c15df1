//! Diagnostics: the one error type of the library, and its compiler-style rendering.
//!
//! Every failure is a list of [`Diagnostic`]s so that validators can report all problems of
//! a file at once. A located diagnostic renders as `PATH:LINE:COL: error: MESSAGE` followed by
//! the source line, a caret under the column and `hint:` lines; an unlocated one as
//! `error: MESSAGE`. Rendering is pure (returns a `String`): only the CLI prints.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Where a diagnostic points: a file, a 1-based line and column, and the text of that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    pub source_line: Option<String>,
}

impl Location {
    pub fn new(path: impl Into<PathBuf>, line: usize, column: usize) -> Self {
        Location {
            path: path.into(),
            line,
            column,
            source_line: None,
        }
    }

    pub fn with_source_line(mut self, text: impl Into<String>) -> Self {
        self.source_line = Some(text.into());
        self
    }
}

/// One problem, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Option<Location>,
    pub message: String,
    /// Context lines printed after the message (e.g. the tail of a failed command's output).
    pub notes: Vec<String>,
    pub hints: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location: None,
            message: message.into(),
            notes: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The first line alone: `PATH:LINE:COL: error: MESSAGE` or `error: MESSAGE`.
    pub fn headline(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(loc) => format!(
                "{}:{}:{}: {severity}: {}",
                loc.path.display(),
                loc.line,
                loc.column.max(1),
                self.message
            ),
            None => format!("{severity}: {}", self.message),
        }
    }

    /// The full rendering: headline, source line with caret, notes and hints.
    pub fn render(&self) -> String {
        let mut out = self.headline();
        out.push('\n');
        if let Some(Location {
            line,
            column,
            source_line: Some(text),
            ..
        }) = &self.location
        {
            let gutter = line.to_string();
            let pad = " ".repeat(gutter.len());
            let shown: String = text
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            out.push_str(&format!("{gutter} | {shown}\n"));
            let caret_at = column.max(&1) - 1;
            out.push_str(&format!("{pad} | {}^\n", " ".repeat(caret_at)));
        }
        for note in &self.notes {
            out.push_str(&format!("  {note}\n"));
        }
        for hint in &self.hints {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

/// The error of every fallible library function: one or more diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    diagnostics: Vec<Diagnostic>,
    kind: ErrorKind,
}

/// What kind of failure an error is, where a caller (a CI job) acts on it differently:
/// the CLI maps each to its own exit code (docs/plan.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorKind {
    #[default]
    Failed,
    /// A saved plan refused because what it was made from moved on (the state, the
    /// Clusterfile, the images): planning again is the remedy.
    StalePlan,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Diagnostic::error(message).into()
    }

    /// Several diagnostics at once; `diagnostics` must not be empty.
    pub fn many(diagnostics: Vec<Diagnostic>) -> Self {
        debug_assert!(!diagnostics.is_empty());
        Error {
            diagnostics,
            kind: ErrorKind::Failed,
        }
    }

    /// Marks the error as a stale saved plan.
    pub fn stale_plan(mut self) -> Self {
        self.kind = ErrorKind::StalePlan;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Adds a hint to the last diagnostic.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if let Some(last) = self.diagnostics.last_mut() {
            last.hints.push(hint.into());
        }
        self
    }

    /// Replaces every hint with `hints`, on the last diagnostic: when the caller knows the
    /// likelier cause (a mistyped name with a near one), the generic advice would mislead.
    pub fn replace_hints(mut self, hints: Vec<String>) -> Self {
        for d in &mut self.diagnostics {
            d.hints.clear();
        }
        if let Some(last) = self.diagnostics.last_mut() {
            last.hints = hints;
        }
        self
    }

    /// Every hint of every diagnostic, in order.
    pub fn hints(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .flat_map(|d| d.hints.iter().cloned())
            .collect()
    }

    /// Prefixes the message of every unlocated diagnostic with `context: `.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        for d in &mut self.diagnostics {
            if d.location.is_none() {
                d.message = format!("{context}: {}", d.message);
            }
        }
        self
    }

    pub fn render(&self) -> String {
        self.diagnostics.iter().map(Diagnostic::render).collect()
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error {
            diagnostics: vec![d],
            kind: ErrorKind::Failed,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for d in &self.diagnostics {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            f.write_str(&d.headline())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A message and the `hint:` lines it carries on lines of its own (a transport's errors do:
/// `sealer_providers` has no diagnostics), apart.
pub fn split_hints(text: &str) -> (String, Vec<String>) {
    let mut message = Vec::new();
    let mut hints = Vec::new();
    for line in text.lines() {
        match line.trim_start().strip_prefix("hint: ") {
            Some(hint) => hints.push(hint.to_string()),
            None => message.push(line),
        }
    }
    (message.join("\n"), hints)
}

impl Diagnostic {
    /// An error from a message that may carry `hint:` lines ([`split_hints`]).
    pub fn error_with_hints(text: &str) -> Diagnostic {
        let (message, hints) = split_hints(text);
        Diagnostic {
            hints,
            ..Diagnostic::error(message)
        }
    }
}

/// Wraps an I/O error with what was being done and to which path.
pub fn io_error(action: &str, path: &Path, err: std::io::Error) -> Error {
    Error::msg(format!("{action} {}: {}", path.display(), io_reason(&err)))
}

/// The reason of an I/O error without Rust's "(os error N)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    without_os_error(&err.to_string())
}

/// `text` without Rust's "(os error N)" suffix of an I/O error's words.
pub fn without_os_error(text: &str) -> String {
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// An error and its causes on one line: libraries such as reqwest say only "error sending
/// request" at the top and keep the reason (connection refused, ...) in the source chain.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Extension for turning `io::Result` into our `Result` with a path in the message.
pub trait IoContext<T> {
    fn with_path(self, action: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn with_path(self, action: &str, path: &Path) -> Result<T> {
        self.map_err(|e| io_error(action, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_error_renders_like_a_compiler() {
        let d = Diagnostic::error("RUN is not supported")
            .at(Location::new("Kubefile", 3, 1).with_source_line("RUN make"))
            .hint("prepare files in the build context and COPY them");
        assert_eq!(
            d.render(),
            "Kubefile:3:1: error: RUN is not supported\n3 | RUN make\n  | ^\nhint: prepare files in the build context and COPY them\n"
        );
    }

    #[test]
    fn unlocated_error_has_no_position() {
        let e = Error::msg("no such image").context("rmi foo");
        assert_eq!(e.to_string(), "error: rmi foo: no such image");
    }

    #[test]
    fn hint_lines_of_a_message_become_hints() {
        let d = Diagnostic::error_with_hints(
            "10.0.0.2: host key changed\nhint: remove its old key\nhint: or check",
        );
        assert_eq!(d.message, "10.0.0.2: host key changed");
        assert_eq!(d.hints, ["remove its old key", "or check"]);
        assert_eq!(
            split_hints("one line"),
            ("one line".to_string(), Vec::new())
        );
    }

    #[test]
    fn warnings_say_so() {
        let d = Diagnostic::warning("CMD is deprecated").at(Location::new("K", 2, 1));
        assert_eq!(d.headline(), "K:2:1: warning: CMD is deprecated");
    }
}
