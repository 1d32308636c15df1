//! Resolution of a parsed Kubefile against build arguments: ARG scoping and substitution,
//! label and KUBEVERSION checks. The result, a [`Recipe`], says what to put in the image;
//! it is pure (no filesystem, no network).

use crate::diag::{Diagnostic, Error, Result};
use crate::kubefile::{AppKind, Instruction, Kubefile, Pos, Word, is_identifier};
use crate::kubeversion::Constraint;
use crate::limits::{EXPANDED_TOTAL_MAX, EXPANDED_VALUE_MAX, format_size};
use std::collections::{BTreeMap, BTreeSet};

pub const KUBE_VERSION_LABEL: &str = "app.alpha.sealer.io/supported-kube-version";
pub const CNI_LABEL_PREFIX: &str = "cluster.alpha.sealer.io/kube-cni";
pub const CSI_LABEL_PREFIX: &str = "cluster.alpha.sealer.io/kube-csi";

/// Reserved label keys an author may set (anything else under `sealer.io/` draws a warning).
const DOCUMENTED_LABELS: &[&str] = &[
    "cluster.alpha.sealer.io/cluster-runtime-type",
    "cluster.alpha.sealer.io/cluster-runtime-version",
    "cluster.alpha.sealer.io/container-runtime-type",
    "cluster.alpha.sealer.io/container-runtime-version",
    "cluster.alpha.sealer.io/image-policy",
    KUBE_VERSION_LABEL,
];

/// Where the base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Scratch,
    Image { name: Word, platform: Option<Word> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Copy {
        pos: Pos,
        sources: Vec<Word>,
        dest: Word,
    },
    App {
        pos: Pos,
        kind: AppKind,
        name: Word,
        sources: Vec<Word>,
    },
}

/// A Kubefile with its build arguments applied.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub from: From,
    pub from_pos: Pos,
    /// LABELs in order of appearance (a later key wins), including KUBEVERSION's label.
    pub labels: Vec<(Word, String)>,
    pub steps: Vec<Step>,
    /// APPCMDS per app: the parts joined into one command, and where it was written.
    pub app_cmds: BTreeMap<String, (String, Pos)>,
    pub app_env: BTreeMap<String, (BTreeMap<String, String>, Pos)>,
    pub env: BTreeMap<String, String>,
    pub launch: Option<(Pos, Vec<Word>)>,
    pub cmds: Vec<String>,
    pub maintainer: Option<String>,
    pub warnings: Vec<Diagnostic>,
}

/// Applies `build_args` (and the predefined `ARCH`) to the Kubefile.
pub fn resolve(
    file: &Kubefile,
    build_args: &BTreeMap<String, String>,
    arch: &str,
) -> Result<Recipe> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // ARGs before FROM are visible only to FROM; after FROM a fresh scope starts, where
    // `ARG NAME` without a default re-imports the pre-FROM value (Docker's rule).
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut scope: BTreeMap<String, String> = BTreeMap::from([("ARCH".into(), arch.into())]);
    global.insert("ARCH".into(), arch.into());
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut after_from = false;
    let mut expander = Expander::default();
    let mut recipe = Recipe {
        from: From::Scratch,
        from_pos: Pos { line: 1, column: 1 },
        labels: Vec::new(),
        steps: Vec::new(),
        app_cmds: BTreeMap::new(),
        app_env: BTreeMap::new(),
        env: BTreeMap::new(),
        launch: None,
        cmds: Vec::new(),
        maintainer: None,
        warnings: Vec::new(),
    };

    for node in &file.nodes {
        let vars = if after_from { &scope } else { &global };
        let mut sub = |w: &Word| Word {
            text: expander.expand(file, &w.text, w.pos, vars),
            pos: w.pos,
        };
        match &node.instruction {
            Instruction::Arg { name, default } => {
                declared.insert(name.text.clone());
                let value = build_args
                    .get(&name.text)
                    .cloned()
                    .or_else(|| default.as_ref().map(|d| sub(d).text))
                    .or_else(|| {
                        if after_from {
                            global.get(&name.text).cloned()
                        } else {
                            None
                        }
                    })
                    .unwrap_or_default();
                if after_from {
                    scope.insert(name.text.clone(), value);
                } else {
                    global.insert(name.text.clone(), value);
                }
            }
            Instruction::From { image, platform } => {
                after_from = true;
                recipe.from_pos = node.pos;
                let image = sub(image);
                recipe.from = if image.text.eq_ignore_ascii_case("scratch") {
                    From::Scratch
                } else {
                    From::Image {
                        name: image,
                        platform: platform.as_ref().map(sub),
                    }
                };
            }
            Instruction::Label(pairs) => {
                for pair in pairs {
                    let key = sub(&pair.key);
                    recipe.labels.push((key, sub(&pair.value).text));
                }
            }
            Instruction::KubeVersion(constraint) => {
                let constraint = sub(constraint);
                recipe.labels.push((
                    Word {
                        text: KUBE_VERSION_LABEL.into(),
                        pos: constraint.pos,
                    },
                    constraint.text,
                ));
            }
            Instruction::Copy { sources, dest } => recipe.steps.push(Step::Copy {
                pos: node.pos,
                sources: sources.iter().map(&mut sub).collect(),
                dest: sub(dest),
            }),
            Instruction::App {
                kind,
                name,
                sources,
            } => {
                let name = sub(name);
                if !crate::kubefile::is_valid_app_name(&name.text) {
                    errors.push(
                        file.error_at(name.pos, format!("invalid app name {:?}", name.text))
                            .hint(crate::kubefile::APP_NAME_HINT),
                    );
                }
                recipe.steps.push(Step::App {
                    pos: node.pos,
                    kind: *kind,
                    name,
                    sources: sources.iter().map(&mut sub).collect(),
                });
            }
            Instruction::AppCmds { name, parts } => {
                // Deploy-time shell commands: no substitution (spec: kubefile.md, ARG).
                recipe
                    .app_cmds
                    .insert(name.text.clone(), (parts.join(" "), node.pos));
            }
            Instruction::AppEnv { name, pairs } => {
                let entry = recipe
                    .app_env
                    .entry(name.text.clone())
                    .or_insert_with(|| (BTreeMap::new(), node.pos));
                for pair in pairs {
                    entry.0.insert(pair.key.text.clone(), sub(&pair.value).text);
                }
            }
            Instruction::Env(pairs) => {
                for pair in pairs {
                    if !is_identifier(&pair.key.text) {
                        errors.push(file.error_at(
                            pair.key.pos,
                            format!("invalid ENV name {:?}", pair.key.text),
                        ));
                    }
                    let value = sub(&pair.value).text;
                    recipe.env.insert(pair.key.text.clone(), value);
                }
            }
            Instruction::Launch(names) => {
                recipe.launch = Some((node.pos, names.iter().map(&mut sub).collect()));
            }
            Instruction::Cmds(cmds) => recipe.cmds.extend(cmds.iter().cloned()),
            Instruction::Cmd(cmd) => {
                warnings.push(
                    Diagnostic::warning("CMD is deprecated")
                        .at(file.location(node.pos))
                        .hint("use CMDS [\"command 1\", \"command 2\"]"),
                );
                recipe.cmds.push(cmd.clone());
            }
            Instruction::Maintainer(text) => {
                warnings.push(
                    Diagnostic::warning("MAINTAINER is deprecated")
                        .at(file.location(node.pos))
                        .hint("use LABEL org.opencontainers.image.authors=\"...\""),
                );
                recipe.maintainer = Some(text.clone());
            }
        }
        errors.append(&mut expander.errors);
    }

    for (key, value) in &recipe.labels {
        check_label(file, key, value, &mut errors, &mut warnings);
    }
    for name in build_args.keys() {
        if !declared.contains(name) {
            warnings.push(Diagnostic::warning(format!(
                "build argument {name} was not used (no ARG {name} in the Kubefile)"
            )));
        }
    }
    recipe.warnings = warnings;
    if errors.is_empty() {
        Ok(recipe)
    } else {
        Err(Error::many(errors))
    }
}

fn check_label(
    file: &Kubefile,
    key: &Word,
    value: &str,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    if key.text == KUBE_VERSION_LABEL {
        if value.trim().is_empty() {
            errors.push(
                file.error_at(key.pos, "KUBEVERSION needs a constraint")
                    .hint("for example: KUBEVERSION >=1.22, <1.27"),
            );
        } else if let Err(e) = Constraint::parse(value) {
            // The word of KUBEVERSION starts at the constraint, so the offset lands on the
            // problem; for a LABEL it lands near the key, which is still the right line.
            let offset = e.offset().unwrap_or(0);
            let chars = value.get(..offset).map_or(offset, |s| s.chars().count());
            let pos = Pos {
                line: key.pos.line,
                column: key.pos.column + chars,
            };
            errors.push(file.error_at(pos, e.to_string()).hint(
                "KUBEVERSION uses Masterminds/semver syntax, e.g. `>=1.22, <1.27` or `1.22 - 1.26`",
            ));
        }
        return;
    }
    let reserved = key.text.contains("sealer.io/");
    let documented = DOCUMENTED_LABELS.contains(&key.text.as_str())
        || key.text.starts_with(CNI_LABEL_PREFIX)
        || key.text.starts_with(CSI_LABEL_PREFIX);
    if reserved && !documented {
        warnings.push(
            Diagnostic::warning(format!(
                "label {} uses the reserved sealer.io/ prefix and has no documented meaning",
                key.text
            ))
            .at(file.location(key.pos)),
        );
    }
}

/// `${NAME}` substitution within budgets. Without them, a chain of ARGs that each double the
/// last (`ARG A1=${A0}${A0}` ... `A39`) asks for 2^39 bytes from forty short lines, and many
/// values under the limit of one add up (issue 12).
#[derive(Default)]
struct Expander {
    /// Bytes of every value expanded so far.
    total: usize,
    /// Values over a budget, located; taken by the caller as it goes.
    errors: Vec<Diagnostic>,
    /// The total budget ran out: its error is reported, and nothing more is expanded.
    exhausted: bool,
}

impl Expander {
    /// `text` with `vars` substituted, at most [`EXPANDED_VALUE_MAX`] bytes; over a budget,
    /// an error at `pos` and an empty value (so the values made of it stay small and the
    /// error is reported once).
    fn expand(
        &mut self,
        file: &Kubefile,
        text: &str,
        pos: Pos,
        vars: &BTreeMap<String, String>,
    ) -> String {
        if !text.contains('$') {
            return text.to_string();
        }
        if self.exhausted {
            return String::new();
        }
        let Some(value) = substitute(text, vars, EXPANDED_VALUE_MAX) else {
            self.errors.push(
                file.error_at(
                    pos,
                    format!(
                        "this value expands to more than {}, the limit of a value after ${{...}} substitution",
                        format_size(EXPANDED_VALUE_MAX as u64)
                    ),
                )
                .hint("ARG values are for short strings: keep large content in a file of the build context"),
            );
            return String::new();
        };
        self.total += value.len();
        if self.total > EXPANDED_TOTAL_MAX {
            self.exhausted = true;
            self.errors.push(
                file.error_at(
                    pos,
                    format!(
                        "the values of this Kubefile expand to more than {} together, the limit of a Kubefile's ${{...}} substitutions",
                        format_size(EXPANDED_TOTAL_MAX as u64)
                    ),
                )
                .hint("ARG values are for short strings: keep large content in a file of the build context"),
            );
            return String::new();
        }
        value
    }
}

/// Replaces `${NAME}` and `$NAME` of declared variables; leaves other `$` text alone.
/// `None` when the result would be longer than `max` bytes: it is never built past that.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>, max: usize) -> Option<String> {
    if !text.contains('$') {
        return (text.len() <= max).then(|| text.to_string());
    }
    let mut out = String::with_capacity(text.len().min(max));
    let push = |out: &mut String, part: &str| {
        if out.len() + part.len() > max {
            return false;
        }
        out.push_str(part);
        true
    };
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        if !push(&mut out, &rest[..at]) {
            return None;
        }
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{')
            && let Some(end) = inner.find('}')
            && let Some(value) = vars.get(&inner[..end])
        {
            if !push(&mut out, value) {
                return None;
            }
            rest = &inner[end + 1..];
            continue;
        }
        let ident_len = after
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphanumeric() && !(*i == 0 && c.is_ascii_digit()) || *c == '_'
            })
            .count();
        if ident_len > 0
            && let Some(value) = vars.get(&after[..ident_len])
        {
            if !push(&mut out, value) {
                return None;
            }
            rest = &after[ident_len..];
            continue;
        }
        if !push(&mut out, "$") {
            return None;
        }
        rest = after;
    }
    push(&mut out, rest).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_touches_only_declared_names() {
        let vars = BTreeMap::from([("ARCH".to_string(), "amd64".to_string())]);
        let sub = |text| substitute(text, &vars, 100).unwrap();
        assert_eq!(sub("bin/${ARCH}/x"), "bin/amd64/x");
        assert_eq!(sub("$ARCH-$HOME ${X} $"), "amd64-$HOME ${X} $");
        assert_eq!(sub("${ARCH"), "${ARCH");
        assert_eq!(sub("$ARCHX"), "$ARCHX");
    }

    #[test]
    fn substitution_stops_at_its_limit() {
        let vars = BTreeMap::from([("A".to_string(), "x".repeat(4))]);
        assert_eq!(
            substitute("${A}${A}", &vars, 8).as_deref(),
            Some("xxxxxxxx")
        );
        assert_eq!(substitute("${A}${A}", &vars, 7), None);
        assert_eq!(substitute("${A}$A!", &vars, 8), None);
        assert_eq!(substitute("$A$", &vars, 4), None);
        assert_eq!(substitute("123456789", &vars, 8), None);
    }

    fn kubefile(text: &str) -> Kubefile {
        crate::kubefile::parse(std::path::Path::new("Kubefile"), text).unwrap()
    }

    /// `ARG A0=x`, then ARGs that each double the last, up to `A{n}`, then a LABEL of it.
    fn doubling_chain(seed: &str, n: usize) -> String {
        let mut text = format!("FROM scratch\nARG A0={seed}\n");
        for i in 1..=n {
            text.push_str(&format!("ARG A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
        }
        text.push_str(&format!("LABEL k=${{A{n}}}\n"));
        text
    }

    #[test]
    fn a_doubling_arg_chain_is_one_located_error_at_the_limit() {
        let file = kubefile(&doubling_chain("x", 39));
        let err = resolve(&file, &BTreeMap::new(), "amd64").unwrap_err();
        let [d] = err.diagnostics() else {
            panic!("one error, not {err}");
        };
        // A20 is 1 MiB exactly; A21 would be 2 MiB.
        assert_eq!(
            d.headline(),
            "Kubefile:23:9: error: this value expands to more than 1 MiB, the limit of a value after ${...} substitution"
        );
        let ok = resolve(
            &kubefile(&doubling_chain("x", 20)),
            &BTreeMap::new(),
            "amd64",
        )
        .unwrap();
        assert_eq!(ok.labels[0].1.len(), 1 << 20);
    }

    #[test]
    fn many_values_under_the_limit_add_up_to_the_total_limit() {
        let mut text = doubling_chain("x", 19);
        // The chain and its LABEL (line 22) make 1.5 MiB, each LABEL from line 23 on 512 KiB
        // more: the 30th takes the total past 16 MiB.
        for i in 0..40 {
            text.push_str(&format!("LABEL k{i}=${{A19}}\n"));
        }
        let err = resolve(&kubefile(&text), &BTreeMap::new(), "amd64").unwrap_err();
        let [d] = err.diagnostics() else {
            panic!("one error, not {err}");
        };
        assert!(d.message.contains("more than 16 MiB together"), "{d}");
        assert_eq!(d.location.as_ref().unwrap().line, 23 + 29);
    }
}
