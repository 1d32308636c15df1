//! Kubefile: lexing and parsing (`parse`), then resolution against build arguments and the
//! base image (`resolve`). Nothing here touches the filesystem beyond what `resolve` is given.

pub mod ast;
mod lexer;
mod parser;
pub use parser::{APP_NAME_HINT, is_valid_app_name};

pub use ast::{AppKind, Instruction, Node, Pair, Pos, Word};
pub(crate) use parser::is_identifier;
pub use parser::{Kubefile, parse};

#[cfg(test)]
mod tests;
