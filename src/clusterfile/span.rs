//! Positions of user values in the Clusterfile, so that checks made later (some by code that
//! has the image metadata) can point at the value they reject.

use crate::diag::Location;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A 1-based line and a 1-based column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub fn new(line: usize, column: usize) -> Span {
        Span { line, column }
    }
}

/// A value and where it was written.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} @{}:{}",
            self.value, self.span.line, self.span.column
        )
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// The text of a file, kept to quote source lines in diagnostics.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Source {
    path: PathBuf,
    lines: Vec<String>,
}

impl Source {
    pub(crate) fn new(path: &Path, text: &str) -> Source {
        Source {
            path: path.to_path_buf(),
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// The text of a 1-based line.
    pub(crate) fn line(&self, line: usize) -> Option<&str> {
        self.lines.get(line.checked_sub(1)?).map(String::as_str)
    }

    /// A location quoting its line; positions past the end of the file are kept as given.
    pub(crate) fn location(&self, span: Span) -> Location {
        let line = span.line.max(1);
        let location = Location::new(&self.path, line, span.column.max(1));
        match self.lines.get(line - 1) {
            Some(text) => location.with_source_line(text.clone()),
            None => location,
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Source({}, {} lines)",
            self.path.display(),
            self.lines.len()
        )
    }
}
