//! Dockerfile lexing rules: BOM, parser directives, comments, line continuations, and the
//! word splitting the instructions need. Every word keeps where it came from so errors can
//! point at it.

use crate::diag::{Diagnostic, Location};
use std::path::Path;

/// A position in the Kubefile: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A word of an instruction with the position of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub pos: Pos,
}

/// One physical line that contributed to a logical line.
#[derive(Debug, Clone)]
struct Piece {
    /// Byte offset of this piece in the logical line's text.
    offset: usize,
    line: usize,
    /// Column (1-based, characters) in the physical line where the piece starts.
    column: usize,
}

/// An instruction line after continuations are joined.
#[derive(Debug, Clone)]
pub struct LogicalLine {
    pub text: String,
    pieces: Vec<Piece>,
}

impl LogicalLine {
    /// Maps a byte offset in `text` to the position in the file.
    pub fn pos_at(&self, offset: usize) -> Pos {
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.offset <= offset)
            .or(self.pieces.first());
        match piece {
            Some(p) => {
                let end = offset.min(self.text.len());
                let start = p.offset.min(end);
                let chars = self.text.get(start..end).map_or(0, |s| s.chars().count());
                Pos {
                    line: p.line,
                    column: p.column + chars,
                }
            }
            None => Pos { line: 1, column: 1 },
        }
    }
}

/// The result of lexing: logical lines plus the source to quote in errors.
#[derive(Debug)]
pub struct Lexed {
    pub lines: Vec<LogicalLine>,
    /// The line-continuation character (`\\` unless a directive changed it).
    pub escape: char,
    source_lines: Vec<String>,
}

impl Lexed {
    /// A location for a diagnostic, carrying the text of the physical line.
    pub fn location(&self, path: &Path, pos: Pos) -> Location {
        let loc = Location::new(path, pos.line, pos.column);
        match self.source_lines.get(pos.line.wrapping_sub(1)) {
            Some(text) => loc.with_source_line(text.clone()),
            None => loc,
        }
    }
}

/// Splits a Kubefile into logical lines.
pub fn lex(path: &Path, source: &str) -> Result<Lexed, Vec<Diagnostic>> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let physical: Vec<&str> = source
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let source_lines: Vec<String> = physical.iter().map(|l| l.to_string()).collect();
    let mut errors = Vec::new();
    let mut escape = '\\';
    let mut directives_open = true;
    let mut seen_escape = false;
    let mut lines: Vec<LogicalLine> = Vec::new();
    let mut current: Option<LogicalLine> = None;

    for (index, raw) in physical.iter().enumerate() {
        let line_no = index + 1;
        let trimmed = raw.trim_start_matches([' ', '\t']);
        let lead_chars = raw.chars().count() - trimmed.chars().count();

        if directives_open && current.is_none() {
            if let Some((name, value)) = parse_directive(trimmed) {
                if name.eq_ignore_ascii_case("escape") {
                    let location = Location::new(path, line_no, lead_chars + 1)
                        .with_source_line(raw.to_string());
                    if seen_escape {
                        errors.push(
                            Diagnostic::error("the escape directive may appear only once")
                                .at(location)
                                .hint("keep one `# escape=` line at the top of the Kubefile"),
                        );
                    } else if value == "\\" || value == "`" {
                        escape = value.chars().next().unwrap_or('\\');
                    } else {
                        errors.push(
                            Diagnostic::error(format!(
                                "invalid escape character {value:?} in the escape directive"
                            ))
                            .at(location)
                            .hint("use `# escape=\\` or ``# escape=` ``"),
                        );
                    }
                    seen_escape = true;
                }
                // Other directives (syntax=, check=) mean nothing here: like Docker, ignore them.
                continue;
            }
            directives_open = false;
        }

        let is_blank = trimmed.trim().is_empty();
        let is_comment = trimmed.starts_with('#');
        if is_blank || is_comment {
            // Inside a continuation Docker skips blank and comment lines; outside they are noise.
            continue;
        }

        let (body, continues) = strip_continuation(raw, escape);
        match current.as_mut() {
            None => {
                let start = raw.len() - trimmed.len();
                let text = body.get(start..).unwrap_or("").to_string();
                let mut line = LogicalLine {
                    text: String::new(),
                    pieces: Vec::new(),
                };
                line.pieces.push(Piece {
                    offset: 0,
                    line: line_no,
                    column: lead_chars + 1,
                });
                line.text.push_str(&text);
                current = Some(line);
            }
            Some(line) => {
                line.pieces.push(Piece {
                    offset: line.text.len(),
                    line: line_no,
                    column: 1,
                });
                line.text.push_str(body);
            }
        }
        if !continues && let Some(line) = current.take() {
            lines.push(line);
        }
    }
    if let Some(line) = current.take() {
        // A continuation at the end of the file simply ends the instruction, as in Docker.
        lines.push(line);
    }
    if errors.is_empty() {
        Ok(Lexed {
            lines,
            escape,
            source_lines,
        })
    } else {
        Err(errors)
    }
}

/// `# name=value` at the top of the file (Docker's directive syntax).
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let eq = rest.find('=')?;
    let name = rest[..eq].trim_end();
    let mut chars = name.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = rest[eq + 1..].trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Removes a trailing escape character (followed only by spaces/tabs); says whether it was there.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(body) => (body, true),
        None => (line, false),
    }
}

/// Splits on whitespace, no quote processing (Docker's rule for COPY, FROM and the bare forms).
pub fn split_plain(line: &LogicalLine, start: usize) -> Vec<Word> {
    let mut words = Vec::new();
    let text = &line.text;
    let mut word_start: Option<usize> = None;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < start) {
        if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                words.push(Word {
                    text: text[s..i].to_string(),
                    pos: line.pos_at(s),
                });
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(s) = word_start {
        words.push(Word {
            text: text[s..].to_string(),
            pos: line.pos_at(s),
        });
    }
    words
}

/// Splits on whitespace honouring quotes and the escape character, removing them
/// (Docker's word rules for LABEL, ENV and ARG).
pub fn split_quoted(line: &LogicalLine, start: usize, escape: char) -> Result<Vec<Word>, Pos> {
    let text = &line.text;
    let mut words = Vec::new();
    let mut current = String::new();
    let mut word_start: Option<usize> = None;
    let mut quote: Option<(char, usize)> = None;
    let mut chars = text
        .char_indices()
        .skip_while(|(i, _)| *i < start)
        .peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(('"', _)) if c == escape => {
                // Inside double quotes the escape only protects `"` and itself.
                match chars.peek() {
                    Some(&(_, n)) if n == '"' || n == escape => {
                        current.push(n);
                        chars.next();
                    }
                    _ => current.push(c),
                }
            }
            Some(_) => current.push(c),
            None if c.is_whitespace() => {
                if let Some(s) = word_start.take() {
                    words.push(Word {
                        text: std::mem::take(&mut current),
                        pos: line.pos_at(s),
                    });
                }
            }
            None => {
                if word_start.is_none() {
                    word_start = Some(i);
                }
                if c == '"' || c == '\'' {
                    quote = Some((c, i));
                } else if c == escape {
                    match chars.next() {
                        Some((_, n)) => current.push(n),
                        None => current.push(c),
                    }
                } else {
                    current.push(c);
                }
            }
        }
    }
    if let Some((_, at)) = quote {
        return Err(line.pos_at(at));
    }
    if let Some(s) = word_start {
        words.push(Word {
            text: current,
            pos: line.pos_at(s),
        });
    }
    Ok(words)
}

/// Parses `["a", "b"]` when `text` is a JSON array of strings.
pub enum JsonArray {
    /// The text does not look like a JSON array.
    NotJson,
    /// It looks like one (starts with `[`) but is not a valid array of strings.
    Invalid(String),
    Strings(Vec<String>),
}

/// Byte offsets (in `text`) of the first character inside each string literal of a JSON
/// array, so that errors can point at an element rather than at the `[`.
pub fn json_string_offsets(text: &str) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            offsets.push(i + 1);
        }
    }
    offsets
}

pub fn json_array(text: &str) -> JsonArray {
    let trimmed = text.trim();
    if !trimmed.starts_with('[') {
        return JsonArray::NotJson;
    }
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    other => {
                        return JsonArray::Invalid(format!(
                            "every element must be a string, found {other}"
                        ));
                    }
                }
            }
            JsonArray::Strings(out)
        }
        Ok(_) => JsonArray::Invalid("expected a JSON array".to_string()),
        Err(e) => JsonArray::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(src: &str) -> Vec<String> {
        lex(Path::new("K"), src)
            .unwrap()
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn continuation_joins_pieces_as_they_are() {
        assert_eq!(
            lines("APP a \\\n  local://x \\\n\n# c\nlocal://y\n"),
            vec!["APP a   local://x local://y"]
        );
    }

    #[test]
    fn bom_comments_and_indentation() {
        assert_eq!(
            lines("\u{feff}# hi\n   FROM scratch\n\t# x\nLABEL a # b\n"),
            vec!["FROM scratch", "LABEL a # b"]
        );
    }

    #[test]
    fn escape_directive_switches_continuation() {
        assert_eq!(
            lines("# escape=`\nFROM scratch\nCOPY a `\n  b\nCOPY c\\\n"),
            vec!["FROM scratch", "COPY a   b", "COPY c\\"]
        );
    }

    #[test]
    fn directive_after_a_comment_is_a_comment() {
        assert_eq!(lines("# hi\n# escape=`\nCOPY a `\n"), vec!["COPY a `"]);
    }

    #[test]
    fn positions_follow_continuations() {
        let lexed = lex(Path::new("K"), "  APP a \\\n   local://b\n").unwrap();
        let words = split_plain(&lexed.lines[0], 0);
        let pos: Vec<_> = words.iter().map(|w| (w.pos.line, w.pos.column)).collect();
        assert_eq!(pos, vec![(1, 3), (1, 7), (2, 4)]);
    }

    #[test]
    fn quoted_words() {
        let lexed = lex(Path::new("K"), r#"LABEL a="b c" 'd e'=f g\ h"#).unwrap();
        let words = split_quoted(&lexed.lines[0], 5, '\\').unwrap();
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, vec!["a=b c", "d e=f", "g h"]);
    }

    #[test]
    fn unterminated_quote_is_located() {
        let lexed = lex(Path::new("K"), "LABEL a=\"b").unwrap();
        let err = split_quoted(&lexed.lines[0], 5, '\\').unwrap_err();
        assert_eq!((err.line, err.column), (1, 9));
    }
}
