use super::*;
use proptest::prelude::*;
use std::path::Path;

fn parse_ok(src: &str) -> Vec<Instruction> {
    match parse(Path::new("Kubefile"), src) {
        Ok(file) => file.nodes.into_iter().map(|n| n.instruction).collect(),
        Err(e) => panic!("unexpected error:\n{}", e.render()),
    }
}

/// The headline of every diagnostic, one per line.
fn parse_err(src: &str) -> String {
    match parse(Path::new("Kubefile"), src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(|d| d.headline())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn texts(words: &[Word]) -> Vec<&str> {
    words.iter().map(|w| w.text.as_str()).collect()
}

#[test]
fn the_release_notes_example_parses() {
    let src = r#"FROM scratch
KUBEVERSION 1.22 - 1.24
APP redis local://redis.yaml
APP nginx local://nginx.yaml
APPCMDS nginx ["kubectl apply -f nginx.yaml -n nginx-namespace"]
APP mysql local://charts/mysql/ local://values.yaml
APPCMDS mysql ["helm install mysql .", "-f values.yaml", "--set key=value"]
LABEL "created-by"="sealer.io"
LAUNCH ["nginx", "mysql"]
"#;
    let ins = parse_ok(src);
    assert_eq!(ins.len(), 9);
    match &ins[1] {
        Instruction::KubeVersion(w) => assert_eq!(w.text, "1.22 - 1.24"),
        other => panic!("{other:?}"),
    }
    match &ins[6] {
        Instruction::AppCmds { name, parts } => {
            assert_eq!(name.text, "mysql");
            assert_eq!(
                parts.join(" "),
                "helm install mysql . -f values.yaml --set key=value"
            );
        }
        other => panic!("{other:?}"),
    }
    match &ins[7] {
        Instruction::Label(pairs) => {
            assert_eq!(pairs[0].key.text, "created-by");
            assert_eq!(pairs[0].value.text, "sealer.io");
        }
        other => panic!("{other:?}"),
    }
    match &ins[8] {
        Instruction::Launch(names) => assert_eq!(texts(names), vec!["nginx", "mysql"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn instructions_are_case_insensitive() {
    let ins = parse_ok("from scratch\napp a local://a.sh\ncmd [\"echo\", \"hi\"]\n");
    assert!(matches!(ins[0], Instruction::From { .. }));
    assert!(matches!(
        ins[1],
        Instruction::App {
            kind: AppKind::App,
            ..
        }
    ));
    assert_eq!(ins[2], Instruction::Cmd("echo hi".into()));
}

#[test]
fn from_platform_and_args() {
    let ins = parse_ok("ARG BASE=x/y:1\nFROM --platform=linux/arm64 $BASE\nARG V\n");
    match &ins[1] {
        Instruction::From { image, platform } => {
            assert_eq!(image.text, "$BASE");
            assert_eq!(platform.as_ref().unwrap().text, "linux/arm64");
        }
        other => panic!("{other:?}"),
    }
    match &ins[2] {
        Instruction::Arg { name, default } => {
            assert_eq!(name.text, "V");
            assert!(default.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn label_forms() {
    let ins = parse_ok(
        "FROM scratch\nLABEL a=b \"c d\"='e f' g=\"h \\\"i\\\"\"\nLABEL legacy some value\n",
    );
    let Instruction::Label(pairs) = &ins[1] else {
        panic!()
    };
    let kv: Vec<_> = pairs
        .iter()
        .map(|p| (p.key.text.as_str(), p.value.text.as_str()))
        .collect();
    assert_eq!(kv, vec![("a", "b"), ("c d", "e f"), ("g", "h \"i\"")]);
    let Instruction::Label(pairs) = &ins[2] else {
        panic!()
    };
    assert_eq!(
        (pairs[0].key.text.as_str(), pairs[0].value.text.as_str()),
        ("legacy", "some value")
    );
}

#[test]
fn copy_app_json_and_bare_forms() {
    let ins = parse_ok(
        "FROM scratch\nCOPY a b dir/\nCOPY [\"x y\", \"/etc/\"]\nCNI calico local://c.sh\nCSI [\"ceph\", \"local://ceph.yaml\"]\nAPP empty\n",
    );
    let Instruction::Copy { sources, dest } = &ins[1] else {
        panic!()
    };
    assert_eq!(
        (texts(sources), dest.text.as_str()),
        (vec!["a", "b"], "dir/")
    );
    let Instruction::Copy { sources, dest } = &ins[2] else {
        panic!()
    };
    assert_eq!((texts(sources), dest.text.as_str()), (vec!["x y"], "/etc/"));
    assert!(matches!(
        &ins[3],
        Instruction::App {
            kind: AppKind::Cni,
            ..
        }
    ));
    let Instruction::App {
        kind,
        name,
        sources,
    } = &ins[4]
    else {
        panic!()
    };
    assert_eq!(
        (*kind, name.text.as_str(), texts(sources)),
        (AppKind::Csi, "ceph", vec!["local://ceph.yaml"])
    );
    let Instruction::App { sources, .. } = &ins[5] else {
        panic!()
    };
    assert!(sources.is_empty());
}

#[test]
fn launch_forms_trim_names_and_allow_empty() {
    let ins = parse_ok("FROM scratch\nLAUNCH [\" a \", \"b\"]\n");
    assert!(matches!(&ins[1], Instruction::Launch(n) if texts(n) == vec!["a", "b"]));
    let ins = parse_ok("FROM scratch\nLAUNCH a b\n");
    assert!(matches!(&ins[1], Instruction::Launch(n) if texts(n) == vec!["a", "b"]));
    let ins = parse_ok("FROM scratch\nLAUNCH []\n");
    assert!(matches!(&ins[1], Instruction::Launch(n) if n.is_empty()));
}

#[test]
fn env_appenv_maintainer_cmds() {
    let ins = parse_ok(
        "FROM scratch\nENV A=1 B=\"2 3\"\nAPPENV web PORT=80\nMAINTAINER me\nCMD one\nCMDS [\"two\", \"three\"]\n",
    );
    let Instruction::Env(pairs) = &ins[1] else {
        panic!()
    };
    assert_eq!(pairs[1].value.text, "2 3");
    let Instruction::AppEnv { name, pairs } = &ins[2] else {
        panic!()
    };
    assert_eq!(
        (name.text.as_str(), pairs[0].key.text.as_str()),
        ("web", "PORT")
    );
    assert_eq!(ins[3], Instruction::Maintainer("me".into()));
    assert_eq!(
        ins[5],
        Instruction::Cmds(vec!["two".into(), "three".into()])
    );
}

#[test]
fn errors_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "FROM scratch\nRUN make\n",
            "Kubefile:2:1: error: RUN is not supported: prepare files in the build context and COPY them",
        ),
        (
            "FROM scratch\n  BOGUS x\n",
            "Kubefile:2:3: error: unknown instruction BOGUS",
        ),
        (
            "FROM scratch\nADD a b\n",
            "Kubefile:2:1: error: ADD is not supported",
        ),
        (
            "FROM scratch\nKUBEVERSION   \n",
            "Kubefile:2:1: error: KUBEVERSION needs a constraint",
        ),
        ("LABEL a=b\n", "Kubefile:1:1: error: LABEL before FROM"),
        ("\n\n", "Kubefile:1:1: error: no FROM instruction"),
        (
            "FROM scratch\nFROM scratch\n",
            "Kubefile:2:1: error: a second FROM: a Kubefile has exactly one FROM",
        ),
        (
            "FROM scratch\nLAUNCH a\nAPP a\n",
            "Kubefile:2:1: error: LAUNCH must be the last instruction",
        ),
        (
            "FROM scratch\nCMDS [\"a\"]\nLAUNCH a\n",
            "Kubefile:2:1: error: CMDS must be the last instruction\nKubefile:3:1: error: LAUNCH cannot be combined with CMDS/CMD (line 2)",
        ),
        (
            "FROM scratch\nCMDS echo hi\n",
            "Kubefile:2:6: error: CMDS needs a JSON array of strings",
        ),
        (
            "FROM scratch\nAPPCMDS a echo\n",
            "Kubefile:2:11: error: APPCMDS needs a JSON array of strings",
        ),
        (
            "FROM scratch\nAPPCMDS a [1]\n",
            "Kubefile:2:11: error: APPCMDS: invalid JSON array: every element must be a string, found 1",
        ),
        (
            "FROM scratch\nCOPY --chown=1 a b\n",
            "Kubefile:2:6: error: COPY does not take the flag --chown",
        ),
        (
            "FROM scratch\nCOPY a\n",
            "Kubefile:2:1: error: COPY needs a source and a destination",
        ),
        (
            "FROM scratch\nAPP ../x\n",
            "Kubefile:2:5: error: invalid app name \"../x\"",
        ),
        (
            "FROM a AS b\n",
            "Kubefile:1:8: error: multi-stage builds (FROM ... AS) are not supported",
        ),
        (
            "FROM scratch\nLABEL a=\"b\n",
            "Kubefile:2:9: error: unterminated quote",
        ),
        (
            "# escape=x\nFROM scratch\n",
            "Kubefile:1:1: error: invalid escape character \"x\" in the escape directive",
        ),
        (
            "FROM scratch\nARG 1x\n",
            "Kubefile:2:5: error: invalid ARG name \"1x\"",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(parse_err(src), *want, "for {src:?}");
    }
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let got = parse_err("FROM scratch\nRUN a\nRUN b\nCOPY x\n");
    assert_eq!(got.lines().count(), 3, "{got}");
}

#[test]
fn error_rendering_quotes_the_line_with_a_caret() {
    let err = parse(Path::new("K"), "FROM scratch\nCOPY --x a b\n").unwrap_err();
    assert_eq!(
        err.render(),
        "K:2:6: error: COPY does not take the flag --x\n2 | COPY --x a b\n  |      ^\n"
    );
}

#[test]
fn positions_survive_continuations() {
    // Blank and comment lines inside a continuation are skipped; a flag that is not
    // leading is just a word.
    let ins = parse_ok("FROM scratch\nCOPY a \\\n  \\\n# note\n   --x b\n");
    let Instruction::Copy { sources, dest } = &ins[1] else {
        panic!()
    };
    assert_eq!(
        (texts(sources), dest.text.as_str()),
        (vec!["a", "--x"], "b")
    );
    assert_eq!((dest.pos.line, dest.pos.column), (5, 8));
    let file = parse(Path::new("K"), "FROM scratch\nAPP a \\\n    local://b\n").unwrap();
    let Instruction::App { sources, .. } = &file.nodes[1].instruction else {
        panic!()
    };
    assert_eq!((sources[0].pos.line, sources[0].pos.column), (3, 5));
}

/// A Kubefile with every instruction, to mutate in the property test.
const SEED: &str = "# escape=\\\nARG BASE=scratch\nFROM --platform=linux/amd64 ${BASE}\nLABEL a=b \"c\"='d'\nKUBEVERSION >=1.22, <1.27 || 1.28.x-0\nENV K=V\nCOPY a b/\nAPP x local://a.yaml \\\n  http://h/p.sh\nCNI c [\"local://c\"]\nAPPCMDS x [\"bash a.sh\", \"-x\"]\nAPPENV x P=1\nMAINTAINER m\nLAUNCH [\"x\", \"c\"]\n";

fn mutate(seed: &str, ops: &[(usize, u8, u8)]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for &(at, kind, byte) in ops {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let i = at % bytes.len();
        match kind % 4 {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            2 => {
                bytes.remove(i);
            }
            _ => {
                let end = (i + (byte as usize % 16)).min(bytes.len());
                let chunk = bytes[i..end].to_vec();
                bytes.splice(i..i, chunk);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn exercise(src: &str) {
    if let Ok(file) = parse(Path::new("K"), src) {
        let _ = crate::image::build::recipe::resolve(&file, &Default::default(), "amd64");
    } else if let Err(e) = parse(Path::new("K"), src) {
        // Every error is located and renders.
        for d in e.diagnostics() {
            assert!(d.location.is_some(), "unlocated: {}", d.headline());
            let _ = d.render();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,200}") {
        exercise(&src);
    }

    #[test]
    fn kubefile_like_text_never_panics(src in "([A-Za-z]{0,8}( |\\t|\\\\|\\[|\\]|\"|'|=|\\$|\\{|\\}|,|#|--|\\n|local://|[a-z0-9./]{0,6}){0,12}\\n?){0,8}") {
        exercise(&src);
    }

    #[test]
    fn mutated_kubefiles_never_panic(ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12)) {
        exercise(&mutate(SEED, &ops));
    }
}

#[test]
fn the_seed_parses() {
    assert_eq!(parse_ok(SEED).len(), 12);
}

#[test]
fn a_misspelt_instruction_suggests_the_nearest_one() {
    let err = parse(Path::new("Kubefile"), "FROM scratch\nAPPCMD app [\"x\"]\n").unwrap_err();
    assert_eq!(
        err.render(),
        "Kubefile:2:1: error: unknown instruction APPCMD\n\
         2 | APPCMD app [\"x\"]\n  | ^\n\
         hint: did you mean APPCMDS?\n\
         hint: a Kubefile knows FROM, ARG, LABEL, KUBEVERSION, COPY, APP, CNI, CSI, APPCMDS, \
         APPENV, ENV, LAUNCH, CMDS, CMD, MAINTAINER\n"
    );
    // Far from every instruction: no guess, only the list.
    let err = parse(Path::new("Kubefile"), "FROM scratch\nBOGUS x\n").unwrap_err();
    assert!(!err.render().contains("did you mean"), "{}", err.render());
}
