//! A scratch SEALER_HOME with the bench image, for the benchmarks on the SSH test bed
//! (compare, distribution).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::sealer_binary;
use crate::testbed::TestBed;

/// A scratch SEALER_HOME with the bench image: a tiny rootfs whose runtime script does
/// nothing, so an apply's steps are the host bookkeeping plus the 10 commands (plugins).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("sealer-bench-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `cmd` (the sealer binary, run directly or by a bed in one of its namespaces) with
    /// this scratch home and directory.
    pub fn with_home(&self, mut cmd: Command) -> Command {
        cmd.env("SEALER_HOME", self.path("home"))
            .env("HOME", self.path(""))
            .env("NO_COLOR", "1")
            .current_dir(self.path(""));
        cmd
    }

    pub fn sealer(&self, bed: Option<&TestBed>, args: &[&str]) -> (std::process::Output, Duration) {
        let mut cmd = self.with_home(match bed {
            Some(bed) => bed.command(sealer_binary()),
            None => Command::new(sealer_binary()),
        });
        cmd.args(args);
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "sealer {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out, took)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The bench image: scripts that stand in for a runtime and kubeadm, doing nothing.
    pub fn build_bench_image(&self, extra_files: Option<&Path>) {
        let ctx = self.path("image");
        self.write("image/Kubefile", "FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.22.15\nCOPY scripts/ scripts/\nCOPY bin/ bin/\n");
        for s in ["bench.sh", "uninstall-bench.sh"] {
            self.write(&format!("image/scripts/{s}"), "true\n");
        }
        self.write(
            "image/scripts/init-kube.sh",
            "install -m 0755 ../bin/kubeadm ../bin/kubectl /usr/local/bin/\n",
        );
        self.write(
            "image/bin/kubeadm",
            "#!/bin/sh\nmkdir -p /etc/kubernetes && touch /etc/kubernetes/admin.conf\n",
        );
        self.write("image/bin/kubectl", "#!/bin/sh\nexit 0\n");
        if let Some(extra) = extra_files {
            let mut kf = std::fs::read_to_string(ctx.join("Kubefile")).unwrap();
            kf.push_str("COPY payload/ payload/\n");
            std::fs::write(ctx.join("Kubefile"), kf).unwrap();
            let status = Command::new("cp")
                .arg("-a")
                .arg(extra)
                .arg(ctx.join("payload"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let out = Command::new(sealer_binary())
            .args(["build", "-t", "bench:v1"])
            .arg(&ctx)
            .env("SEALER_HOME", self.path("home"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ssh = self.path(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
    }

    /// Host 0 is the (trivial) master; the others only run the 10 commands.
    pub fn clusterfile(&self, bed: &TestBed, hosts: usize, commands: &[String]) -> PathBuf {
        std::fs::copy(bed.known_hosts_path(), self.path(".ssh/known_hosts")).unwrap();
        let ips: Vec<String> = (1..hosts).map(|i| bed.host(i).ip().to_string()).collect();
        let mut text = format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: bench\nspec:\n  image: bench:v1\n  containerRuntime: {{type: bench}}\n  ssh:\n    pk: {}\n  registry:\n    externalRegistry: {{domain: registry.invalid}}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [bench]\n",
            bed.client_key_path().display(),
            bed.host(0).ip(),
            ips.join(", ")
        );
        for (i, c) in commands.iter().enumerate() {
            let _ = write!(
                text,
                "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: step{i:02}}}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: bench\n  data: {}\n",
                serde_json::to_string(c).unwrap()
            );
        }
        self.write("Clusterfile", &text)
    }
}
