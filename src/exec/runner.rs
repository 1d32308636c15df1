//! The real step runner: what each resource does on its host(s), through the providers'
//! scripts and the hosts' transports (`deploy.md`).

use super::hosts::{HostTransport, Pool};
use super::{Event, EventSink, StepFailure, StepRunner};
use crate::plan::teardown::Teardown;
use crate::plan::{Action, Change, ReasonCode};
use crate::resource::{Attributes, ResourceType};
use sealer_providers::steps;
use sealer_providers::{Exec, OutputChunk, Stdin, Transport};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a read-only script printed, and whether it exited 0.
#[derive(Debug)]
pub struct Probe {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Probe {
    /// The last non-empty line of stderr: what a failed tool said.
    pub fn stderr_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output)")
    }
}

/// The rendered rootfs that `rootfs.<ip>` steps copy to hosts.
#[derive(Clone)]
pub struct RootfsSource {
    pub root: PathBuf,
    pub entries: Vec<sealer_providers::sync::ManifestEntry>,
}

/// Everything steps need besides the change itself. Secrets are here only in the
/// transports' settings; nothing of this is logged.
pub struct DeployContext {
    pub cluster: String,
    /// `<dataRoot>/<cluster>/rootfs` on every host.
    pub rootfs: String,
    pub master0: String,
    pub masters: Vec<String>,
    pub vip: String,
    /// `domain:port` of the registry, and its domain.
    pub registry_endpoint: String,
    pub registry_domain: String,
    /// Hosts that run a registry (first is where its certificate is made).
    pub registry_hosts: Vec<String>,
    pub registry_sans: Vec<String>,
    /// The registry's basic-auth credentials (username, password), when set: the local
    /// registry serves them from an htpasswd file, and every host's kubelet pulls with them.
    pub registry_auth: Option<(String, String)>,
    /// `export K=V` lines per host (merged env), and for hosts that left the Clusterfile.
    pub exports: HashMap<String, String>,
    pub default_exports: String,
    pub rootfs_source: Option<RootfsSource>,
    /// Trees of images installed by `sealer run`, by their root on master0: synced there
    /// before their apps launch.
    pub run_trees: HashMap<String, RootfsSource>,
    pub step_timeout: Duration,
    pub drain_timeout: Duration,
    /// What the plan tears down: which teardown plugins run when deleted.
    pub teardown: Teardown,
    /// Where each rootfs change gets its files (the plan's distribution tree; empty when
    /// every host gets them from this machine).
    pub rootfs_tree: crate::plan::distribution::Tree,
    /// The least a relay must save the operator's uplink, all receivers together
    /// ([`crate::limits::RELAY_MIN_DEFAULT`]).
    pub relay_min: u64,
}

/// What a rootfs distribution keeps during one apply: its one-time key (made when the
/// first host relays), and the hosts whose rootfs step finished, which may seed others.
#[derive(Default)]
pub struct Distribution {
    key: tokio::sync::OnceCell<Result<sealer_providers::sync::relay::DistributionKey, String>>,
    seeded: Mutex<std::collections::HashSet<String>>,
}

impl Distribution {
    /// `host` holds the rootfs as this apply's plan wants it, verified.
    pub fn seeded(&self, host: &str) {
        if let Ok(mut s) = self.seeded.lock() {
            s.insert(host.to_string());
        }
    }

    pub fn has_seeded(&self, host: &str) -> bool {
        self.seeded.lock().is_ok_and(|s| s.contains(host))
    }
}

pub struct Runner {
    pub ctx: DeployContext,
    pub pool: Pool,
    pub sink: Arc<dyn EventSink>,
    /// Node names (hostnames) by IP, learned from host steps or asked for.
    pub node_names: Mutex<HashMap<String, String>>,
    /// Secret values seen so far (join tokens, certificate keys) and the Clusterfile's: any
    /// output line that contains one is redacted before it is shown.
    pub secrets: Arc<Mutex<Vec<String>>>,
    pub distribution: Distribution,
}

/// Replaces every known secret in `line` with `(sensitive value)`.
fn redact(line: &str, secrets: &Mutex<Vec<String>>) -> String {
    let mut out = line.to_string();
    if let Ok(secrets) = secrets.lock() {
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "(sensitive value)");
            }
        }
    }
    out
}

/// A failed command inside a step.
fn failure(command: &str, message: String, output: &[u8]) -> StepFailure {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    StepFailure {
        command: Some(command.to_string()),
        message,
        output_tail: tail,
    }
}

/// The `hint:` line of a step that ran out of time: the two likely causes, a slow step or
/// a command that waits for something that never comes.
fn timeout_hint(limit: Duration) -> String {
    let secs = limit.as_secs();
    let shown = match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    format!(
        "\nhint: the step ran longer than --step-timeout ({shown}); if it is only slow, apply \
         again with a larger --step-timeout; if it hangs, run its command on the host to see \
         what it waits for"
    )
}

/// The `hint:` line of a failed sync whose host said why: a full disk, or tools the sync
/// needs that the host lacks (busybox's tar and find take none of the options it uses).
fn sync_hint(message: &str, dest: &str) -> String {
    let hint = if message.contains("No space left on device") {
        format!(
            "the host's disk is full where the rootfs goes: free space there (df -h {}), or \
             set spec.dataRoot to a larger file system",
            sealer_providers::quote::quote(dest)
        )
    } else if [
        "unrecognized",
        "invalid option",
        "unknown predicate",
        "command not found",
    ]
    .iter()
    .any(|s| message.contains(s))
    {
        "the host lacks a tool the sync needs: install GNU tar, findutils, grep and coreutils \
         (busybox's are not enough)"
            .to_string()
    } else {
        return String::new();
    };
    format!("\nhint: {hint}")
}

/// What errors show of a script: its first meaningful lines, without the host's env. The env
/// goes first in most scripts, and a value may span lines (a list, a quoted newline): it is
/// taken out whole before anything is shown.
pub(crate) fn shown_command(script: &str, exports: &str) -> String {
    if exports.is_empty() {
        first_line(script)
    } else {
        first_line(&script.replacen(exports, "", 1))
    }
}

fn first_line(script: &str) -> String {
    // The command people see: the script's meaningful lines, without `set -e` and exports.
    script
        .lines()
        .filter(|l| !l.starts_with("set -e") && !l.starts_with("export ") && !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Runner {
    /// The `export` lines of `host`'s env.
    pub(crate) fn exports(&self, host: &str) -> &str {
        self.ctx
            .exports
            .get(host)
            .map_or(self.ctx.default_exports.as_str(), String::as_str)
    }

    pub(crate) async fn transport(&self, host: &str) -> Result<Arc<HostTransport>, StepFailure> {
        self.pool.get(host).await.map_err(|e| StepFailure {
            command: None,
            message: format!("cannot reach host {host}: {}", e.message),
            output_tail: Vec::new(),
        })
    }

    /// Runs a script on `host`, streaming its output as events; fails on a non-zero exit.
    /// `shown` is what errors show as the command (scripts fed secrets on stdin show no
    /// secret anyway).
    pub(crate) async fn run(
        &self,
        address: &str,
        host: &str,
        script: String,
        stdin: Stdin,
    ) -> Result<Vec<u8>, StepFailure> {
        self.run_with(address, host, script, stdin, false).await
    }

    /// Copies a tree (a rendered rootfs, a `sealer run` image) to `dest` on `host`: changed
    /// files only, the registry data too only when `with_registry` (it is large, and only
    /// registries serve it).
    pub(crate) async fn sync_tree(
        &self,
        host: &str,
        source: &RootfsSource,
        dest: &str,
        with_registry: bool,
    ) -> Result<sealer_providers::sync::SyncReport, StepFailure> {
        let transport = self.transport(host).await?;
        let exclude = if with_registry {
            Vec::new()
        } else {
            vec!["registry/".to_string()]
        };
        let options = sealer_providers::sync::SyncOptions {
            exclude,
            timeout: self.ctx.step_timeout,
            temp_dir: None,
        };
        sealer_providers::sync::sync(
            transport.as_ref(),
            &source.root,
            &source.entries,
            dest,
            &options,
        )
        .await
        .map_err(|e| {
            StepFailure::message(format!(
                "on host {host}: copying to {dest}: {}{}",
                e.message,
                sync_hint(&e.message, dest)
            ))
        })
    }

    /// Like [`Runner::sync_tree`], the files coming from `seeder`, which got the same
    /// tree earlier in this apply (`crate::plan::distribution`). `Ok(true)` when the files
    /// came from the seeder, `Ok(false)` when there were none to relay (the little that
    /// changed went directly). Any error means the receiver must be synced directly.
    pub(crate) async fn sync_tree_from(
        &self,
        host: &str,
        seeder: &str,
        source: &RootfsSource,
        dest: &str,
        with_registry: bool,
    ) -> Result<(sealer_providers::sync::SyncReport, bool), String> {
        use sealer_providers::sync::relay::{DistributionKey, Relay};
        let receiver = self.transport(host).await.map_err(|e| e.message)?;
        let seeding = self
            .transport(seeder)
            .await
            .map_err(|e| format!("seeder {seeder}: {}", e.message))?;
        let (HostTransport::Ssh(to), HostTransport::Ssh(from)) =
            (receiver.as_ref(), seeding.as_ref())
        else {
            return Err("hosts reached without SSH cannot relay".to_string());
        };
        let key = self
            .distribution
            .key
            .get_or_init(|| async {
                let key = DistributionKey::generate()?;
                // The private key travels only on the seeder's stdin; if any line of it
                // ever showed up in output, it is redacted.
                if let Ok(mut secrets) = self.secrets.lock() {
                    secrets.push(key.private_openssh().to_string());
                    secrets.extend(
                        key.private_openssh()
                            .lines()
                            .filter(|l| !l.starts_with("-----"))
                            .map(str::to_string),
                    );
                }
                Ok(key)
            })
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        let relay = Relay {
            seeder: from,
            seeder_address: seeder,
            receiver_address: &to.config().host,
            receiver_port: to.config().port,
            receiver_user: &to.config().user,
            receiver_host_key: to.host_key_openssh(),
            key,
            min_bytes: self
                .ctx
                .relay_min
                .div_ceil(self.ctx.rootfs_tree.sources.len().max(1) as u64),
        };
        let options = sealer_providers::sync::SyncOptions {
            exclude: if with_registry {
                Vec::new()
            } else {
                vec!["registry/".to_string()]
            },
            timeout: self.ctx.step_timeout,
            temp_dir: None,
        };
        sealer_providers::sync::relay::sync_via(
            to,
            &source.root,
            &source.entries,
            dest,
            &options,
            &relay,
        )
        .await
        .map_err(|e| {
            let last = e
                .message
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
                .trim()
                .to_string();
            // Relay errors already name the seeder; others (the receiver's probe) do not.
            let reason = if last.starts_with(&format!("from {seeder}: ")) {
                last
            } else {
                format!("via {seeder}: {last}")
            };
            redact(&reason, &self.secrets)
        })
    }

    /// A plugin's script, run in the rootfs with the host's env.
    pub(crate) async fn run_plugin(
        &self,
        address: &str,
        host: &str,
        data: String,
    ) -> Result<(), StepFailure> {
        let script = steps::in_rootfs(&self.ctx.rootfs, self.exports(host), &[data]);
        self.run(address, host, script, Stdin::Null).await.map(drop)
    }

    /// Like [`Runner::run`] for commands whose output is a secret (join tokens, certificate
    /// keys, the registry's key): their output is never streamed, logged or shown.
    pub(crate) async fn run_secret(
        &self,
        address: &str,
        host: &str,
        script: String,
    ) -> Result<Vec<u8>, StepFailure> {
        self.run_with(address, host, script, Stdin::Null, true)
            .await
    }

    pub(crate) async fn run_with(
        &self,
        address: &str,
        host: &str,
        script: String,
        stdin: Stdin,
        secret_output: bool,
    ) -> Result<Vec<u8>, StepFailure> {
        let transport = self.transport(host).await?;
        let shown = shown_command(&script, self.exports(host));
        let exec = Exec::new(script, self.ctx.step_timeout).with_stdin(stdin);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutputChunk>();
        let sink = Arc::clone(&self.sink);
        let secrets = Arc::clone(&self.secrets);
        let (addr, h) = (address.to_string(), host.to_string());
        let forward = tokio::spawn(async move {
            let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            while let Some(chunk) = rx.recv().await {
                let buf = &mut pending[usize::from(chunk.stderr)];
                buf.extend_from_slice(&chunk.bytes);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    sink.event(Event::StepOutput {
                        address: addr.clone(),
                        host: Some(h.clone()),
                        stderr: chunk.stderr,
                        line: redact(&String::from_utf8_lossy(&line[..line.len() - 1]), &secrets),
                    });
                }
            }
        });
        let result = transport.exec(&exec, (!secret_output).then_some(&tx)).await;
        drop(tx);
        let _ = forward.await;
        match result {
            Ok(out) if out.status.success() => Ok(out.stdout),
            Ok(out) => {
                // A failed secret command shows its stderr only: stdout may hold the secret.
                let mut all = if secret_output {
                    Vec::new()
                } else {
                    out.stdout.clone()
                };
                all.extend_from_slice(&out.stderr);
                let all = redact(&String::from_utf8_lossy(&all), &self.secrets).into_bytes();
                let mut message = format!("on host {host}: command failed ({})", out.status);
                if out.status == sealer_providers::ExitStatus::TimedOut {
                    message.push_str(&timeout_hint(self.ctx.step_timeout));
                }
                Err(failure(&shown, message, &all))
            }
            Err(e) => Err(failure(
                &shown,
                format!("on host {host}: {}", e.message),
                &[],
            )),
        }
    }

    /// Runs a read-only script on `host` for a read-back. Nothing is streamed or logged,
    /// and a non-zero exit is returned, not failed: a check that fails is a finding.
    pub(crate) async fn probe(&self, host: &str, script: String) -> Result<Probe, StepFailure> {
        let transport = self.transport(host).await?;
        let shown = first_line(&script);
        let exec = Exec::new(script, self.ctx.step_timeout);
        let out = transport
            .exec(&exec, None)
            .await
            .map_err(|e| failure(&shown, format!("on host {host}: {}", e.message), &[]))?;
        Ok(Probe {
            ok: out.status.success(),
            stdout: redact(&String::from_utf8_lossy(&out.stdout), &self.secrets),
            stderr: redact(&String::from_utf8_lossy(&out.stderr), &self.secrets),
        })
    }

    /// Remembers the secret words of a join command or key so output never shows them.
    pub(crate) fn remember_secrets(&self, text: &str) {
        if let Ok(mut secrets) = self.secrets.lock() {
            let mut words = text.split_whitespace().peekable();
            while let Some(w) = words.next() {
                if matches!(
                    w,
                    "--token" | "--certificate-key" | "--discovery-token-ca-cert-hash"
                ) && let Some(value) = words.peek()
                {
                    secrets.push(value.to_string());
                }
            }
            if !text.contains(' ') && !text.trim().is_empty() {
                secrets.push(text.trim().to_string());
            }
        }
    }

    pub(crate) async fn node_name(&self, address: &str, ip: &str) -> Result<String, StepFailure> {
        if let Some(n) = self.node_names.lock().ok().and_then(|m| m.get(ip).cloned()) {
            return Ok(n);
        }
        let out = self
            .run(address, ip, "hostname\n".to_string(), Stdin::Null)
            .await?;
        let name = String::from_utf8_lossy(&out).trim().to_string();
        if let Ok(mut m) = self.node_names.lock() {
            m.insert(ip.to_string(), name.clone());
        }
        Ok(name)
    }

    /// Every kind's steps are its module's (`crate::kinds`): the runner only dispatches.
    async fn create(&self, change: &Change) -> Result<Attributes, StepFailure> {
        use crate::kinds::*;
        match change.resource_type {
            ResourceType::Host => host::create(self, change).await,
            ResourceType::Rootfs => rootfs::create(self, change).await,
            ResourceType::ContainerRuntime => container_runtime::create(self, change).await,
            ResourceType::Registry => registry::create(self, change).await,
            ResourceType::RegistryClient => registry_client::create(self, change).await,
            ResourceType::KubernetesInit => kubernetes_init::create(self, change).await,
            ResourceType::KubernetesMaster | ResourceType::KubernetesWorker => {
                kubernetes_join::create(self, change).await
            }
            ResourceType::NodeMeta => node_meta::create(self, change).await,
            ResourceType::Plugin => plugin::create(self, change).await,
            ResourceType::App => app::create(self, change).await,
            ResourceType::ImagePolicy => image_policy::create(self, change).await,
        }
    }

    /// Updates in place: most kinds re-run their create, which is idempotent; the control
    /// plane and the joins upgrade Kubernetes, and workers move their API endpoint rule.
    async fn update(&self, change: &Change) -> Result<Attributes, StepFailure> {
        match change.resource_type {
            ResourceType::KubernetesInit => {
                crate::kinds::kubernetes_init::update(self, change).await
            }
            ResourceType::KubernetesMaster => {
                crate::kinds::kubernetes_join::update_master(self, change).await
            }
            ResourceType::KubernetesWorker => {
                crate::kinds::kubernetes_join::update(self, change).await
            }
            ResourceType::NodeMeta => crate::kinds::node_meta::update(self, change).await,
            _ => self.create(change).await,
        }
    }

    async fn destroy(&self, change: &Change) -> Result<(), StepFailure> {
        use crate::kinds::*;
        match change.resource_type {
            ResourceType::Host => host::destroy(self, change).await,
            ResourceType::Rootfs => rootfs::destroy(self, change).await,
            ResourceType::ContainerRuntime => container_runtime::destroy(self, change).await,
            ResourceType::Registry => registry::destroy(self, change).await,
            ResourceType::RegistryClient => registry_client::destroy(self, change).await,
            ResourceType::KubernetesInit => kubernetes_init::destroy(self, change).await,
            ResourceType::KubernetesMaster | ResourceType::KubernetesWorker => {
                kubernetes_join::destroy(self, change).await
            }
            ResourceType::NodeMeta => node_meta::destroy(self, change).await,
            ResourceType::Plugin => plugin::destroy(self, change).await,
            ResourceType::App => app::destroy(self, change).await,
            ResourceType::ImagePolicy => image_policy::destroy(self, change).await,
        }
    }
}

impl StepRunner for Runner {
    async fn run(&self, change: &Change) -> Result<Attributes, StepFailure> {
        match change.action {
            Action::Create => self.create(change).await,
            Action::Update => self.update(change).await,
            Action::Replace => {
                // Destroy what the state recorded, then create what the configuration wants.
                // A tainted resource stopped midway: its teardown may find half of it, so
                // a failing teardown is reported and the create goes on.
                if change.before.is_some()
                    && let Err(e) = self.destroy(change).await
                {
                    if !matches!(
                        change.reason_code,
                        ReasonCode::ReplaceBecauseTainted | ReasonCode::ReplaceBecauseDrifted
                    ) {
                        return Err(e);
                    }
                    self.sink.event(Event::Warning {
                        message: format!(
                            "{}: tearing down the {} resource failed ({}); creating it anew",
                            change.address,
                            if change.reason_code == ReasonCode::ReplaceBecauseTainted {
                                "tainted"
                            } else {
                                "drifted"
                            },
                            e.message
                        ),
                    });
                }
                self.create(change).await
            }
            Action::Delete => self.destroy(change).await.map(|()| Attributes::new()),
        }
    }
}

/// Lines of `export` for an env given as key → value (lists as `a;b`, as written).
pub fn exports_of(env: &BTreeMap<String, sealer_providers::quote::EnvItem>) -> String {
    let items: Vec<(String, sealer_providers::quote::EnvItem)> =
        env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    sealer_providers::quote::exports(&items)
}

#[cfg(test)]
mod tests {
    use super::timeout_hint;
    use std::time::Duration;

    #[test]
    fn a_failed_sync_hints_at_a_full_disk_and_at_missing_gnu_tools() {
        let full = "sending the changes failed (exit code 2): tar: ./registry/blob: Cannot write: No space left on device";
        assert!(
            super::sync_hint(full, "/var/lib/sealer/data/c/rootfs")
                .starts_with("\nhint: the host's disk is full where the rootfs goes: free space there (df -h /var/lib/sealer/data/c/rootfs)")
        );
        let busybox =
            "reading the remote manifest failed (exit code 1): find: unrecognized: -printf";
        assert!(super::sync_hint(busybox, "/r").contains("GNU tar, findutils"));
        let busybox_tar =
            "sending the changes failed (exit code 1): tar: unrecognized option '--null'";
        assert!(super::sync_hint(busybox_tar, "/r").contains("GNU tar, findutils"));
        assert_eq!(super::sync_hint("connection lost", "/r"), "");
    }

    #[test]
    fn a_timeout_hint_names_the_limit_as_the_flag_takes_it() {
        let hint = |secs| timeout_hint(Duration::from_secs(secs));
        assert!(hint(600).starts_with("\nhint: the step ran longer than --step-timeout (10m);"));
        assert!(hint(7200).contains("(2h)"));
        assert!(hint(90).contains("(90s)"));
        let (message, hints) =
            crate::diag::split_hints(&format!("on host h: command failed (timed out){}", hint(6)));
        assert_eq!(message, "on host h: command failed (timed out)");
        assert_eq!(hints.len(), 1);
        assert!(hints[0].contains("larger --step-timeout"), "{hints:?}");
    }
}
