use super::*;
use crate::graph::tests::{host, three_by_three};
use crate::plan::context::Context;
use crate::plan::{Current, diff};
use crate::resource::Recorded;

fn plan_of(input: &crate::graph::ClusterInput, recorded: &[&crate::graph::ClusterInput]) -> Plan {
    let state: BTreeMap<String, Recorded> = recorded
        .iter()
        .flat_map(|i| crate::graph::compile(i))
        .map(|d| (d.address.clone(), Recorded::applied(&d, Default::default())))
        .collect();
    let current = (!recorded.is_empty()).then_some(Current {
        lineage: "11111111-2222-4333-8444-555555555555",
        serial: 3,
        resources: &state,
    });
    let mut plan = diff(
        &input.name,
        &crate::graph::compile(input),
        current,
        &PlanOptions::default(),
    )
    .unwrap();
    plan.context = Context::of_input(input);
    plan
}

const SIZES: ImageSizes = ImageSizes {
    rootfs: 100,
    registry: 50,
};

fn ports(need: &HostNeeds) -> Vec<u16> {
    need.ports.keys().copied().collect()
}

#[test]
fn a_new_cluster_checks_each_host_for_what_it_gets() {
    let needs = needs(&plan_of(&three_by_three(), &[]), SIZES);
    assert_eq!(needs.len(), 6);
    let master0 = &needs["10.0.0.2"];
    assert!(master0.platform && master0.runtime && master0.kubernetes);
    // The control plane's ports, and the registry's (HA: on every master).
    assert_eq!(
        ports(master0),
        [2379, 2380, 5000, 6443, 10250, 10257, 10259]
    );
    assert_eq!(ports(&needs["10.0.0.3"]), ports(master0));
    assert_eq!(
        master0.disk,
        Some(150),
        "a registry host also gets registry/"
    );
    let worker = &needs["10.0.0.5"];
    assert_eq!(ports(worker), [10250]);
    assert_eq!(worker.disk, Some(100));
    assert!(worker.kubernetes && worker.platform);
}

#[test]
fn a_scale_up_checks_only_the_new_host_and_an_unchanged_cluster_nothing() {
    let mut small = three_by_three();
    small.hosts.truncate(4);
    let mut grown = small.clone();
    grown.hosts.push(host("10.0.0.9", &["node"]));
    let needs = needs(&plan_of(&grown, &[&small]), SIZES);
    assert_eq!(needs.keys().collect::<Vec<_>>(), ["10.0.0.9"]);
    assert_eq!(ports(&needs["10.0.0.9"]), [10250]);
    assert!(needs_nothing(&small));
}

fn needs_nothing(input: &crate::graph::ClusterInput) -> bool {
    super::needs(&plan_of(input, &[input]), SIZES).is_empty()
}

#[test]
fn a_cluster_without_kubernetes_is_not_checked_for_it() {
    // A host that gets a rootfs and a runtime but no Kubernetes node: only the platform,
    // its space and overlay are checked.
    let need = HostNeeds {
        platform: true,
        runtime: true,
        disk: Some(10),
        ..HostNeeds::default()
    };
    let facts = Facts {
        swap_devices: 2,
        ip_forward: "0-ro".into(),
        br_netfilter: "absent".into(),
        listening: [6443, 10250].into(),
        ..healthy()
    };
    assert_eq!(
        evaluate(
            &need,
            &facts,
            Some(&Platform::linux("amd64")),
            "/d",
            &none()
        ),
        []
    );
}

fn healthy() -> Facts {
    Facts {
        hostname: "node-1".into(),
        kernel: "Linux".into(),
        machine: "x86_64".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        clock: Some(1_000_000),
        swap_devices: 0,
        listening: [22].into(),
        br_netfilter: "loaded".into(),
        overlay: "loaded".into(),
        bridge_nf_call_iptables: "1".into(),
        ip_forward: "1".into(),
        disk_free: Some(1 << 30),
        disk_path: "/var/lib".into(),
    }
}

fn node() -> HostNeeds {
    HostNeeds {
        platform: true,
        runtime: true,
        kubernetes: true,
        ports: CONTROL_PLANE_PORTS.into_iter().collect(),
        disk: Some(1 << 20),
    }
}

fn none() -> BTreeSet<Check> {
    BTreeSet::new()
}

fn checks(findings: &[Finding]) -> Vec<(Check, Severity)> {
    findings.iter().map(|f| (f.check, f.severity)).collect()
}

#[test]
fn a_healthy_host_passes_every_check() {
    let found = evaluate(
        &node(),
        &healthy(),
        Some(&Platform::linux("amd64")),
        "/var/lib/sealer/data/c",
        &none(),
    );
    assert_eq!(found, []);
}

#[test]
fn every_failure_of_a_host_is_reported_at_once_with_a_hint() {
    let facts = Facts {
        machine: "aarch64".into(),
        swap_devices: 1,
        listening: [22, 6443, 2380].into(),
        br_netfilter: "absent".into(),
        overlay: "absent".into(),
        bridge_nf_call_iptables: "absent".into(),
        ip_forward: "0-ro".into(),
        disk_free: Some(4096),
        ..healthy()
    };
    let found = evaluate(
        &node(),
        &facts,
        Some(&Platform::linux("amd64")),
        "/var/lib/sealer/data/c",
        &none(),
    );
    use Severity::Fail;
    assert_eq!(
        checks(&found),
        [
            (Check::Platform, Fail),
            (Check::Swap, Fail),
            (Check::BrNetfilter, Fail),
            (Check::IpForward, Fail),
            (Check::Overlay, Fail),
            (Check::Ports, Fail),
            (Check::Ports, Fail),
            (Check::Disk, Fail),
        ]
    );
    assert!(found.iter().all(|f| !f.hint.is_empty()));
    assert_eq!(
        found[0].message,
        "the cluster image is for linux/amd64, but the host runs Linux on aarch64 (linux/arm64)"
    );
    assert_eq!(
        found[5].message,
        "port 2380 is in use: etcd peers will listen on it"
    );
    assert_eq!(
        found[6].message,
        "port 6443 is in use: the API server will listen on it"
    );
    assert!(
        found[7]
            .message
            .starts_with("1 MiB free under /var/lib, but the cluster's rootfs takes 1 MiB"),
        "{}",
        found[7].message
    );
}

#[test]
fn skipped_checks_find_nothing() {
    let facts = Facts {
        swap_devices: 1,
        listening: [6443].into(),
        ..healthy()
    };
    let skip: BTreeSet<Check> = [Check::Swap, Check::Ports].into();
    assert_eq!(evaluate(&node(), &facts, None, "/d", &skip), []);
    assert_eq!(checks_of(&node(), &skip).len(), Check::ALL.len() - 4);
}

#[test]
fn sysctls_the_image_can_set_warn_and_ones_it_cannot_fail() {
    let with = |bridge: &str, forward: &str, module: &str| {
        let facts = Facts {
            bridge_nf_call_iptables: bridge.into(),
            ip_forward: forward.into(),
            br_netfilter: module.into(),
            ..healthy()
        };
        checks(&evaluate(&node(), &facts, None, "/d", &none()))
    };
    use Severity::{Fail, Warn};
    assert_eq!(
        with("0", "0", "loaded"),
        [(Check::BrNetfilter, Warn), (Check::IpForward, Warn)]
    );
    assert_eq!(
        with("0-ro", "0-ro", "loaded"),
        [(Check::BrNetfilter, Fail), (Check::IpForward, Fail)]
    );
    assert_eq!(with("1-ro", "1-ro", "loaded"), []);
    // Not loaded but loadable: init-kube.sh loads it.
    assert_eq!(with("absent", "1", "loadable"), []);
    assert_eq!(
        with("absent", "absent", "absent")[0],
        (Check::BrNetfilter, Fail)
    );
}

#[test]
fn facts_parse_as_the_provider_prints_them_and_garbage_is_an_error() {
    let text = "clock=1700000000\nkernel=Linux\nmachine=x86_64\nos=Debian GNU/Linux 12 (bookworm)\nhostname=node-0\nswap=0\nlistening=0016 19FB \nbr_netfilter=loaded\noverlay=loadable\nbridge_nf_call_iptables=1\nip_forward=0-ro\ndisk_free_kib=2048\ndisk_path=/var/lib\n";
    let facts = Facts::parse(text).unwrap();
    assert_eq!(facts.listening, BTreeSet::from([22, 6651]));
    assert_eq!(facts.disk_free, Some(2 << 20));
    assert_eq!(facts.clock, Some(1_700_000_000));
    assert_eq!(facts.os, "Debian GNU/Linux 12 (bookworm)");
    assert!(Facts::parse("Welcome to the host!\n").is_err());
    assert!(Facts::parse(&"x".repeat(FACTS_LIMIT + 1)).is_err());
}

fn answered<'a>(host: &'a str, facts: &'a Facts, asked: f64) -> Answered<'a> {
    Answered {
        host,
        facts,
        asked,
        answered: asked + 0.2,
    }
}

#[test]
fn a_hostname_shared_with_a_checked_or_recorded_host_fails_on_each_new_one() {
    let a = Facts {
        hostname: "node-0".into(),
        ..healthy()
    };
    let b = Facts {
        hostname: "NODE-0".into(),
        ..healthy()
    };
    let c = Facts {
        hostname: "node-7".into(),
        ..healthy()
    };
    let hosts = [
        answered("10.0.0.2", &a, 1e6),
        answered("10.0.0.3", &b, 1e6),
        answered("10.0.0.4", &c, 1e6),
    ];
    let recorded = BTreeMap::from([
        ("10.0.0.9".to_string(), "node-7".to_string()),
        ("10.0.0.2".to_string(), "old-name".to_string()),
    ]);
    let found = across_hosts(&hosts, &recorded, "10.0.0.2", &none());
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(h, f)| (h.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "10.0.0.2",
                "hostname node-0 is also the hostname of 10.0.0.3: Kubernetes names each node by its hostname, so they would be one node"
            ),
            (
                "10.0.0.3",
                "hostname NODE-0 is also the hostname of 10.0.0.2: Kubernetes names each node by its hostname, so they would be one node"
            ),
            (
                "10.0.0.4",
                "hostname node-7 is also the hostname of 10.0.0.9: Kubernetes names each node by its hostname, so they would be one node"
            ),
        ]
    );
    assert_eq!(
        across_hosts(&hosts, &recorded, "10.0.0.2", &[Check::Hostname].into()),
        []
    );
}

#[test]
fn a_clock_off_from_master0_by_more_than_the_skew_and_the_error_fails() {
    let at = |clock: i64, name: &str| Facts {
        clock: Some(clock),
        hostname: name.into(),
        ..healthy()
    };
    let (m, near, far, behind) = (
        at(1_000_000, "m"),
        at(1_000_003, "n"),
        at(1_000_060, "f"),
        at(999_990, "b"),
    );
    let hosts = [
        answered("10.0.0.1", &near, 1_000_000.0),
        answered("10.0.0.2", &m, 1_000_000.0),
        answered("10.0.0.3", &far, 1_000_000.0),
        answered("10.0.0.4", &behind, 1_000_000.0),
    ];
    let found = across_hosts(&hosts, &BTreeMap::new(), "10.0.0.2", &none());
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(h, f)| (h.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "10.0.0.3",
                "its clock is 60 s ahead of that of 10.0.0.2 (at most 5 s apart are allowed)"
            ),
            (
                "10.0.0.4",
                "its clock is 10 s behind that of 10.0.0.2 (at most 5 s apart are allowed)"
            ),
        ]
    );
    // A host that took long to answer may be further off before it is called wrong.
    let slow = [
        answered("10.0.0.2", &m, 1_000_000.0),
        Answered {
            host: "10.0.0.4",
            facts: &behind,
            asked: 999_960.0,
            answered: 1_000_000.0,
        },
    ];
    assert_eq!(
        across_hosts(&slow, &BTreeMap::new(), "10.0.0.2", &none()),
        []
    );
}

#[test]
fn machine_names_map_to_oci_architectures() {
    assert_eq!(oci_arch("x86_64"), "amd64");
    assert_eq!(oci_arch("aarch64"), "arm64");
    assert_eq!(oci_arch("armv7l"), "arm");
    assert_eq!(oci_arch("i686"), "386");
    assert_eq!(oci_arch("mips"), "mips");
    for c in Check::ALL {
        assert_eq!(Check::parse(c.name()), Some(c));
    }
}

#[test]
fn a_sandboxed_local_host_is_not_checked_for_ports() {
    let mut input = three_by_three();
    for h in &mut input.hosts {
        h.sandbox = Some("/tmp/sandbox".into());
    }
    let needs = needs(&plan_of(&input, &[]), SIZES);
    assert!(needs.values().all(|n| n.ports.is_empty()), "{needs:?}");
    assert!(needs["10.0.0.2"].kubernetes, "the other checks stay");
}
