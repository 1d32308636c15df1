//! Rootfs distribution (`--rootfs-distribution tree`) on 8 real sshd hosts: hosts that got
//! the rootfs send it on over OpenSSH; every host ends with the operator's content, the
//! output names each host's path, a host its seeder cannot reach and a host whose seeder
//! holds a corrupt file both fall back to the direct sync, and nothing of the distribution
//! (key line, key file, process) is left on any host.

use crate::apply::Deploy;
use crate::support::testbed::TestBed;
use std::collections::BTreeMap;

const ROOTFS: &str = "/var/lib/sealer/data/bed/rootfs";

/// A Config document that puts `etc/distribution.yaml` (holding `version`) in the rootfs.
/// `sealer ARGS` relaying whatever the size: the test's files are small, and below
/// `SEALER_RELAY_MIN` (64 MiB over all receivers by default) they go from the operator.
fn relayed_ok(d: &Deploy, args: &[&str]) -> String {
    crate::support::succeeded(&d.sealer_with(&[("SEALER_RELAY_MIN", "0")], args), args)
}

fn config(version: u32) -> String {
    format!(
        "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata:\n  name: distribution\nspec:\n  path: etc/distribution.yaml\n  data: |\n    version: {version}\n"
    )
}

/// The rootfs line of each host in an apply's `--json` events, by host IP.
fn rootfs_lines(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["type"] == "step_output"
                && e["address"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("rootfs."))
                && e["line"].as_str().is_some_and(|l| l.contains(" bytes"))
        })
        .map(|e| {
            (
                e["host"].as_str().unwrap_or_default().to_string(),
                e["line"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `N files, B bytes ...` → (N, B).
fn counts(line: &str) -> (u64, u64) {
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

/// Every file the host's manifest lists has the digest the manifest says; returns the
/// manifest's `(digest, path)` pairs outside `registry/`.
fn verified_files(d: &Deploy, i: usize) -> Vec<String> {
    let script = format!(
        "cd {ROOTFS} && awk '$2 ~ /^100/ {{ sha=$1; $1=$2=$3=$4=\"\"; sub(/^ +/, \"\"); print sha \"  \" $0 }}' .sealer-manifest > /tmp/check && sha256sum -c --quiet /tmp/check && grep -v '  registry/' /tmp/check; rm -f /tmp/check"
    );
    let out = d.bed.ssh(i, &script);
    assert!(
        out.status.success(),
        "host {i}: files differ from the manifest:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Nothing of a distribution is left on any host.
fn assert_nothing_left(d: &Deploy) {
    for i in 0..d.bed.len() {
        let left = d.bed.ssh_ok(
            i,
            "grep -h sealer-distribution /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys 2>/dev/null; \
             ls -d /tmp/sealer-distribution-* 2>/dev/null; \
             ls -d /var/lib/sealer/data/bed/rootfs/.sealer-sync.tmp 2>/dev/null; \
             ps -eo comm= | grep -xE 'ssh|tar' || true",
        );
        assert_eq!(
            left.trim(),
            "",
            "host {i} keeps something of the distribution"
        );
    }
}

#[test]
fn the_rootfs_spreads_host_to_host_and_falls_back_where_it_must() {
    // Host 7 is reached as `deploy` with passwordless sudo: its forced command runs sudo.
    let d = Deploy::new(TestBed::builder(8).sudo_user(&[7]).start());
    let ip = |i: usize| d.bed.host(i).ip().to_string();
    let workers: Vec<usize> = (1..7).collect();
    let sudo_group = |env: &str| {
        format!(
            "    - ips: [{}]\n      roles: [node]\n      ssh: {{user: deploy}}\n{env}",
            ip(7)
        )
    };
    let file = d.clusterfile(&[0], &workers, &(sudo_group("") + &config(1)));
    let file = file.to_str().unwrap().to_string();

    // Direct: no tree.
    let plan = d.sealer_ok(&["plan", "-f", &file, "--rootfs-distribution", "direct"]);
    assert!(!plan.contains("Rootfs distribution"), "{plan}");

    // The plan says where each host's rootfs comes from.
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    assert!(
        plan.contains(&format!("rootfs.{} from the operator", ip(0))),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("rootfs.{} from {}", ip(1), ip(0))),
        "{plan}"
    );

    // 1. A new cluster: host 0 from the operator, every other host from a seeder.
    let out = relayed_ok(&d, &["apply", "-f", &file, "--auto-approve", "--json"]);
    let lines = rootfs_lines(&out);
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert!(
        lines[&ip(0)].ends_with("bytes sent from the operator"),
        "{lines:?}"
    );
    let mut seeders = BTreeMap::new();
    for i in 1..8 {
        let line = &lines[&ip(i)];
        let seeder = line
            .rsplit_once(" from ")
            .map(|(_, s)| s.to_string())
            .unwrap_or_default();
        assert!(
            (0..8).any(|j| j != i && ip(j) == seeder) && !line.contains("sent"),
            "host {i}: {line}"
        );
        seeders.insert(i, seeder);
    }
    // The operator's uplink carried one copy: the files of the others came from seeders.
    let (files0, bytes0) = counts(&lines[&ip(0)]);
    let (files1, _) = counts(&lines[&ip(1)]);
    assert!(bytes0 > 0 && files1 > 0 && files1 <= files0, "{lines:?}");
    let reference = verified_files(&d, 1);
    for i in 0..8 {
        let files = verified_files(&d, i);
        assert_eq!(files, reference, "host {i} holds other files than host 1");
    }
    assert!(
        reference
            .iter()
            .any(|l| l.ends_with("etc/distribution.yaml")),
        "{reference:?}"
    );
    assert_nothing_left(&d);
    assert_eq!(
        d.bed
            .ssh_ok(7, "stat -c '%U %a' /home/deploy/.ssh/authorized_keys")
            .trim(),
        "deploy 600",
        "the key file keeps its owner and mode"
    );

    // 2 and 3. A changed Config: host 6 cannot reach its seeder, and host 3's seeder holds
    // a corrupt file (same size, mtime put back: its own sync does not notice) that host 3
    // lacks. Both fall back to the operator; every file ends right.
    let seeder_of = |i: usize| (0..8).find(|&j| ip(j) == seeders[&i]).unwrap();
    let blocked = 6;
    let rule = format!(
        "iptables -I INPUT -s {} -p tcp --dport 22 -j REJECT --reject-with tcp-reset",
        seeders[&blocked]
    );
    let status = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            d.bed.host(blocked).netns(),
            "sh",
            "-c",
            &rule,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "{rule}");
    let victim = 3;
    let corrupt = seeder_of(victim);
    let values = format!("{ROOTFS}/scripts/clean-registry.sh");
    d.bed.ssh_ok(
        corrupt,
        &format!(
            "f={values}; t=$(stat -c %Y \"$f\"); n=$(stat -c %s \"$f\"); \
             head -c \"$n\" /dev/zero | tr '\\0' x > \"$f\"; touch -d @\"$t\" \"$f\""
        ),
    );
    d.bed.ssh_ok(victim, &format!("rm -f {values}"));
    let file = d.clusterfile(&[0], &workers, &(sudo_group("") + &config(2)));
    let file = file.to_str().unwrap().to_string();
    let out = relayed_ok(&d, &["apply", "-f", &file, "--auto-approve", "--json"]);
    let lines = rootfs_lines(&out);
    let fallback = &lines[&ip(blocked)];
    assert!(
        fallback.contains("sent directly (fallback: ") && fallback.starts_with("1 files"),
        "host {blocked}: {fallback}"
    );
    let refused = &lines[&ip(victim)];
    assert!(
        refused.contains(&format!("sent directly (fallback: from {}: ", ip(corrupt)))
            && refused.contains("SHA-256"),
        "host {victim}: {refused}"
    );
    assert!(refused.starts_with("2 files"), "{refused}");
    for i in [1, 2, 4, 5, 7] {
        assert!(
            lines[&ip(i)].starts_with("1 files") && !lines[&ip(i)].contains("sent"),
            "host {i}: {}",
            lines[&ip(i)]
        );
    }
    for i in (0..8).filter(|&i| i != corrupt) {
        let files = verified_files(&d, i);
        assert!(
            files.iter().any(|l| l.ends_with("etc/distribution.yaml")),
            "host {i}"
        );
        assert_eq!(
            d.bed
                .ssh_ok(i, &format!("cat {ROOTFS}/etc/distribution.yaml")),
            "version: 2\n",
            "host {i}"
        );
    }
    assert_eq!(
        d.bed.ssh_ok(victim, &format!("sha256sum < {values}")),
        d.bed.ssh_ok(0, &format!("sha256sum < {values}")),
        "host {victim} got the file from the operator"
    );
    assert_nothing_left(&d);

    // 4. The workers' env changes their rootfs' digest, not its files: nothing is sent.
    let env = "      env: [DISTRIBUTION=on]\n";
    let file = d.clusterfile(&[0], &workers, &(sudo_group(env) + &config(2)));
    let text = std::fs::read_to_string(&file).unwrap();
    let labels = "      labels: {zone: a}\n";
    std::fs::write(&file, text.replacen(labels, &format!("{labels}{env}"), 1)).unwrap();
    let file = file.to_str().unwrap().to_string();
    let out = relayed_ok(&d, &["apply", "-f", &file, "--auto-approve", "--json"]);
    let lines = rootfs_lines(&out);
    assert_eq!(lines.len(), 7, "{lines:?}");
    for (host, line) in &lines {
        assert!(line.starts_with("0 files, 0 bytes"), "{host}: {line}");
    }
    assert_nothing_left(&d);
    d.assert_no_changes(&file);

    // 5. By default a change this small is not worth a relay: every host gets its file
    // from the operator, at once (the tree's order still holds).
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("version: 2", "version: 3")).unwrap();
    let out = d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]);
    let lines = rootfs_lines(&out);
    assert_eq!(lines.len(), 8, "{lines:?}");
    for (host, line) in &lines {
        assert!(line.starts_with("1 files"), "{host}: {line}");
        let path = if host == &ip(0) {
            "bytes sent from the operator"
        } else {
            "bytes sent from the operator (too little to relay)"
        };
        assert!(line.ends_with(path), "{host}: {line}");
    }
    for i in 0..8 {
        assert_eq!(
            d.bed
                .ssh_ok(i, &format!("cat {ROOTFS}/etc/distribution.yaml")),
            "version: 3\n",
            "host {i}"
        );
    }
    assert_nothing_left(&d);
}
