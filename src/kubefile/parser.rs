//! Logical lines → instructions, and the rules about where instructions may appear.

use super::ast::{AppKind, Instruction, Node, Pair, Pos, Word};
use super::lexer::{self, JsonArray, Lexed, LogicalLine};
use crate::diag::{Diagnostic, Error, Location};
use std::path::{Path, PathBuf};

/// A parsed Kubefile: its instructions in order, and its text for error messages.
#[derive(Debug)]
pub struct Kubefile {
    pub path: PathBuf,
    pub nodes: Vec<Node>,
    lexed: Lexed,
}

impl Kubefile {
    /// A location in this file, quoting the source line.
    pub fn location(&self, pos: Pos) -> Location {
        self.lexed.location(&self.path, pos)
    }

    /// An error at `pos`.
    pub fn error_at(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message).at(self.location(pos))
    }
}

const KNOWN: &str = "FROM, ARG, LABEL, KUBEVERSION, COPY, APP, CNI, CSI, APPCMDS, APPENV, ENV, \
                     LAUNCH, CMDS, CMD, MAINTAINER";

/// The instructions of [`KNOWN`], for "did you mean" on a misspelt one.
const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "ARG",
    "LABEL",
    "KUBEVERSION",
    "COPY",
    "APP",
    "CNI",
    "CSI",
    "APPCMDS",
    "APPENV",
    "ENV",
    "LAUNCH",
    "CMDS",
    "CMD",
    "MAINTAINER",
];

/// Parses a Kubefile. All syntax errors of the file are reported together.
pub fn parse(path: &Path, source: &str) -> Result<Kubefile, Error> {
    let lexed = lexer::lex(path, source).map_err(Error::many)?;
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    let escape = lexed.escape;
    let mut broken_from = false;
    for line in &lexed.lines {
        match parse_line(line, escape) {
            Ok(node) => nodes.push(node),
            Err((pos, diag)) => {
                let word = line.text.split_whitespace().next().unwrap_or("");
                broken_from |= word.eq_ignore_ascii_case("FROM");
                errors.push(diag.at(lexed.location(path, pos)));
            }
        }
    }
    let file = Kubefile {
        path: path.to_path_buf(),
        nodes,
        lexed,
    };
    check_structure(&file, broken_from, &mut errors);
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(Error::many(errors))
    }
}

type LineError = (Pos, Diagnostic);

fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, LineError> {
    Err((pos, Diagnostic::error(message)))
}

fn fail_hint<T>(pos: Pos, message: impl Into<String>, hint: &str) -> Result<T, LineError> {
    Err((pos, Diagnostic::error(message).hint(hint)))
}

fn parse_line(line: &LogicalLine, escape: char) -> Result<Node, LineError> {
    let text = &line.text;
    let word_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let pos = line.pos_at(0);
    let word = &text[..word_end];
    let keyword = word.to_ascii_uppercase();
    let rest_start = skip_ws(text, word_end);

    // Leading `--flag[=value]` words.
    let mut flags: Vec<Word> = Vec::new();
    let mut args_start = rest_start;
    while text[args_start..].starts_with("--") {
        let end = text[args_start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| args_start + i);
        flags.push(Word {
            text: text[args_start..end].to_string(),
            pos: line.pos_at(args_start),
        });
        args_start = skip_ws(text, end);
    }
    let args = &text[args_start..];
    let args_pos = line.pos_at(args_start);

    let mut platform = None;
    for flag in flags {
        let (name, value) = flag.text.split_once('=').unwrap_or((&flag.text, ""));
        if keyword == "FROM" && name == "--platform" && !value.is_empty() {
            platform = Some(Word {
                text: value.to_string(),
                pos: flag.pos,
            });
        } else if keyword == "FROM" && name == "--platform" {
            return fail_hint(
                flag.pos,
                "FROM --platform needs a value",
                "write FROM --platform=linux/amd64 IMAGE",
            );
        } else {
            return fail(flag.pos, format!("{keyword} does not take the flag {name}"));
        }
    }

    let instruction = match keyword.as_str() {
        "FROM" => {
            let words = lexer::split_plain(line, args_start);
            match words.as_slice() {
                [image] => Instruction::From {
                    image: image.clone(),
                    platform,
                },
                [] => {
                    return fail_hint(
                        pos,
                        "FROM needs an image",
                        "write FROM scratch or FROM NAME:TAG",
                    );
                }
                [_, extra, ..] if extra.text.eq_ignore_ascii_case("as") => {
                    return fail(
                        extra.pos,
                        "multi-stage builds (FROM ... AS) are not supported",
                    );
                }
                [_, extra, ..] => return fail(extra.pos, "FROM takes exactly one image"),
            }
        }
        "ARG" => parse_arg(line, args_start, escape)?,
        "LABEL" => Instruction::Label(parse_pairs(line, args_start, escape, "LABEL")?),
        "ENV" => Instruction::Env(parse_pairs(line, args_start, escape, "ENV")?),
        "KUBEVERSION" => {
            let constraint = args.trim_end();
            if constraint.is_empty() {
                return fail_hint(
                    pos,
                    "KUBEVERSION needs a constraint",
                    "for example: KUBEVERSION >=1.22, <1.27",
                );
            }
            Instruction::KubeVersion(Word {
                text: constraint.to_string(),
                pos: args_pos,
            })
        }
        "COPY" => {
            let mut words = list_words(line, args_start, "COPY")?;
            if words.len() < 2 {
                return fail_hint(
                    pos,
                    "COPY needs a source and a destination",
                    "COPY SRC... DEST",
                );
            }
            let dest = words.pop().unwrap_or_else(|| unreachable_word(pos));
            Instruction::Copy {
                sources: words,
                dest,
            }
        }
        "APP" | "CNI" | "CSI" => {
            let kind = match keyword.as_str() {
                "CNI" => AppKind::Cni,
                "CSI" => AppKind::Csi,
                _ => AppKind::App,
            };
            let mut words = list_words(line, args_start, &keyword)?.into_iter();
            let Some(name) = words.next() else {
                return fail_hint(
                    pos,
                    format!("{keyword} needs an app name"),
                    &format!("{keyword} NAME local://PATH..."),
                );
            };
            // `${ARG}` in the name is checked once substituted, at build (kubefile.md, ARG).
            if !name.text.contains('$') {
                check_app_name(&name)?;
            }
            Instruction::App {
                kind,
                name,
                sources: words.collect(),
            }
        }
        "APPCMDS" => {
            let (name, rest_at) = first_word(line, args_start);
            let Some(name) = name else {
                return fail_hint(
                    pos,
                    "APPCMDS needs an app name",
                    "APPCMDS NAME [\"cmd\", \"args\"]",
                );
            };
            check_app_name(&name)?;
            let parts = require_json(line, rest_at, "APPCMDS", "APPCMDS NAME [\"cmd\", \"args\"]")?;
            if parts.iter().all(|p| p.trim().is_empty()) {
                return fail(line.pos_at(rest_at), "APPCMDS needs a command");
            }
            Instruction::AppCmds { name, parts }
        }
        "APPENV" => {
            let (name, rest_at) = first_word(line, args_start);
            let Some(name) = name else {
                return fail_hint(pos, "APPENV needs an app name", "APPENV NAME KEY=VALUE...");
            };
            check_app_name(&name)?;
            let pairs = parse_pairs(line, rest_at, escape, "APPENV")?;
            Instruction::AppEnv { name, pairs }
        }
        "LAUNCH" => {
            let words = list_words(line, args_start, "LAUNCH")?;
            let names = words
                .into_iter()
                .map(|w| Word {
                    text: w.text.trim().to_string(),
                    pos: w.pos,
                })
                .filter(|w| !w.text.is_empty())
                .collect();
            Instruction::Launch(names)
        }
        "CMDS" => Instruction::Cmds(require_json(
            line,
            args_start,
            "CMDS",
            "CMDS [\"kubectl apply -f a.yaml\", \"bash b.sh\"]: one string per command",
        )?),
        "CMD" => {
            let cmd = match lexer::json_array(args) {
                JsonArray::Strings(parts) => parts.join(" "),
                JsonArray::Invalid(why) => {
                    return fail(args_pos, format!("CMD: invalid JSON array: {why}"));
                }
                JsonArray::NotJson => args.trim_end().to_string(),
            };
            if cmd.trim().is_empty() {
                return fail(pos, "CMD needs a command");
            }
            Instruction::Cmd(cmd)
        }
        "MAINTAINER" => {
            let text = args.trim_end();
            if text.is_empty() {
                return fail(pos, "MAINTAINER needs a name");
            }
            Instruction::Maintainer(text.to_string())
        }
        "RUN" => {
            return fail(
                pos,
                "RUN is not supported: prepare files in the build context and COPY them",
            );
        }
        "ADD" => {
            return fail_hint(
                pos,
                "ADD is not supported",
                "use COPY for files of the build context, or APP NAME https://URL to download",
            );
        }
        "WORKDIR" | "ENTRYPOINT" | "EXPOSE" | "VOLUME" | "USER" | "ONBUILD" | "STOPSIGNAL"
        | "HEALTHCHECK" | "SHELL" => {
            return fail_hint(
                pos,
                format!("{keyword} is not supported in a Kubefile"),
                &format!("a Kubefile knows {KNOWN}"),
            );
        }
        _ => {
            let mut diagnostic = Diagnostic::error(format!("unknown instruction {word}"));
            if let Some(near) = crate::clusterfile::suggest::closest(&keyword, INSTRUCTIONS) {
                diagnostic = diagnostic.hint(format!("did you mean {near}?"));
            }
            return Err((pos, diagnostic.hint(format!("a Kubefile knows {KNOWN}"))));
        }
    };
    Ok(Node { pos, instruction })
}

/// Never happens (callers check lengths); keeps the parser free of panics anyway.
fn unreachable_word(pos: Pos) -> Word {
    Word {
        text: String::new(),
        pos,
    }
}

fn skip_ws(text: &str, from: usize) -> usize {
    text[from..]
        .find(|c: char| !c.is_whitespace())
        .map_or(text.len(), |i| from + i)
}

/// The first whitespace-delimited word at `start`, and the offset after it.
fn first_word(line: &LogicalLine, start: usize) -> (Option<Word>, usize) {
    let text = &line.text;
    let start = skip_ws(text, start);
    if start >= text.len() {
        return (None, start);
    }
    let end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| start + i);
    let word = Word {
        text: text[start..end].to_string(),
        pos: line.pos_at(start),
    };
    (Some(word), skip_ws(text, end))
}

/// The JSON-array form or the whitespace-separated form of a list.
fn list_words(line: &LogicalLine, start: usize, keyword: &str) -> Result<Vec<Word>, LineError> {
    let pos = line.pos_at(start);
    match lexer::json_array(&line.text[start..]) {
        JsonArray::Strings(items) => {
            // Point each element at its own string literal (the array holds only strings,
            // so the literals and the elements correspond one to one).
            let offsets = lexer::json_string_offsets(&line.text[start..]);
            let aligned = offsets.len() == items.len();
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, text)| {
                    let at = offsets.get(i).filter(|_| aligned);
                    let pos = at.map_or(pos, |o| line.pos_at(start + o));
                    Word { text, pos }
                })
                .collect())
        }
        JsonArray::Invalid(why) => fail(pos, format!("{keyword}: invalid JSON array: {why}")),
        JsonArray::NotJson => Ok(lexer::split_plain(line, start)),
    }
}

fn require_json(
    line: &LogicalLine,
    start: usize,
    keyword: &str,
    hint: &str,
) -> Result<Vec<String>, LineError> {
    let pos = line.pos_at(start);
    match lexer::json_array(&line.text[start..]) {
        JsonArray::Strings(items) => Ok(items),
        JsonArray::Invalid(why) => {
            fail_hint(pos, format!("{keyword}: invalid JSON array: {why}"), hint)
        }
        JsonArray::NotJson => fail_hint(
            pos,
            format!("{keyword} needs a JSON array of strings"),
            hint,
        ),
    }
}

/// Letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn is_valid_app_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub const APP_NAME_HINT: &str =
    "app names are letters, digits, '-', '_' and '.', starting with a letter or digit";

fn check_app_name(name: &Word) -> Result<(), LineError> {
    if is_valid_app_name(&name.text) {
        Ok(())
    } else {
        fail_hint(
            name.pos,
            format!("invalid app name {:?}", name.text),
            APP_NAME_HINT,
        )
    }
}

fn parse_arg(line: &LogicalLine, start: usize, escape: char) -> Result<Instruction, LineError> {
    let words = lexer::split_quoted(line, start, escape)
        .map_err(|pos| (pos, Diagnostic::error("unterminated quote")))?;
    let [word] = words.as_slice() else {
        return match words.get(1) {
            Some(extra) => fail_hint(extra.pos, "ARG declares one name", "write one ARG per line"),
            None => fail_hint(line.pos_at(0), "ARG needs a name", "ARG NAME[=default]"),
        };
    };
    let (name, default) = match word.text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (word.text.as_str(), None),
    };
    if !is_identifier(name) {
        return fail(word.pos, format!("invalid ARG name {name:?}"));
    }
    Ok(Instruction::Arg {
        name: Word {
            text: name.to_string(),
            pos: word.pos,
        },
        default: default.map(|text| Word {
            text: text.to_string(),
            pos: Pos {
                line: word.pos.line,
                column: word.pos.column + name.chars().count() + 1,
            },
        }),
    })
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `k=v k2="v 2"` pairs, or the legacy `k v...` single pair.
fn parse_pairs(
    line: &LogicalLine,
    start: usize,
    escape: char,
    keyword: &str,
) -> Result<Vec<Pair>, LineError> {
    let words = lexer::split_quoted(line, start, escape)
        .map_err(|pos| (pos, Diagnostic::error("unterminated quote")))?;
    let Some(first) = words.first() else {
        return fail_hint(
            line.pos_at(0),
            format!("{keyword} needs KEY=VALUE"),
            &format!("{keyword} key=value key2=\"value 2\""),
        );
    };
    let legacy = !first.text.contains('=') && keyword != "APPENV";
    if legacy {
        let Some(second) = words.get(1) else {
            return fail_hint(
                first.pos,
                format!("{keyword} needs KEY=VALUE"),
                &format!("{keyword} key=value"),
            );
        };
        let value: Vec<&str> = words[1..].iter().map(|w| w.text.as_str()).collect();
        return Ok(vec![Pair {
            key: first.clone(),
            value: Word {
                text: value.join(" "),
                pos: second.pos,
            },
        }]);
    }
    let mut pairs = Vec::with_capacity(words.len());
    for word in words {
        let Some((key, value)) = word.text.split_once('=') else {
            return fail_hint(
                word.pos,
                format!("{keyword}: expected KEY=VALUE, found {:?}", word.text),
                "quote values that contain spaces: key=\"a b\"",
            );
        };
        if key.is_empty() {
            return fail(word.pos, format!("{keyword}: empty key"));
        }
        pairs.push(Pair {
            key: Word {
                text: key.to_string(),
                pos: word.pos,
            },
            value: Word {
                text: value.to_string(),
                pos: Pos {
                    line: word.pos.line,
                    column: word.pos.column + key.chars().count() + 1,
                },
            },
        });
    }
    Ok(pairs)
}

/// FROM first (after ARGs) and once; LAUNCH / CMDS at most once and last; they exclude each other.
/// `broken_from`: a FROM line had a syntax error (already reported), so do not also say
/// that FROM is missing.
fn check_structure(file: &Kubefile, broken_from: bool, errors: &mut Vec<Diagnostic>) {
    let mut from_seen = broken_from;
    let mut early_reported = false;
    let mut launch_at: Option<Pos> = None;
    let mut cmds_at: Option<Pos> = None;
    let mut cmd_at: Option<Pos> = None;
    let count = file.nodes.len();
    for (index, node) in file.nodes.iter().enumerate() {
        let is_last = index + 1 == count;
        match &node.instruction {
            Instruction::From { .. } if from_seen => errors.push(
                file.error_at(node.pos, "a second FROM: a Kubefile has exactly one FROM")
                    .hint("multi-stage builds are not supported"),
            ),
            Instruction::From { .. } => from_seen = true,
            Instruction::Arg { .. } => {}
            other if !from_seen => {
                if early_reported {
                    continue;
                }
                early_reported = true;
                errors.push(
                    file.error_at(node.pos, format!("{} before FROM", other.keyword()))
                        .hint("FROM must be the first instruction (only ARG may precede it)"),
                );
            }
            Instruction::Launch(_) => {
                if let Some(first) = launch_at {
                    errors.push(
                        file.error_at(
                            node.pos,
                            format!("a second LAUNCH (the first is on line {})", first.line),
                        )
                        .hint("list every app in one LAUNCH: LAUNCH [\"a\", \"b\"]"),
                    );
                } else if let Some(cmds) = cmds_at.or(cmd_at) {
                    errors.push(
                        file.error_at(
                            node.pos,
                            format!(
                                "LAUNCH cannot be combined with CMDS/CMD (line {})",
                                cmds.line
                            ),
                        )
                        .hint("keep one: LAUNCH runs the image's apps, CMDS runs commands"),
                    );
                } else if !is_last {
                    errors.push(
                        file.error_at(node.pos, "LAUNCH must be the last instruction")
                            .hint("move LAUNCH to the end of the Kubefile"),
                    );
                }
                launch_at = launch_at.or(Some(node.pos));
            }
            Instruction::Cmds(_) => {
                if let Some(first) = cmds_at {
                    errors.push(
                        file.error_at(
                            node.pos,
                            format!("a second CMDS (the first is on line {})", first.line),
                        )
                        .hint("put every command in one CMDS: CMDS [\"a\", \"b\"]"),
                    );
                } else if let Some(launch) = launch_at {
                    errors.push(
                        file.error_at(
                            node.pos,
                            format!("CMDS cannot be combined with LAUNCH (line {})", launch.line),
                        )
                        .hint("keep one: LAUNCH runs the image's apps, CMDS runs commands"),
                    );
                } else if !is_last {
                    errors.push(
                        file.error_at(node.pos, "CMDS must be the last instruction")
                            .hint("move CMDS to the end of the Kubefile"),
                    );
                }
                cmds_at = cmds_at.or(Some(node.pos));
            }
            Instruction::Cmd(_) => {
                if let Some(launch) = launch_at {
                    errors.push(
                        file.error_at(
                            node.pos,
                            format!("CMD cannot be combined with LAUNCH (line {})", launch.line),
                        )
                        .hint("keep one: LAUNCH runs the image's apps, CMD runs commands"),
                    );
                }
                cmd_at = cmd_at.or(Some(node.pos));
            }
            _ => {}
        }
    }
    if !from_seen && !early_reported && !broken_from {
        errors.push(
            Diagnostic::error("no FROM instruction")
                .at(file.location(Pos { line: 1, column: 1 }))
                .hint("start the Kubefile with FROM scratch or FROM BASE_IMAGE"),
        );
    }
}
