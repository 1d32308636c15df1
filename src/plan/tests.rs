use super::human::{Style, render};
use super::markdown::render_markdown;
use super::saved::SavedPlan;
use super::teardown::Teardown;
use super::*;
use crate::resource::{Recorded, Status};
use serde_json::json;
use std::collections::BTreeMap;

fn desired(address: &str, t: ResourceType, attrs: serde_json::Value, deps: &[&str]) -> Desired {
    let attributes: Attributes = attrs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Desired {
        address: address.into(),
        resource_type: t,
        host: address
            .rsplit_once('.')
            .map(|_| "10.0.0.1".to_string())
            .filter(|_| t != ResourceType::App && t != ResourceType::KubernetesInit),
        attributes,
        sensitive: Default::default(),
        computed: Default::default(),
        replace_on: Default::default(),
        depends_on: deps.iter().map(|s| s.to_string()).collect(),
    }
}

fn record(d: &Desired) -> Recorded {
    Recorded::applied(d, Attributes::new())
}

fn state_of(ds: &[Desired]) -> BTreeMap<String, Recorded> {
    ds.iter().map(|d| (d.address.clone(), record(d))).collect()
}

fn current(resources: &BTreeMap<String, Recorded>) -> Current<'_> {
    Current {
        lineage: "11111111-2222-4333-8444-555555555555",
        serial: 7,
        resources,
    }
}

fn cluster() -> Vec<Desired> {
    let mut host = desired(
        "host.10.0.0.1",
        ResourceType::Host,
        json!({"arch": null, "aliases": ["10.0.0.9 foo.local"]}),
        &[],
    );
    host.computed.insert("arch".into());
    host.sensitive.insert("password".into());
    host.attributes
        .insert("password".into(), json!("sha256:aaaa"));
    let mut runtime = desired(
        "container_runtime.10.0.0.1",
        ResourceType::ContainerRuntime,
        json!({"type": "containerd", "version": "1.6"}),
        &["host.10.0.0.1"],
    );
    runtime.replace_on.insert("type".into());
    let mut init = desired(
        "kubernetes.init",
        ResourceType::KubernetesInit,
        json!({"kube_version": "v1.22.15", "master0": "10.0.0.1", "kubeadm_config": "a: 1\nb: 2\n"}),
        &["container_runtime.10.0.0.1"],
    );
    init.replace_on.insert("kubeadm_config".into());
    // master0: it lives in the host's container runtime.
    init.host = Some("10.0.0.1".into());
    let app = desired(
        "app.nginx",
        ResourceType::App,
        json!({"files": {"a.yaml": "sha256:1", "b.yaml": "sha256:2"}, "cmds": ["kubectl apply -f a.yaml"]}),
        &["kubernetes.init"],
    );
    vec![app, init, runtime, host]
}

/// The plan of `desired` against what `state` recorded.
fn plan_against(desired: &[Desired], state: &BTreeMap<String, Recorded>) -> Plan {
    diff("c1", desired, Some(current(state)), &PlanOptions::default()).unwrap()
}

/// The plan of `sealer destroy` for what `state` recorded.
fn destroy(state: &BTreeMap<String, Recorded>) -> Plan {
    let options = PlanOptions {
        destroy: true,
        ..Default::default()
    };
    diff("c1", &[], Some(current(state)), &options).unwrap()
}

fn actions(plan: &Plan) -> Vec<(String, &'static str, String)> {
    plan.changes
        .iter()
        .map(|c| (c.address.clone(), c.action.as_str(), c.reason.clone()))
        .collect()
}

#[test]
fn a_new_cluster_creates_everything_in_dependency_order() {
    let plan = diff("c1", &cluster(), None, &PlanOptions::default()).unwrap();
    let got: Vec<String> = plan.changes.iter().map(|c| c.address.clone()).collect();
    assert_eq!(
        got,
        vec![
            "host.10.0.0.1",
            "container_runtime.10.0.0.1",
            "kubernetes.init",
            "app.nginx"
        ]
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| c.action == Action::Create && c.reason == "new in configuration")
    );
    let text = render(&plan, Style::default());
    assert!(
        text.starts_with("Cluster \"c1\" has no state yet: this plan creates it.\n"),
        "{text}"
    );
    assert!(
        text.contains("      + arch     = (known after apply)\n"),
        "{text}"
    );
    assert!(
        text.contains("      + password = (sensitive value)\n"),
        "{text}"
    );
    assert!(!text.contains("sha256:aaaa"), "{text}");
    assert!(
        text.ends_with("Plan: 4 to add, 0 to change, 0 to destroy.\n"),
        "{text}"
    );
}

#[test]
fn an_applied_cluster_has_no_changes() {
    let ds = cluster();
    let state = state_of(&ds);
    let plan = plan_against(&ds, &state);
    assert!(!plan.has_changes());
    assert_eq!(plan.unchanged, 4);
    assert_eq!(
        render(&plan, Style::default()),
        "No changes. Cluster \"c1\" matches the configuration.\n"
    );
}

#[test]
fn a_changed_app_file_updates_only_that_app_and_names_the_file() {
    let mut ds = cluster();
    let state = state_of(&ds);
    ds[0].attributes.insert(
        "files".into(),
        json!({"a.yaml": "sha256:1", "b.yaml": "sha256:3"}),
    );
    let plan = plan_against(&ds, &state);
    assert_eq!(
        actions(&plan),
        vec![("app.nginx".into(), "update", "files changed: b.yaml".into())]
    );
    let text = render(&plan, Style::default());
    assert!(
        text.contains(
            "  ~ app.nginx {\n      ~ files = {\n          ~ \"b.yaml\" = \"sha256:2\" -> \"sha256:3\"\n            # (1 unchanged element hidden)\n        }\n        # (1 unchanged attribute hidden)\n    }\n"
        ),
        "{text}"
    );
}

#[test]
fn a_forcing_change_replaces_and_dependents_that_live_in_it_follow() {
    let mut ds = cluster();
    let state = state_of(&ds);
    ds[2].attributes.insert("type".into(), json!("docker"));
    let plan = plan_against(&ds, &state);
    assert_eq!(
        actions(&plan),
        vec![
            (
                "container_runtime.10.0.0.1".into(),
                "replace",
                "attribute type changed".into()
            ),
            (
                "kubernetes.init".into(),
                "replace",
                "replaced with container_runtime.10.0.0.1: uninstalling the container runtime removes its containers".into()
            ),
            (
                "app.nginx".into(),
                "replace",
                "replaced with kubernetes.init: kubeadm reset wipes etcd".into()
            ),
        ]
    );
    assert!(plan.changes.iter().all(|c| c.disruptive));
    assert_eq!(
        plan.summary().line(),
        "Plan: 3 to add, 0 to change, 3 to destroy."
    );
    let text = render(&plan, Style::default());
    assert!(text.contains("-/+ container_runtime.10.0.0.1 {\n      ~ type    = \"containerd\" -> \"docker\" # forces replacement\n"), "{text}");
}

#[test]
fn multi_line_text_changes_show_as_a_diff() {
    let mut ds = cluster();
    let state = state_of(&ds);
    ds[1]
        .attributes
        .insert("kubeadm_config".into(), json!("a: 1\nb: 3\n"));
    let plan = plan_against(&ds, &state);
    assert_eq!(plan.changes[0].reason, "attribute kubeadm_config changed");
    let text = render(&plan, Style::default());
    assert!(text.contains("<<-EOT # forces replacement\n            a: 1\n          - b: 2\n          + b: 3\n        EOT\n"), "{text}");
}

#[test]
fn tainted_and_requested_replacements() {
    let ds = cluster();
    let mut state = state_of(&ds);
    state.get_mut("app.nginx").unwrap().status = Status::Tainted;
    let options = PlanOptions {
        replace: vec!["host.10.0.0.1".into()],
        ..PlanOptions::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    assert_eq!(
        actions(&plan),
        vec![
            (
                "host.10.0.0.1".into(),
                "replace",
                "replace requested (--replace host.10.0.0.1)".into()
            ),
            (
                "container_runtime.10.0.0.1".into(),
                "replace",
                "replaced with host.10.0.0.1: a replaced host keeps nothing that ran on it".into()
            ),
            (
                "kubernetes.init".into(),
                "replace",
                "replaced with host.10.0.0.1: a replaced host keeps nothing that ran on it".into()
            ),
            (
                "app.nginx".into(),
                "replace",
                "tainted by a failed apply".into()
            ),
        ]
    );
    let err = diff(
        "c1",
        &ds,
        Some(current(&state)),
        &PlanOptions {
            replace: vec!["app.x".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: cannot replace app.x: it is not in the state"
    );
}

#[test]
fn removed_resources_are_destroyed_dependents_first() {
    let ds = cluster();
    let state = state_of(&ds);
    let plan = destroy(&state);
    let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "app.nginx",
            "kubernetes.init",
            "container_runtime.10.0.0.1",
            "host.10.0.0.1"
        ]
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| c.action == Action::Delete && c.reason == "the cluster is destroyed")
    );
    assert!(plan.changes[1].disruptive && !plan.changes[0].disruptive);
    let text = render(&plan, Style::default());
    assert!(text.contains("  - app.nginx { ... }\n"), "{text}");
    assert!(
        text.contains(
            "# kubernetes.init will be destroyed (the cluster is destroyed) [disruptive]"
        ),
        "{text}"
    );
}

#[test]
fn targets_keep_their_dependencies() {
    let plan = diff(
        "c1",
        &cluster(),
        None,
        &PlanOptions {
            targets: vec!["kubernetes.init".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "host.10.0.0.1",
            "container_runtime.10.0.0.1",
            "kubernetes.init"
        ]
    );
    let err = diff(
        "c1",
        &cluster(),
        None,
        &PlanOptions {
            targets: vec!["app.none".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--target app.none: no such resource"),
        "{err}"
    );
}

#[test]
fn master0_changes_are_plan_errors_even_in_an_upgrade() {
    let mut ds = cluster();
    let state = state_of(&ds);
    ds[1]
        .attributes
        .insert("kube_version".into(), json!("v1.23.0"));
    ds[1].attributes.insert("master0".into(), json!("10.0.0.2"));
    let err = diff("c1", &ds, Some(current(&state)), &PlanOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("upgrad"),
        "the upgrade itself is fine: {text}"
    );
    assert!(
        text.contains("master0 cannot be removed or changed"),
        "{text}"
    );
}

#[test]
fn plugins_wait_for_their_phase() {
    let mut ds = cluster();
    let plugin = desired(
        "plugin.p.post-install",
        ResourceType::Plugin,
        json!({"phase": "post-install", "data": "echo 1"}),
        &["kubernetes.init"],
    );
    ds.push(plugin);
    let state = state_of(&ds);
    ds[4].attributes.insert("data".into(), json!("echo 2"));
    let plan = plan_against(&ds, &state);
    assert!(
        !plan.has_changes(),
        "post-install does not occur in this plan"
    );
    let new = diff("c1", &ds, None, &PlanOptions::default()).unwrap();
    assert!(
        new.changes
            .iter()
            .any(|c| c.address == "plugin.p.post-install")
    );
    // An apply killed while the plugin ran left it tainted: its phase did occur, and the
    // next plan runs it again to finish that apply.
    let mut killed = state.clone();
    killed.get_mut("plugin.p.post-install").unwrap().status = Status::Tainted;
    let resumed = plan_against(&ds, &killed);
    assert_eq!(
        change_of(&resumed, "plugin.p.post-install").map(|c| c.reason_code),
        Some(ReasonCode::ReplaceBecauseTainted)
    );
}

/// Master 10.0.0.1, worker 10.0.0.2 and the four teardown plugins.
fn cluster_with_teardown_plugins() -> Vec<Desired> {
    let on = |mut d: Desired, host: &str| {
        d.host = Some(host.to_string());
        d
    };
    let plugin = |phase: &str, host: &str| {
        let address = if phase.ends_with("uninstall") {
            format!("plugin.p.{phase}")
        } else {
            format!("plugin.p.{phase}.{host}")
        };
        let rootfs = format!("rootfs.{host}");
        on(
            desired(
                &address,
                ResourceType::Plugin,
                json!({"phase": phase, "data": format!("echo {phase}")}),
                &[&rootfs],
            ),
            host,
        )
    };
    let mut ds = Vec::new();
    for host in ["10.0.0.1", "10.0.0.2"] {
        let h = format!("host.{host}");
        let r = format!("rootfs.{host}");
        let c = format!("container_runtime.{host}");
        ds.push(on(desired(&h, ResourceType::Host, json!({}), &[]), host));
        ds.push(on(
            desired(&r, ResourceType::Rootfs, json!({}), &[&h]),
            host,
        ));
        ds.push(on(
            desired(&c, ResourceType::ContainerRuntime, json!({}), &[&r]),
            host,
        ));
    }
    ds.push(desired(
        "kubernetes.init",
        ResourceType::KubernetesInit,
        json!({}),
        &["container_runtime.10.0.0.1"],
    ));
    ds.push(on(
        desired(
            "kubernetes.worker.10.0.0.2",
            ResourceType::KubernetesWorker,
            json!({}),
            &["kubernetes.init", "container_runtime.10.0.0.2"],
        ),
        "10.0.0.2",
    ));
    ds.push(desired(
        "app.nginx",
        ResourceType::App,
        json!({}),
        &["kubernetes.init", "kubernetes.worker.10.0.0.2"],
    ));
    ds.push(plugin("pre-uninstall", "10.0.0.1"));
    ds.push(plugin("post-uninstall", "10.0.0.1"));
    ds.push(plugin("pre-clean-host", "10.0.0.2"));
    ds.push(plugin("post-clean-host", "10.0.0.2"));
    ds
}

fn position(plan: &Plan, address: &str) -> usize {
    plan.changes
        .iter()
        .position(|c| c.address == address)
        .unwrap_or_else(|| panic!("{address} not in {:?}", actions(plan)))
}

#[test]
fn teardown_plugins_are_armed_when_applied() {
    let plan = diff(
        "c1",
        &cluster_with_teardown_plugins(),
        None,
        &PlanOptions::default(),
    )
    .unwrap();
    let reason = |a: &str| plan.changes[position(&plan, a)].reason.clone();
    assert_eq!(
        reason("plugin.p.pre-uninstall"),
        "new in configuration; runs only when the cluster is destroyed"
    );
    assert_eq!(
        reason("plugin.p.post-clean-host.10.0.0.2"),
        "new in configuration; runs only when its host leaves the cluster"
    );
    assert!(Teardown::of(&plan.changes) == Teardown::default());
    assert!(plan.changes.iter().all(|c| !Teardown::default().runs(c)));
}

#[test]
fn a_destroy_runs_teardown_plugins_around_what_they_tear_down() {
    let ds = cluster_with_teardown_plugins();
    let state = state_of(&ds);
    let plan = destroy(&state);
    let teardown = Teardown::of(&plan.changes);
    assert!(teardown.cluster);
    let at = |a: &str| position(&plan, a);
    let pre_uninstall = at("plugin.p.pre-uninstall");
    assert_eq!(pre_uninstall, 0, "{:?}", actions(&plan));
    assert!(teardown.runs(&plan.changes[pre_uninstall]));
    assert_eq!(
        plan.changes[pre_uninstall].reason,
        "the cluster is destroyed; runs now, at pre-uninstall"
    );
    let pre_clean = at("plugin.p.pre-clean-host.10.0.0.2");
    let post_clean = at("plugin.p.post-clean-host.10.0.0.2");
    let post_uninstall = at("plugin.p.post-uninstall");
    assert!(pre_clean < at("kubernetes.worker.10.0.0.2"));
    assert!(post_clean > at("container_runtime.10.0.0.2"));
    assert!(post_clean < at("rootfs.10.0.0.2"));
    assert!(post_uninstall > at("kubernetes.init"));
    assert!(post_uninstall > post_clean);
    assert!(post_uninstall < at("rootfs.10.0.0.1"));
    // The executor waits on the same dependencies the order came from.
    let change = |i: usize| &plan.changes[i];
    assert!(
        change(at("kubernetes.init"))
            .depends_on
            .contains(&"plugin.p.post-uninstall".to_string())
    );
    assert!(
        change(pre_clean)
            .depends_on
            .contains(&"kubernetes.worker.10.0.0.2".to_string())
    );
    let saved = SavedPlan {
        plan: plan.clone(),
        clusterfile: None,
        clusterfile_digest: None,
        images: BTreeMap::new(),
    };
    let back = SavedPlan::from_bytes(&saved.to_bytes(), std::path::Path::new("p")).unwrap();
    assert_eq!(back.plan.changes, plan.changes);
}

#[test]
fn scale_down_runs_only_the_leaving_hosts_clean_host_plugins() {
    let ds = cluster_with_teardown_plugins();
    let state = state_of(&ds);
    let stays: Vec<Desired> = ds
        .iter()
        .filter(|d| d.host.as_deref() != Some("10.0.0.2"))
        .cloned()
        .map(|mut d| {
            d.depends_on.retain(|a| !a.ends_with("10.0.0.2"));
            d
        })
        .collect();
    let plan = plan_against(&stays, &state);
    let teardown = Teardown::of(&plan.changes);
    assert!(!teardown.cluster);
    let at = |a: &str| position(&plan, a);
    assert!(at("plugin.p.pre-clean-host.10.0.0.2") < at("kubernetes.worker.10.0.0.2"));
    assert!(at("plugin.p.post-clean-host.10.0.0.2") > at("container_runtime.10.0.0.2"));
    assert!(at("plugin.p.post-clean-host.10.0.0.2") < at("rootfs.10.0.0.2"));
    assert!(
        plan.changes
            .iter()
            .all(|c| !c.address.contains("uninstall"))
    );
    assert_eq!(
        plan.changes[at("plugin.p.pre-clean-host.10.0.0.2")].reason,
        "removed from configuration; runs now, at pre-clean-host"
    );
}

#[test]
fn a_teardown_plugin_removed_from_the_configuration_is_forgotten() {
    let ds = cluster_with_teardown_plugins();
    let state = state_of(&ds);
    let without: Vec<Desired> = ds
        .iter()
        .filter(|d| d.resource_type != ResourceType::Plugin)
        .cloned()
        .collect();
    let plan = plan_against(&without, &state);
    assert_eq!(plan.changes.len(), 4, "{:?}", actions(&plan));
    let teardown = Teardown::of(&plan.changes);
    for c in &plan.changes {
        assert!(!teardown.runs(c), "{}", c.address);
        assert!(
            c.reason.contains("forgotten without running"),
            "{}",
            c.reason
        );
    }
}

#[test]
fn cycles_name_every_member() {
    let a = desired("app.a", ResourceType::App, json!({}), &["app.b"]);
    let b = desired("app.b", ResourceType::App, json!({}), &["app.a"]);
    let err = diff("c1", &[a, b], None, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("dependency cycle between app.a, app.b"),
        "{err}"
    );
}

#[test]
fn json_matches_the_schema_and_redacts_secrets() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../state-schema/plan.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let ds = cluster();
    let state = state_of(&ds);
    let mut changed = ds.clone();
    changed[2].attributes.insert("type".into(), json!("docker"));
    for plan in [
        diff("c1", &ds, None, &PlanOptions::default()).unwrap(),
        plan_against(&changed, &state),
        diff(
            "c1",
            &[],
            Some(current(&state)),
            &PlanOptions {
                destroy: true,
                ..Default::default()
            },
        )
        .unwrap(),
    ] {
        let value = json::to_json(&plan);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{value:#}");
        assert!(!value.to_string().contains("sha256:aaaa"));
    }
    let located = crate::diag::Diagnostic::error("boom")
        .at(crate::diag::Location::new("Clusterfile", 3, 0))
        .hint("fix it")
        .hint("or that");
    let failed = json::errors_json(Some("c1"), &[located, crate::diag::Diagnostic::error("b")]);
    assert!(validator.is_valid(&failed), "{failed:#}");
    assert_eq!(
        failed["errors"][0],
        json!({"message": "boom", "file": "Clusterfile", "line": 3, "column": 1, "hint": "fix it\nor that"})
    );
    assert_eq!(
        failed["errors"][1],
        json!({"message": "b", "file": null, "line": null, "column": null, "hint": null})
    );
    assert!(validator.is_valid(&json::errors_json(
        None,
        &[crate::diag::Diagnostic::error("c")]
    )));
}

#[test]
fn saved_plans_round_trip_and_refuse_stale_state() {
    let ds = cluster();
    let state = state_of(&ds);
    let mut changed = ds.clone();
    changed[0].attributes.insert("cmds".into(), json!(["x"]));
    let mut plan = plan_against(&changed, &state);
    plan.targets = vec!["app.nginx".into()];
    let saved = SavedPlan {
        plan,
        clusterfile: Some("Clusterfile".into()),
        clusterfile_digest: Some("sha256:cf".into()),
        images: BTreeMap::from([("k8s:v1".to_string(), "sha256:img".to_string())]),
    };
    let path = std::path::Path::new("plan.bin");
    let back = SavedPlan::from_bytes(&saved.to_bytes(), path).unwrap();
    assert_eq!(back, saved);
    assert!(
        back.plan
            .check_fresh(Some("11111111-2222-4333-8444-555555555555"), 7)
            .is_ok()
    );
    assert_eq!(
        back.plan
            .check_fresh(Some("11111111-2222-4333-8444-555555555555"), 12)
            .unwrap_err()
            .to_string(),
        "error: saved plan is stale: state serial is 12, the plan was made at 7"
    );
    assert!(
        back.plan
            .check_fresh(Some("other"), 7)
            .unwrap_err()
            .to_string()
            .contains("another state")
    );
    assert!(
        SavedPlan::from_bytes(b"{}", path)
            .unwrap_err()
            .to_string()
            .contains("is not a saved sealer plan")
    );
}

#[test]
fn markdown_fits_the_limit_keeping_summary_warnings_and_table() {
    let mut ds = Vec::new();
    for i in 0..2000 {
        ds.push(desired(
            &format!("kubernetes.worker.10.1.{}.{}", i / 250, i % 250),
            ResourceType::KubernetesWorker,
            json!({"api_endpoint": "10.0.0.1"}),
            &[],
        ));
    }
    let state = state_of(&ds);
    let plan = diff(
        "big",
        &[],
        Some(current(&state)),
        &PlanOptions {
            destroy: true,
            ..Default::default()
        },
    )
    .unwrap();
    let md = render_markdown(&plan, markdown::DEFAULT_LIMIT);
    assert!(md.len() <= markdown::DEFAULT_LIMIT, "{}", md.len());
    assert!(md.starts_with("### sealer plan for cluster `big` (destroy): Plan: 0 to add, 0 to change, 2000 to destroy.\n"));
    assert!(md.contains("> [!WARNING]\n> **2000 disruptive changes**"));
    assert!(md.contains("| - delete | `kubernetes.worker."));
    assert!(md.contains("more changes not shown"));
    assert!(md.contains("<details><summary>Full plan"));
    assert!(md.contains("more lines not shown") || md.contains("```\n\n</details>"));
    assert_eq!(
        md,
        render_markdown(&plan, markdown::DEFAULT_LIMIT),
        "deterministic"
    );
}

/// The resources of the 3×3 test cluster (graph fixture), applied.
fn applied_three_by_three() -> (Vec<Desired>, BTreeMap<String, Recorded>) {
    let ds = crate::graph::compile(&crate::graph::tests::three_by_three());
    let state = state_of(&ds);
    (ds, state)
}

fn change_of<'a>(plan: &'a Plan, address: &str) -> Option<&'a Change> {
    plan.changes.iter().find(|c| c.address == address)
}

#[test]
fn replacing_kubernetes_init_takes_every_join_node_app_and_cluster_plugin_with_it() {
    let (ds, state) = applied_three_by_three();
    let mut changed = ds.clone();
    let init = changed
        .iter_mut()
        .find(|d| d.address == "kubernetes.init")
        .unwrap();
    init.attributes.insert(
        "kubeadm_config".into(),
        json!("---\nkind: KubeletConfiguration\nmaxPods: 250\n"),
    );
    let plan = plan_against(&changed, &state);
    let init = change_of(&plan, "kubernetes.init").unwrap();
    assert_eq!(init.action, Action::Replace);
    assert_eq!(init.reason_code, ReasonCode::ReplaceBecauseCannotUpdate);
    let taken: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.caused_by.as_deref() == Some("kubernetes.init"))
        .map(|c| c.address.as_str())
        .collect();
    for expected in [
        "kubernetes.master.10.0.0.3",
        "kubernetes.master.10.0.0.4",
        "kubernetes.worker.10.0.0.5",
        "node_meta.10.0.0.2",
        "node_meta.10.0.0.7",
        "plugin.label.post-install",
        "app.calico",
        "app.nginx",
    ] {
        assert!(taken.contains(&expected), "{expected} not in {taken:?}");
    }
    for c in plan.changes.iter().filter(|c| c.caused_by.is_some()) {
        assert_eq!(c.action, Action::Replace, "{}", c.address);
        assert_eq!(c.reason_code, ReasonCode::ReplaceBecauseDependencyReplaced);
        assert_eq!(
            c.reason, "replaced with kubernetes.init: kubeadm reset wipes etcd",
            "{}",
            c.address
        );
        assert!(c.disruptive, "{}", c.address);
    }
    // What does not live in the cluster's API stays.
    for untouched in [
        "registry.10.0.0.2",
        "container_runtime.10.0.0.5",
        "host.10.0.0.5",
    ] {
        assert!(change_of(&plan, untouched).is_none(), "{untouched}");
    }
    let text = render(&plan, Style::default());
    let warnings = text.split("Warning: ").nth(1).expect("a warning block");
    assert!(
        warnings.starts_with(&format!(
            "{} disruptive changes, {} of them taken with a replacement\n",
            taken.len() + 1,
            taken.len()
        )),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "  - app.nginx must be replaced (replaced with kubernetes.init: kubeadm reset wipes etcd)\n"
        ),
        "{warnings}"
    );
    let md = render_markdown(&plan, markdown::DEFAULT_LIMIT);
    assert!(md.contains("> - `app.nginx` must be replaced (replaced with kubernetes.init"));
    let json = json::to_json(&plan).to_string();
    assert!(json.contains(r#""caused_by":"kubernetes.init""#), "{json}");
}

#[test]
fn replace_requested_for_kubernetes_init_shows_the_same_blast_radius() {
    let (ds, state) = applied_three_by_three();
    let options = PlanOptions {
        replace: vec!["kubernetes.init".into()],
        ..Default::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    assert_eq!(
        change_of(&plan, "kubernetes.init").unwrap().reason_code,
        ReasonCode::ReplaceByRequest
    );
    assert_eq!(
        change_of(&plan, "app.nginx").unwrap().caused_by.as_deref(),
        Some("kubernetes.init")
    );
}

#[test]
fn replacing_a_container_runtime_takes_only_that_hosts_containers() {
    let (ds, state) = applied_three_by_three();
    let mut changed = ds.clone();
    changed
        .iter_mut()
        .find(|d| d.address == "container_runtime.10.0.0.5")
        .unwrap()
        .attributes
        .insert("version".into(), json!("1.7.0"));
    let plan = plan_against(&changed, &state);
    let replaced: BTreeMap<&str, Option<&str>> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| (c.address.as_str(), c.caused_by.as_deref()))
        .collect();
    assert_eq!(
        replaced,
        BTreeMap::from([
            ("container_runtime.10.0.0.5", None),
            (
                "registry_client.10.0.0.5",
                Some("container_runtime.10.0.0.5")
            ),
            (
                "kubernetes.worker.10.0.0.5",
                Some("container_runtime.10.0.0.5")
            ),
            ("node_meta.10.0.0.5", Some("container_runtime.10.0.0.5")),
        ])
    );
    assert_eq!(
        change_of(&plan, "node_meta.10.0.0.5").unwrap().reason,
        "replaced with container_runtime.10.0.0.5: uninstalling the container runtime removes its containers"
    );
}

#[test]
fn replacing_a_host_takes_everything_on_it_and_a_worker_join_takes_its_node_meta() {
    let (ds, state) = applied_three_by_three();
    let options = PlanOptions {
        replace: vec!["host.10.0.0.6".into(), "kubernetes.worker.10.0.0.7".into()],
        ..Default::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    for address in [
        "rootfs.10.0.0.6",
        "container_runtime.10.0.0.6",
        "registry_client.10.0.0.6",
        "kubernetes.worker.10.0.0.6",
        "node_meta.10.0.0.6",
    ] {
        assert_eq!(
            change_of(&plan, address).map(|c| c.caused_by.as_deref()),
            Some(Some("host.10.0.0.6")),
            "{address}"
        );
    }
    assert_eq!(
        change_of(&plan, "node_meta.10.0.0.7").unwrap().reason,
        "replaced with kubernetes.worker.10.0.0.7: kubeadm reset removes the node"
    );
    assert!(change_of(&plan, "app.nginx").is_none(), "apps stay");
}

#[test]
fn a_replaced_join_takes_its_post_init_host_plugin_and_other_plugins_stay() {
    let mut input = crate::graph::tests::three_by_three();
    input.plugins[0].phases.push("post-init-host".into());
    input.plugins[0].scope = vec!["node".into()];
    let ds = crate::graph::compile(&input);
    let state = state_of(&ds);
    let options = PlanOptions {
        replace: vec!["kubernetes.worker.10.0.0.5".into()],
        ..Default::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    let taken: Vec<(&str, Option<&str>)> = plan
        .changes
        .iter()
        .map(|c| (c.address.as_str(), c.caused_by.as_deref()))
        .collect();
    assert_eq!(
        taken,
        vec![
            ("kubernetes.worker.10.0.0.5", None),
            ("node_meta.10.0.0.5", Some("kubernetes.worker.10.0.0.5")),
            (
                "plugin.label.post-init-host.10.0.0.5",
                Some("kubernetes.worker.10.0.0.5")
            ),
        ]
    );
}

#[test]
fn a_plan_file_names_its_clusterfile_relative_to_itself() {
    let ds = cluster();
    let saved = SavedPlan {
        plan: diff("c1", &ds, None, &PlanOptions::default()).unwrap(),
        clusterfile: Some("/src/repo/clusters/prod/Clusterfile".into()),
        clusterfile_digest: Some("sha256:cf".into()),
        images: BTreeMap::new(),
    };
    let at = |file: &str| saved.clone().stored_at(std::path::Path::new(file));
    let stored = at("/src/repo/plan.bin");
    assert_eq!(
        stored.clusterfile.as_deref(),
        Some(std::path::Path::new("clusters/prod/Clusterfile"))
    );
    assert_eq!(
        at("/tmp/x/plan.bin").clusterfile.as_deref(),
        Some(std::path::Path::new(
            "../../src/repo/clusters/prod/Clusterfile"
        ))
    );
    // Moved together, the plan still finds its Clusterfile.
    assert_eq!(
        stored.clusterfile_for(std::path::Path::new("/ci/checkout/plan.bin")),
        Some("/ci/checkout/clusters/prod/Clusterfile".into())
    );
}

#[test]
fn markdown_says_where_the_plan_comes_from_its_targeting_and_sorts_ips_as_numbers() {
    let (ds, state) = applied_three_by_three();
    let options = PlanOptions {
        targets: vec!["kubernetes.worker.10.0.0.5".into()],
        replace: vec!["kubernetes.worker.10.0.0.5".into()],
        ..Default::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    // The node's labels go with the reset: they are in the partial plan too.
    assert!(
        plan.changes
            .iter()
            .any(|c| c.address == "node_meta.10.0.0.5"
                && c.caused_by.as_deref() == Some("kubernetes.worker.10.0.0.5")),
        "{:?}",
        plan.changes
    );
    let md = render_markdown(&plan, markdown::DEFAULT_LIMIT);
    assert!(
        md.contains("<sub>state serial 7 · lineage `11111111` · sealer "),
        "{md}"
    );
    assert!(
        md.contains(
            "> [!WARNING]\n> **Partial plan**: `--target` `kubernetes.worker.10.0.0.5` limits it"
        ),
        "{md}"
    );
    assert!(
        md.contains("**Replaced on request** (`--replace`): `kubernetes.worker.10.0.0.5`"),
        "{md}"
    );
    assert!(md.contains("| kubernetes_worker |  |  | 1 |  |"), "{md}");
    assert!(md.contains("#### Destroyed and replaced\n"), "{md}");
    let human = super::human::render(&plan, super::human::Style { color: false });
    assert!(
        human.contains(
            "Warning: this plan is partial\n  --target kubernetes.worker.10.0.0.5 limits it"
        ),
        "{human}"
    );

    // Worker IPs .5 .. .20 appear by number, not as text (.10 after .9).
    let mut ds = ds.clone();
    for i in 8..=20 {
        ds.push(desired(
            &format!("kubernetes.worker.10.0.0.{i}"),
            ResourceType::KubernetesWorker,
            json!({"api_endpoint": "10.0.0.1"}),
            &[],
        ));
    }
    let plan = diff("c1", &ds, Some(current(&state)), &PlanOptions::default()).unwrap();
    let md = render_markdown(&plan, markdown::DEFAULT_LIMIT);
    let at = |ip: &str| {
        md.find(&format!("`kubernetes.worker.10.0.0.{ip}`"))
            .unwrap()
    };
    assert!(
        at("8") < at("9") && at("9") < at("10") && at("10") < at("20"),
        "{md}"
    );
}

fn drifted(gone: bool, finding: &str, recorded_at: Option<u64>) -> Option<crate::resource::Drift> {
    Some(crate::resource::Drift {
        gone,
        findings: vec![finding.to_string()],
        recorded_at,
    })
}

#[test]
fn drift_is_repaired_by_running_the_step_again_or_by_a_new_join() {
    let (ds, mut state) = applied_three_by_three();
    state.get_mut("rootfs.10.0.0.6").unwrap().drift = drifted(
        false,
        "1 of its files changed since sealer wrote them: scripts/containerd.sh",
        Some(9),
    );
    state.get_mut("app.nginx").unwrap().drift =
        drifted(true, "release nginx is not installed", None);
    state.get_mut("kubernetes.worker.10.0.0.7").unwrap().drift =
        drifted(true, "node node-7 is not in `kubectl get nodes`", None);
    let plan = plan_against(&ds, &state);

    let rootfs = change_of(&plan, "rootfs.10.0.0.6").unwrap();
    assert_eq!(rootfs.action, Action::Update);
    assert_eq!(rootfs.reason_code, ReasonCode::UpdateBecauseDrifted);
    assert_eq!(
        rootfs.reason,
        "drifted on its host (recorded by a refresh at state serial 9): 1 of its files changed since sealer wrote them: scripts/containerd.sh"
    );
    let app = change_of(&plan, "app.nginx").unwrap();
    assert_eq!(
        (app.action, app.reason.as_str()),
        (
            Action::Update,
            "gone from its host: release nginx is not installed"
        )
    );
    let worker = change_of(&plan, "kubernetes.worker.10.0.0.7").unwrap();
    assert_eq!(worker.action, Action::Replace);
    assert_eq!(worker.reason_code, ReasonCode::ReplaceBecauseDrifted);
    // A new join takes its node's labels with it: the plan shows that too.
    assert_eq!(
        change_of(&plan, "node_meta.10.0.0.7")
            .unwrap()
            .caused_by
            .as_deref(),
        Some("kubernetes.worker.10.0.0.7")
    );
    assert!(change_of(&plan, "rootfs.10.0.0.7").is_none());
    assert_eq!(plan.changes.len(), 4, "{:?}", actions(&plan));
}

#[test]
fn a_drifted_control_plane_is_a_plan_error_unless_its_replacement_is_asked_for() {
    let (ds, mut state) = applied_three_by_three();
    state.get_mut("kubernetes.init").unwrap().drift = drifted(
        false,
        "/etc/kubernetes/kubeadm.yaml is not the configuration kubeadm init was given",
        Some(9),
    );
    let err = diff("c1", &ds, Some(current(&state)), &PlanOptions::default()).unwrap_err();
    let d = &err.diagnostics()[0];
    assert!(
        d.message
            .starts_with("kubernetes.init: drifted on its host"),
        "{}",
        d.message
    );
    assert!(
        d.hints
            .iter()
            .any(|h| h.contains("--replace kubernetes.init")),
        "{:?}",
        d.hints
    );
    let options = PlanOptions {
        replace: vec!["kubernetes.init".into()],
        ..Default::default()
    };
    let plan = diff("c1", &ds, Some(current(&state)), &options).unwrap();
    assert_eq!(
        change_of(&plan, "kubernetes.init").unwrap().reason_code,
        ReasonCode::ReplaceByRequest
    );
    // Gone is another matter: there is no control plane left to keep.
    state.get_mut("kubernetes.init").unwrap().drift =
        drifted(true, "/etc/kubernetes/admin.conf is not there", None);
    let plan = plan_against(&ds, &state);
    assert_eq!(
        change_of(&plan, "kubernetes.init").unwrap().reason_code,
        ReasonCode::ReplaceBecauseDrifted
    );
}

#[test]
fn drift_and_a_configuration_change_make_one_update_that_names_both() {
    let mut ds = cluster();
    let mut state = state_of(&ds);
    state.get_mut("app.nginx").unwrap().drift = drifted(false, "objects of a.yaml: NotFound", None);
    ds[0].attributes.insert(
        "files".into(),
        json!({"a.yaml": "sha256:1", "b.yaml": "sha256:3"}),
    );
    let plan = plan_against(&ds, &state);
    let app = change_of(&plan, "app.nginx").unwrap();
    assert_eq!(app.reason_code, ReasonCode::UpdateBecauseDrifted);
    assert!(
        app.reason
            .starts_with("drifted on its host: objects of a.yaml: NotFound; "),
        "{}",
        app.reason
    );
    assert!(app.reason.contains("b.yaml"), "{}", app.reason);
}

/// The 3×3 cluster at `version`, its kubeadm configuration saying so.
fn three_by_three_at(version: &str) -> Vec<Desired> {
    let mut input = crate::graph::tests::three_by_three();
    input.kube_version = version.into();
    input.kubeadm_config = format!("kind: ClusterConfiguration\nkubernetesVersion: {version}\n");
    crate::graph::compile(&input)
}

#[test]
fn a_kubernetes_upgrade_updates_in_kubeadms_order_and_keeps_everything_else() {
    let state = state_of(&three_by_three_at("v1.22.15"));
    let desired = three_by_three_at("v1.23.17");
    let options = PlanOptions {
        max_unavailable: 2,
        ..Default::default()
    };
    let plan = diff("c1", &desired, Some(current(&state)), &options).unwrap();
    assert!(
        plan.changes.iter().all(|c| c.action == Action::Update
            && c.reason_code == ReasonCode::UpdateBecauseKubernetesUpgrade),
        "{:?}",
        actions(&plan)
    );
    let init = change_of(&plan, "kubernetes.init").unwrap();
    assert_eq!(
        init.reason,
        "upgrade Kubernetes v1.22.15 -> v1.23.17: `kubeadm upgrade apply` on master0"
    );
    let masters: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.resource_type == ResourceType::KubernetesMaster)
        .collect();
    let workers: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.resource_type == ResourceType::KubernetesWorker)
        .collect();
    assert_eq!((masters.len(), workers.len()), (2, 3));
    // Masters one after another after master0; workers after the masters, two at a time.
    assert!(
        masters[0]
            .depends_on
            .contains(&"kubernetes.init".to_string())
    );
    assert!(masters[1].depends_on.contains(&masters[0].address));
    for w in &workers {
        assert!(
            w.depends_on.contains(&masters[1].address),
            "{:?}",
            w.depends_on
        );
    }
    assert!(!workers[1].depends_on.contains(&workers[0].address));
    assert!(workers[2].depends_on.contains(&workers[0].address));
    assert!(!plan.changes.iter().any(|c| c.disruptive));
    assert_eq!(plan.max_unavailable, 2);
}

#[test]
fn skipping_a_minor_or_downgrading_kubernetes_is_a_plan_error() {
    let state = state_of(&three_by_three_at("v1.22.15"));
    for (to, says) in [
        ("v1.24.3", "skips a minor version"),
        ("v1.21.9", "downgrading Kubernetes from v1.22.15 to v1.21.9"),
    ] {
        let err = diff(
            "c1",
            &three_by_three_at(to),
            Some(current(&state)),
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn an_upgrade_stopped_after_master0_goes_on_with_the_other_nodes() {
    let old = three_by_three_at("v1.22.15");
    let new = three_by_three_at("v1.23.17");
    let mut state = state_of(&old);
    state.insert(
        "kubernetes.init".into(),
        record(new.iter().find(|d| d.address == "kubernetes.init").unwrap()),
    );
    let plan = plan_against(&new, &state);
    assert!(change_of(&plan, "kubernetes.init").is_none());
    let joins: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.address.starts_with("kubernetes."))
        .collect();
    assert_eq!(joins.len(), 5, "{:?}", actions(&plan));
    assert!(
        joins
            .iter()
            .all(|c| c.reason_code == ReasonCode::UpdateBecauseKubernetesUpgrade),
        "{:?}",
        actions(&plan)
    );
}

#[test]
fn a_saved_plan_keeps_the_rootfs_distribution_only_when_it_is_not_the_default() {
    use super::distribution::Mode;
    let desired = crate::graph::compile(&crate::graph::tests::three_by_three());
    let saved_with = |mode: Mode| {
        let options = PlanOptions {
            rootfs_distribution: mode,
            ..Default::default()
        };
        let plan = diff("c1", &desired, None, &options).unwrap();
        SavedPlan {
            plan,
            clusterfile: None,
            clusterfile_digest: None,
            images: BTreeMap::new(),
        }
    };
    let tree = saved_with(Mode::Tree);
    let bytes = tree.to_bytes();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("rootfs_distribution"),
        "older plans read the same"
    );
    let back = SavedPlan::from_bytes(&bytes, std::path::Path::new("p")).unwrap();
    assert_eq!(back.plan.rootfs_distribution, Mode::Tree);
    let direct = saved_with(Mode::Direct);
    let bytes = direct.to_bytes();
    assert!(String::from_utf8_lossy(&bytes).contains("\"rootfs_distribution\":\"direct\""));
    let back = SavedPlan::from_bytes(&bytes, std::path::Path::new("p")).unwrap();
    assert_eq!(back.plan.rootfs_distribution, Mode::Direct);
    assert_eq!(back.options().rootfs_distribution, Mode::Direct);
    // Direct: no tree in the plan, every rendering says nothing of it.
    let text = super::human::render(&back.plan, super::human::Style { color: false });
    assert!(!text.contains("Rootfs distribution"), "{text}");
    let json = super::json::to_json(&back.plan);
    assert_eq!(json["rootfs_distribution"]["mode"], "direct");
    assert_eq!(
        json["rootfs_distribution"]["sources"],
        serde_json::json!([])
    );
    let text = super::human::render(&tree.plan, super::human::Style { color: false });
    assert!(text.contains("Rootfs distribution (tree)"), "{text}");
}
