//! Shared test support: a sandboxed `$SEALER_HOME`, the real binary, fixture paths.

#![allow(dead_code)]

pub mod http;
pub mod postgres;
pub mod registry;
pub mod testbed;
pub mod token;

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// A test's own sealer home and scratch directory, removed when dropped.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("sealer-it-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `sealer ARGS...` with this sandbox's `SEALER_HOME`.
    pub fn sealer(&self) -> Command {
        let mut cmd = Command::cargo_bin("sealer").expect("sealer binary");
        cmd.env("SEALER_HOME", self.home())
            .env("HOME", self.dir.path())
            .env_remove("NO_COLOR");
        cmd
    }

    /// `sealer ARGS...` under `prlimit --data=BYTES`: a sealer that tried to hold more than
    /// that would fail to allocate and abort, instead of passing on a machine with memory to
    /// spare. The data limit counts what is allocated, not the address space reserved (which
    /// grows with the machine's cores: allocator arenas, threads).
    pub fn sealer_within(&self, data_bytes: u64) -> Command {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--data={data_bytes}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_sealer"))
            .env("SEALER_HOME", self.home())
            .env("HOME", self.dir.path())
            .env_remove("NO_COLOR");
        cmd
    }

    /// Writes `files` (path, content) under `rel` and returns that directory.
    pub fn write_tree(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path(rel);
        for (path, content) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// stdout of a successful run, as a String.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("utf-8 stdout")
}

/// stderr of a failed run (exit code 1), as a String.
pub fn failure_of(cmd: &mut Command) -> String {
    let out = cmd.assert().code(1).get_output().stderr.clone();
    String::from_utf8(out).expect("utf-8 stderr")
}

/// stdout of a finished `sealer ARGS` that must have succeeded (the panic shows both streams).
pub fn succeeded(out: &std::process::Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "sealer {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a finished `sealer ARGS` that must have failed with exit code 1.
pub fn refused(out: &std::process::Output, args: &[&str]) -> String {
    refused_with(out, args, 1)
}

/// The exit code of `sealer apply PLANFILE` refusing a stale plan (docs/plan.md).
pub const EXIT_STALE_PLAN: i32 = 3;

/// stderr of a finished `sealer ARGS` that must have failed with exit code `code`.
pub fn refused_with(out: &std::process::Output, args: &[&str], code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "sealer {args:?} should fail:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
