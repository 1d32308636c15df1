//! `sealer import` on the real SSH test bed: a cluster applied with one state file is
//! adopted into another, which then plans no changes; drift made by hand before an import
//! is recorded as drift, which the next plan repairs in place.

use crate::apply::Deploy;
use crate::support::testbed::TestBed;

#[test]
fn import_adopts_an_applied_cluster_and_records_what_drifted() {
    let d = Deploy::new(TestBed::start(2));
    let file = d.clusterfile(&[0], &[1], "");
    let file = file.to_str().unwrap();
    d.sealer_ok(&["apply", "-f", file, "--auto-approve"]);
    let (master, worker) = (d.bed.host(0).ip(), d.bed.host(1).ip());

    // A cluster sealer did not record in this state: read from its hosts, it plans nothing.
    let adopted = d.sb.path("adopted.db");
    let adopted = adopted.to_str().unwrap();
    // An import only reads: the hosts' files are as they were (the stand-ins' command log
    // in /var/log records the reads, and is left out).
    let snapshot = || -> Vec<_> {
        (0..2)
            .flat_map(|i| {
                ["/etc", "/var/lib/sealer", "/usr/bin", "/root"].map(|p| d.bed.file_tree(i, p))
            })
            .collect()
    };
    let before = snapshot();

    // Host keys as apply treats them: an unknown one is refused, nothing recorded...
    let known_hosts = d.sb.path(".ssh/known_hosts");
    let trusted = std::fs::read(&known_hosts).unwrap();
    std::fs::remove_file(&known_hosts).unwrap();
    let refused = d.sealer_refused(&["import", "-f", file, "--state", adopted]);
    assert!(
        refused.contains("--accept-new-host-keys") && refused.contains("nothing was recorded"),
        "{refused}"
    );
    assert!(
        !d.sealer_ok(&["state", "list", "--state", adopted])
            .contains("bed"),
        "a refused import recorded the cluster"
    );
    // ...unless accepted, and then pinned in the state.
    let out = d.sealer_ok(&[
        "import",
        "-f",
        file,
        "--state",
        adopted,
        "--accept-new-host-keys",
    ]);
    std::fs::write(&known_hosts, trusted).unwrap();
    assert!(snapshot() == before, "an import wrote on a host");
    let host = d.sealer_ok(&[
        "state",
        "show",
        &format!("host.{master}"),
        "--state",
        adopted,
        "--cluster",
        "bed",
    ]);
    assert!(
        host.contains(d.bed.host(0).host_key_fingerprint()),
        "the host key is pinned: {host}"
    );
    assert!(
        out.contains("Imported cluster \"bed\" from 2 hosts")
            && out.contains("0 drifted, 0 accepted as found, 0 missing, 1 assumed.")
            && out.contains(
                "Assumed applied (cannot be read: nothing on a host tells):\n  app.calico\n"
            )
            && out.contains("Run `sealer plan` to see what differs."),
        "{out}"
    );
    let plan = d.sealer(&[
        "plan",
        "-f",
        file,
        "--state",
        adopted,
        "--detailed-exitcode",
    ]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    let history = d.sealer_ok(&["state", "history", "--state", adopted]);
    assert!(
        history.contains("import") && history.contains(&format!("host.{master}")),
        "{history}"
    );

    // A state that records the cluster already is never overwritten.
    let before = d.sealer_ok(&["state", "list", "--state", adopted, "--cluster", "bed"]);
    let refused = d.sealer_refused(&["import", "-f", file, "--state", adopted]);
    assert!(
        refused.contains("the state already records cluster \"bed\"")
            && refused.contains("sealer plan"),
        "{refused}"
    );
    assert_eq!(
        d.sealer_ok(&["state", "list", "--state", adopted, "--cluster", "bed"]),
        before
    );

    // Drift made by hand: a rootfs file edited on the worker, and what a cluster Go Sealer
    // installed looks like: the master's rootfs without the manifest sealer writes, the
    // worker's /etc/hosts lines without sealer's markers. All are recorded drifted, and
    // the plan updates them in place: no replacement, no reinstall.
    d.bed.ssh_ok(
        1,
        "echo '# edited by hand' >> /var/lib/sealer/data/bed/rootfs/scripts/containerd.sh",
    );
    d.bed
        .ssh_ok(0, "rm /var/lib/sealer/data/bed/rootfs/.sealer-manifest");
    // Go Sealer writes its /etc/hosts lines without sealer's markers.
    d.bed.ssh_ok(
        1,
        "cp /etc/hosts /tmp/hosts && grep -v '^# [A-Z]* sealer bed host$' /tmp/hosts > /etc/hosts",
    );
    let drifted = d.sb.path("drifted.db");
    let drifted = drifted.to_str().unwrap();
    let out = d.sealer_ok(&["import", "-f", file, "--state", drifted, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["format_version"], "1", "{out}");
    let adopted_as = |address: &str| {
        json["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("no {address} in {out}"))["adopted"]
            .clone()
    };
    assert_eq!(adopted_as(&format!("rootfs.{worker}")), "drifted", "{out}");
    assert_eq!(adopted_as(&format!("rootfs.{master}")), "drifted", "{out}");
    assert_eq!(adopted_as(&format!("host.{worker}")), "drifted", "{out}");
    assert_eq!(adopted_as("kubernetes.init"), "imported", "{out}");
    let plan = d.sealer(&[
        "plan",
        "-f",
        file,
        "--state",
        drifted,
        "--detailed-exitcode",
    ]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    // Drift an import found reads like drift `apply --refresh-only` recorded.
    for expected in [
        format!(
            "# rootfs.{worker} will be updated in place (drifted on its host (recorded by a refresh at state serial"
        ),
        "1 of its files changed since sealer wrote them: scripts/containerd.sh)".to_string(),
        format!(
            "# rootfs.{master} will be updated in place (drifted on its host (recorded by a refresh at state serial"
        ),
        "rootfs has no manifest: no copy of the rootfs finished there)".to_string(),
        format!(
            "# host.{worker} will be updated in place (drifted on its host (recorded by a refresh at state serial"
        ),
        "`/etc/hosts` no longer has the cluster's lines)".to_string(),
        "Plan: 0 to add, 3 to change, 0 to destroy.".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
    assert!(
        !text.contains("must be replaced") && !text.contains("will be created"),
        "{text}"
    );

    // Applied from the adopted state, the repair leaves nothing to do.
    d.sealer_ok(&["apply", "-f", file, "--state", drifted, "--auto-approve"]);
    let plan = d.sealer(&[
        "plan",
        "-f",
        file,
        "--state",
        drifted,
        "--refresh-only",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // A host that cannot be read refuses the whole import: nothing recorded.
    d.bed.kill(1);
    let down = d.sb.path("down.db");
    let down = down.to_str().unwrap();
    let refused = d.sealer_refused(&["import", "-f", file, "--state", down, "--timeout", "10s"]);
    assert!(
        refused.contains(&format!("cannot read host.{worker}"))
            && refused.contains("nothing was recorded"),
        "{refused}"
    );
    assert!(
        !d.sealer_ok(&["state", "list", "--state", down])
            .contains("bed"),
        "a refused import recorded the cluster"
    );
}
