//! The syntax tree of a Kubefile: instructions with the positions of their words.

pub use super::lexer::{Pos, Word};

/// Which of APP, CNI and CSI declared an app: CNI and CSI also label the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    App,
    Cni,
    Csi,
}

impl AppKind {
    pub fn keyword(self) -> &'static str {
        match self {
            AppKind::App => "APP",
            AppKind::Cni => "CNI",
            AppKind::Csi => "CSI",
        }
    }
}

/// A `KEY=VALUE` pair of LABEL, ENV, APPENV and ARG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: Word,
    pub value: Word,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: Word,
        platform: Option<Word>,
    },
    Arg {
        name: Word,
        default: Option<Word>,
    },
    Label(Vec<Pair>),
    KubeVersion(Word),
    Copy {
        sources: Vec<Word>,
        dest: Word,
    },
    App {
        kind: AppKind,
        name: Word,
        sources: Vec<Word>,
    },
    AppCmds {
        name: Word,
        parts: Vec<String>,
    },
    Launch(Vec<Word>),
    Cmds(Vec<String>),
    Cmd(String),
    Env(Vec<Pair>),
    AppEnv {
        name: Word,
        pairs: Vec<Pair>,
    },
    Maintainer(String),
}

impl Instruction {
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Arg { .. } => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::KubeVersion(_) => "KUBEVERSION",
            Instruction::Copy { .. } => "COPY",
            Instruction::App { kind, .. } => kind.keyword(),
            Instruction::AppCmds { .. } => "APPCMDS",
            Instruction::Launch(_) => "LAUNCH",
            Instruction::Cmds(_) => "CMDS",
            Instruction::Cmd(_) => "CMD",
            Instruction::Env(_) => "ENV",
            Instruction::AppEnv { .. } => "APPENV",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// An instruction and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub pos: Pos,
    pub instruction: Instruction,
}
