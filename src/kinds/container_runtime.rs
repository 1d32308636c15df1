//! `container_runtime.<ip>`: the container runtime (docker, containerd) on a host
//! (`deploy.md`). Create and update run the image's `ROOTFS/scripts/<type>.sh` with the
//! host's env; destroy runs `uninstall-<type>.sh` of the type that was installed. A type or
//! version change replaces it (uninstall the old, install the new).

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::{Probe, Runner};
use crate::graph::input::ClusterInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::quote::quote;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::ContainerRuntime,
    replace_on: &["type", "version"],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host],
};

/// What a host's container runtime is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeAttrs {
    /// `docker`, `containerd`...: names the image's install and uninstall scripts.
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
}

impl RuntimeAttrs {
    pub fn from_input(input: &ClusterInput) -> RuntimeAttrs {
        RuntimeAttrs {
            kind: input.runtime_type.clone(),
            version: input.runtime_version.clone(),
        }
    }
}

/// `container_runtime.<ip>`, after the host's rootfs (its scripts live there). Plugins of
/// `pre-init-host` add themselves as dependencies later, in graph compilation.
pub fn desired(input: &ClusterInput, ip: &str) -> Desired {
    SCHEMA.desired(
        format!("container_runtime.{ip}"),
        Some(ip),
        &RuntimeAttrs::from_input(input),
        vec![format!("rootfs.{ip}")],
    )
}

/// Runs `<type>.sh` (idempotent: update is the same).
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let attrs: RuntimeAttrs = super::step_attributes(change, change.after())?;
    run_script(r, change, &format!("{}.sh", attrs.kind)).await?;
    Ok(Attributes::new())
}

/// Runs `uninstall-<type>.sh` of the recorded type.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let attrs: RuntimeAttrs = super::step_attributes(change, change.before.as_ref())?;
    run_script(r, change, &format!("uninstall-{}.sh", attrs.kind)).await
}

/// Reads the runtime back: its command is installed and says the recorded version.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let attrs: RuntimeAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let tool = quote(&attrs.kind);
    let out = r
        .probe(
            &host,
            format!("command -v {tool} >/dev/null || exit 3\n{tool} --version\n"),
        )
        .await?;
    Ok(version_read_back(&attrs, &out))
}

fn version_read_back(attrs: &RuntimeAttrs, out: &Probe) -> ReadBack {
    if !out.ok && out.stdout.is_empty() && out.stderr.is_empty() {
        return ReadBack::gone(format!(
            "{} is not installed: `command -v {}` finds nothing",
            attrs.kind, attrs.kind
        ));
    }
    if !out.ok {
        return ReadBack::Drifted(vec![format!(
            "`{} --version` fails: {}",
            attrs.kind,
            out.stderr_line()
        )]);
    }
    let said = out.stdout.lines().next().unwrap_or_default().trim();
    if attrs.version.is_empty()
        || said
            .split([' ', ','])
            .any(|w| w.trim_start_matches('v') == attrs.version)
    {
        return ReadBack::AsRecorded;
    }
    ReadBack::Drifted(vec![format!(
        "`{} --version` says {said:?}, recorded version {}",
        attrs.kind, attrs.version
    )])
}

/// Runs the image script `name` on the change's host with its env.
async fn run_script(r: &Runner, change: &Change, name: &str) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    let script = steps::image_script(&ctx.rootfs, r.exports(&host), name, &[]);
    r.run(&change.address, &host, script, Stdin::Null).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    #[test]
    fn attributes_round_trip() {
        let attrs = RuntimeAttrs {
            kind: "containerd".to_string(),
            version: "1.6.2".to_string(),
        };
        let map = to_attributes(&attrs);
        assert_eq!(map["type"], json!("containerd"));
        let back: RuntimeAttrs = from_attributes("container_runtime.10.0.0.2", &map).unwrap();
        assert_eq!(back, attrs);
    }

    #[test]
    fn a_recorded_runtime_reads_back() {
        let recorded: Attributes =
            serde_json::from_value(json!({"type": "docker", "version": "19.03.15"})).unwrap();
        let back: RuntimeAttrs = from_attributes("container_runtime.10.0.0.2", &recorded).unwrap();
        assert_eq!(back.kind, "docker");
        assert_eq!(back.version, "19.03.15");
        assert_eq!(to_attributes(&back), recorded);
    }

    #[test]
    fn a_read_back_runtime_checks_its_command_and_version() {
        let attrs = RuntimeAttrs {
            kind: "containerd".to_string(),
            version: "1.6.24".to_string(),
        };
        let probe = |ok: bool, stdout: &str, stderr: &str| Probe {
            ok,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        };
        let real = "containerd github.com/containerd/containerd v1.6.24 61f9fd88\n";
        assert_eq!(
            version_read_back(&attrs, &probe(true, real, "")),
            ReadBack::AsRecorded
        );
        let docker = RuntimeAttrs {
            kind: "docker".to_string(),
            version: "19.03.15".to_string(),
        };
        let said = "Docker version 19.03.15, build 99e3ed8\n";
        assert_eq!(
            version_read_back(&docker, &probe(true, said, "")),
            ReadBack::AsRecorded
        );
        let older = "containerd github.com/containerd/containerd v1.6.2 abc\n";
        assert!(version_read_back(&attrs, &probe(true, older, "")).drifted());
        assert_eq!(
            version_read_back(&attrs, &probe(false, "", "")),
            ReadBack::gone("containerd is not installed: `command -v containerd` finds nothing")
        );
    }
}
