//! The shell scripts each resource runs on its host (spec `deploy.md`). Pure functions:
//! values in, script text out; every interpolated value is quoted.

use crate::quote::quote;

/// The markers around the `/etc/hosts` lines a cluster owns on a host.
fn hosts_markers(cluster: &str, owner: &str) -> (String, String) {
    (
        format!("# BEGIN sealer {cluster} {owner}"),
        format!("# END sealer {cluster} {owner}"),
    )
}

/// Replaces the block of `/etc/hosts` lines owned by `owner` with `entries` (idempotent;
/// an empty list removes the block). Written through a temp file so a kill leaves the old
/// or the new file.
pub fn hosts_block(cluster: &str, owner: &str, entries: &[String]) -> String {
    let (begin, end) = hosts_markers(cluster, owner);
    let mut block = String::new();
    if !entries.is_empty() {
        block.push_str(&format!("printf '%s\\n' {}", quote(&begin)));
        for e in entries {
            block.push_str(&format!(" {}", quote(e)));
        }
        block.push_str(&format!(" {} >> \"$tmp\"\n", quote(&end)));
    }
    format!(
        "tmp=$(mktemp /etc/.hosts.sealer.XXXXXX)\n\
         awk -v b={b} -v e={e} '$0==b{{skip=1;next}} $0==e{{skip=0;next}} !skip' /etc/hosts > \"$tmp\"\n\
         {block}chmod 644 \"$tmp\" && cat \"$tmp\" > /etc/hosts && rm -f \"$tmp\"\n",
        b = quote(&begin),
        e = quote(&end),
    )
}

/// Prints the lines of the block `owner` holds in `/etc/hosts` (see [`hosts_block`]),
/// nothing when there is none. Read-only.
pub fn hosts_block_lines(cluster: &str, owner: &str) -> String {
    let (begin, end) = hosts_markers(cluster, owner);
    format!(
        "awk -v b={b} -v e={e} '$0==e{{inside=0}} inside{{print}} $0==b{{inside=1}}' /etc/hosts\n",
        b = quote(&begin),
        e = quote(&end),
    )
}

/// Prints what preflight checks of a host, one `key=value` line each, in one read-only
/// command: the clock first (so the time the answer took bounds its error), the kernel and
/// machine (`uname`), the distribution (`/etc/os-release`), the hostname, active swap
/// devices, the TCP ports something listens on (hex, from `/proc/net/tcp{,6}`: every
/// address, not only loopback), whether `br_netfilter` and `overlay` are loaded, loadable
/// (`modules.dep`, `modules.builtin`) or absent, the bridge netfilter and forwarding sysctls
/// (`-ro` when `/proc/sys` cannot be written), and the free space (KiB) of the nearest
/// existing directory at or above `data_dir`.
pub fn host_facts(data_dir: &str) -> String {
    format!(
        "echo \"clock=$(date +%s)\"\n\
         echo \"kernel=$(uname -s)\"\n\
         echo \"machine=$(uname -m)\"\n\
         echo \"os=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '\"' | head -n 1)\"\n\
         echo \"hostname=$(hostname)\"\n\
         echo \"swap=$(tail -n +2 /proc/swaps 2>/dev/null | wc -l)\"\n\
         echo \"listening=$(awk 'FNR > 1 && $4 == \"0A\" {{ n = split($2, a, \":\"); print a[n] }}' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u | tr '\\n' ' ')\"\n\
         module() {{\n\
         \x20 if [ -e \"/sys/module/$1\" ] || grep -qw \"$1\" /proc/filesystems 2>/dev/null; then echo loaded\n\
         \x20 elif grep -qE \"(^|/)$1\\.ko\" \"/lib/modules/$(uname -r)/modules.dep\" \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null; then echo loadable\n\
         \x20 else echo absent; fi\n\
         }}\n\
         sysctl_of() {{\n\
         \x20 if [ ! -e \"$1\" ]; then echo absent; return; fi\n\
         \x20 v=$(cat \"$1\" 2>/dev/null || echo unreadable)\n\
         \x20 if [ -w \"$1\" ]; then echo \"$v\"; else echo \"$v-ro\"; fi\n\
         }}\n\
         bridge=/proc/sys/net/bridge/bridge-nf-call-iptables\n\
         if [ -e \"$bridge\" ]; then echo br_netfilter=loaded; else echo \"br_netfilter=$(module br_netfilter)\"; fi\n\
         echo \"overlay=$(module overlay)\"\n\
         echo \"bridge_nf_call_iptables=$(sysctl_of \"$bridge\")\"\n\
         echo \"ip_forward=$(sysctl_of /proc/sys/net/ipv4/ip_forward)\"\n\
         d={dir}\n\
         while [ ! -e \"$d\" ] && [ \"$d\" != / ]; do d=$(dirname \"$d\"); done\n\
         echo \"disk_free_kib=$(df -Pk \"$d\" 2>/dev/null | awk 'NR == 2 {{ print $4 }}')\"\n\
         echo \"disk_path=$d\"\n",
        dir = quote(data_dir)
    )
}

/// Prints, for each path in order, the SHA-256 of the regular file there, or `absent`.
/// Read-only.
pub fn file_digests(paths: &[String]) -> String {
    let mut s = String::from("set -e\n");
    for p in paths {
        s.push_str(&format!(
            "if [ -f {p} ]; then sha256sum < {p} | cut -d' ' -f1; else echo absent; fi\n",
            p = quote(p)
        ));
    }
    s
}

/// `host.<ip>` create/update: the `/etc/hosts` entries; prints `arch=...` and `hostname=...`
/// for the state.
pub fn host_create(cluster: &str, entries: &[String]) -> String {
    format!(
        "set -e\n{}printf 'arch=%s\\nhostname=%s\\n' \"$(uname -m)\" \"$(hostname)\"\n",
        hosts_block(cluster, "host", entries)
    )
}

pub fn host_destroy(cluster: &str) -> String {
    format!("set -e\n{}", hosts_block(cluster, "host", &[]))
}

/// Runs a script of the image (`ROOTFS/scripts/NAME`) with the cluster env, as Sealer does:
/// `cd ROOTFS/scripts && bash NAME ARGS`.
pub fn image_script(rootfs: &str, exports: &str, name: &str, args: &[String]) -> String {
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    format!(
        "set -e\n{exports}cd {}/scripts\nbash {} {}\n",
        quote(rootfs),
        quote(name),
        args.join(" ")
    )
}

/// An image script that may be absent (`clean-registry.sh`, `clean-kube.sh` are optional):
/// runs it when present.
pub fn optional_image_script(rootfs: &str, exports: &str, name: &str) -> String {
    format!(
        "set -e\n{exports}if [ -f {dir}/scripts/{n} ]; then cd {dir}/scripts && bash {n}; fi\n",
        dir = quote(rootfs),
        n = quote(name)
    )
}

/// Writes a file from stdin atomically with a mode (the content never appears in a
/// command line or a log).
pub fn write_stdin_to(path: &str, mode: &str) -> String {
    format!(
        "set -e\nmkdir -p \"$(dirname {p})\"\ntmp=$(mktemp {p}.XXXXXX)\ncat > \"$tmp\"\nchmod {m} \"$tmp\"\nmv -f \"$tmp\" {p}\n",
        p = quote(path),
        m = quote(mode)
    )
}

/// The registry's TLS certificate and key for `domain`, made once on the host (kept when
/// present, so every HA registry serves the same certificate it was given).
pub fn registry_cert(domain: &str, sans: &[String]) -> String {
    let dir = "/etc/sealer/registry";
    let mut alt = vec![format!("DNS:{domain}")];
    for s in sans {
        if s.parse::<std::net::IpAddr>().is_ok() {
            alt.push(format!("IP:{s}"));
        } else {
            alt.push(format!("DNS:{s}"));
        }
    }
    format!(
        "set -e\nmkdir -p {dir}\nif [ ! -s {crt} ] || [ ! -s {key} ]; then\n  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj {subj} -addext {alt} -keyout {key} -out {crt} 2>/dev/null\n  chmod 600 {key}\nfi\n",
        crt = quote(&format!("{dir}/{domain}.crt")),
        key = quote(&format!("{dir}/{domain}.key")),
        subj = quote(&format!("/CN={domain}")),
        alt = quote(&format!("subjectAltName={}", alt.join(","))),
    )
}

/// Prints the registry's certificate (to copy it host to host through memory).
pub fn read_file(path: &str) -> String {
    format!("cat {}\n", quote(path))
}

/// Trusts the registry CA for containerd and docker (`certs.d/DOMAIN:PORT/ca.crt`, from
/// stdin) and maps the domain in `/etc/hosts`. containerd 1.6 reads its certs.d directory
/// (once the image's `containerd.sh` sets `config_path`) through a `hosts.toml` naming the
/// server and its CA ([`containerd_hosts_toml`]); docker reads `ca.crt` as it is.
pub fn registry_client(cluster: &str, endpoint: &str, hosts_entry: Option<&str>) -> String {
    let mut script = String::from("set -e\nca=$(cat)\n");
    for dir in ["/etc/containerd/certs.d", "/etc/docker/certs.d"] {
        let d = format!("{dir}/{endpoint}");
        script.push_str(&format!(
            "mkdir -p {d}\nprintf '%s\\n' \"$ca\" > {f}\n",
            d = quote(&d),
            f = quote(&format!("{d}/ca.crt"))
        ));
    }
    script.push_str(&format!(
        "printf '%s' {} > {}\n",
        quote(&containerd_hosts_toml(endpoint)),
        quote(&containerd_hosts_toml_path(endpoint))
    ));
    let entries: Vec<String> = hosts_entry.into_iter().map(str::to_string).collect();
    script.push_str(&hosts_block(cluster, "registry", &entries));
    script
}

/// Where containerd looks for the registry host configuration of `endpoint`.
pub fn containerd_hosts_toml_path(endpoint: &str) -> String {
    format!("/etc/containerd/certs.d/{endpoint}/hosts.toml")
}

/// containerd's host configuration for the registry at `endpoint` (`DOMAIN:PORT`): pulls
/// go to it over HTTPS (without it, containerd speaks plain HTTP to a loopback registry)
/// and trust the CA next to it.
pub fn containerd_hosts_toml(endpoint: &str) -> String {
    let server = format!("https://{endpoint}");
    format!(
        "server = {server:?}\n\n[host.{server:?}]\n  ca = {ca:?}\n",
        ca = format!("/etc/containerd/certs.d/{endpoint}/ca.crt"),
    )
}

pub fn registry_client_destroy(cluster: &str, endpoint: &str) -> String {
    let mut script = String::from("set -e\n");
    for dir in ["/etc/containerd/certs.d", "/etc/docker/certs.d"] {
        script.push_str(&format!("rm -rf {}\n", quote(&format!("{dir}/{endpoint}"))));
        // Directories we created go when empty; ones that held something else stay.
        script.push_str(&format!("rmdir {dir} 2>/dev/null || true\n"));
    }
    script.push_str("rmdir /etc/docker 2>/dev/null || true\n");
    script.push_str(&hosts_block(cluster, "registry", &[]));
    script
}

/// Removes the registry's certificate, key and htpasswd made by [`registry_cert`] and the
/// deployer.
pub fn registry_cert_destroy(domain: &str) -> String {
    let dir = "/etc/sealer/registry";
    format!(
        "set -e\nrm -f {} {} {}\nrmdir {dir} 2>/dev/null || true\nrmdir /etc/sealer 2>/dev/null || true\n",
        quote(&format!("{dir}/{domain}.crt")),
        quote(&format!("{dir}/{domain}.key")),
        quote(&registry_htpasswd_path(domain)),
    )
}

/// Where a registry host keeps the htpasswd file of the registry's basic auth.
pub fn registry_htpasswd_path(domain: &str) -> String {
    format!("/etc/sealer/registry/{domain}.htpasswd")
}

/// kubelet's pull credentials (`/var/lib/kubelet/config.json`, docker config format) from
/// stdin. A file sealer did not write is set aside and restored by
/// [`registry_credentials_destroy`].
pub fn registry_credentials() -> String {
    concat!(
        "set -e\nf=/var/lib/kubelet/config.json\nmkdir -p /var/lib/kubelet\n",
        "if [ -f \"$f\" ] && [ ! -f \"$f.sealer-owned\" ]; then mv -f \"$f\" \"$f.sealer-saved\"; fi\n",
        "tmp=$(mktemp \"$f.XXXXXX\")\ncat > \"$tmp\"\nchmod 600 \"$tmp\"\n",
        "touch \"$f.sealer-owned\"\nmv -f \"$tmp\" \"$f\"\n",
    )
    .to_string()
}

/// Removes the credentials [`registry_credentials`] wrote, restoring a file it set aside.
pub fn registry_credentials_destroy() -> String {
    concat!(
        "set -e\nf=/var/lib/kubelet/config.json\n",
        "if [ -f \"$f.sealer-owned\" ]; then\n  rm -f \"$f\" \"$f.sealer-owned\"\n",
        "  if [ -f \"$f.sealer-saved\" ]; then mv -f \"$f.sealer-saved\" \"$f\"; fi\nfi\n",
    )
    .to_string()
}

/// `kubeadm init` on master0 with the config read from stdin, then the admin kubeconfig
/// for root's kubectl.
pub fn kube_init(cluster: &str, rootfs: &str, exports: &str, master0: &str) -> String {
    format!(
        "set -e\n{hosts}{init}{write}kubeadm init --config /etc/kubernetes/kubeadm.yaml --upload-certs\nmkdir -p /root/.kube\ncp -f /etc/kubernetes/admin.conf /root/.kube/config\n",
        hosts = hosts_block(
            cluster,
            "apiserver",
            &[format!("{master0} apiserver.cluster.local")]
        ),
        init = image_script(rootfs, exports, "init-kube.sh", &[]).trim_start_matches("set -e\n"),
        write = "mkdir -p /etc/kubernetes\ncat > /etc/kubernetes/kubeadm.yaml\n",
    )
}

/// The join command for a new node, printed on master0 (machine form of kubeadm).
pub fn join_command() -> &'static str {
    "set -e\nkubeadm token create --print-join-command\n"
}

/// A fresh certificate key for a control-plane join, printed on master0 (last line).
pub fn certificate_key() -> &'static str {
    "set -e\nkubeadm init phase upload-certs --upload-certs | tail -n 1\n"
}

/// Joins this host. The join command (with its token) and the certificate key come on
/// stdin, one per line, and go to kubeadm in a `JoinConfiguration` file only this root can
/// read, removed afterwards: never in a command line (`/proc/*/cmdline`), a log or an error.
/// `endpoint_ip` is where `apiserver.cluster.local` points while joining; `advertise` is the
/// address a control-plane join serves the API on.
pub fn kube_join(
    cluster: &str,
    rootfs: &str,
    exports: &str,
    endpoint_ip: &str,
    control_plane: bool,
    pre_join: &str,
) -> String {
    let join = join_via_config(control_plane);
    format!(
        "set -e\n{hosts}{init}{pre}{join}",
        pre = pre_join.trim_start_matches("set -e\n"),
        hosts = hosts_block(
            cluster,
            "apiserver",
            &[format!("{endpoint_ip} apiserver.cluster.local")]
        ),
        init = image_script(rootfs, exports, "init-kube.sh", &[]).trim_start_matches("set -e\n"),
    )
}

/// The join itself, from the join command (and a control plane's certificate key) on stdin:
/// a `JoinConfiguration` file readable by root only, `kubeadm join --config FILE`, the file
/// removed however the join ends.
fn join_via_config(control_plane: bool) -> String {
    // `set -- $join` splits the printed join command (`kubeadm join ENDPOINT --token T
    // --discovery-token-ca-cert-hash H`) with the shell's builtins only.
    let mut join = String::from(
        "read -r join\n\
         set -f; set -- $join; set +f\n\
         endpoint=\"\" token=\"\" hash=\"\"\n\
         while [ $# -gt 0 ]; do\n\
         \x20 case $1 in\n\
         \x20   --token) token=$2; shift ;;\n\
         \x20   --discovery-token-ca-cert-hash) hash=$2; shift ;;\n\
         \x20   kubeadm | join) ;;\n\
         \x20   -*) ;;\n\
         \x20   *) endpoint=$1 ;;\n\
         \x20 esac\n\
         \x20 shift\n\
         done\n\
         mkdir -p /etc/kubernetes\n\
         config=$(umask 077; mktemp /etc/kubernetes/.sealer-join.XXXXXX)\n\
         trap 'rm -f \"$config\"' EXIT\n\
         cat > \"$config\" <<EOF\n\
         apiVersion: kubeadm.k8s.io/v1beta3\n\
         kind: JoinConfiguration\n\
         discovery:\n\
         \x20 bootstrapToken:\n\
         \x20   apiServerEndpoint: $endpoint\n\
         \x20   token: $token\n\
         \x20   caCertHashes:\n\
         \x20   - $hash\n\
         EOF\n",
    );
    if !control_plane {
        // A worker of several masters has its lvscare static pod before it joins, as in
        // Sealer; kubeadm refuses a non-empty manifests directory unless told.
        join.push_str(
            "cat >> \"$config\" <<EOF\n\
             nodeRegistration:\n\
             \x20 ignorePreflightErrors:\n\
             \x20 - DirAvailable--etc-kubernetes-manifests\n\
             EOF\n",
        );
    } else {
        join.push_str(
            "read -r key\n\
             cat >> \"$config\" <<EOF\n\
             controlPlane:\n\
             \x20 certificateKey: $key\n\
             EOF\n",
        );
    }
    join.push_str("kubeadm join --config \"$config\"\n");
    join
}

/// After a control-plane join the master serves the API itself.
pub fn point_apiserver_at(cluster: &str, ip: &str) -> String {
    format!(
        "set -e\n{}",
        hosts_block(
            cluster,
            "apiserver",
            &[format!("{ip} apiserver.cluster.local")]
        )
    )
}

/// A virtual server balanced over real servers, as lvscare cares for it: the IPVS rule
/// workers use to reach several masters (or HA registries) through the virtual IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer<'a> {
    pub vip: &'a str,
    pub port: u16,
    pub real_servers: &'a [String],
    /// The HTTPS path lvscare probes on each real server (`/healthz` for the API server,
    /// `/` for a registry, which has no health path).
    pub health_path: &'a str,
}

impl VirtualServer<'_> {
    /// lvscare's arguments after its command: `--vs`, health check, one `--rs` each.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--vs".to_string(),
            format!("{}:{}", self.vip, self.port),
            "--health-path".to_string(),
            self.health_path.to_string(),
            "--health-schem".to_string(),
            "https".to_string(),
        ];
        for rs in self.real_servers {
            args.push("--rs".to_string());
            args.push(format!("{rs}:{}", self.port));
        }
        args
    }
}

/// Creates the IPVS rule once (`seautil ipvs ... --run-once`: without it, seautil stays in
/// the foreground caring for the rule and never returns). `seautil` is the image's, run
/// from `seautil_dir` when given (before `init-kube.sh` installs it), else from `PATH`.
pub fn ipvs_rule(vs: &VirtualServer, seautil_dir: Option<&str>) -> String {
    let seautil = match seautil_dir {
        Some(dir) => quote(&format!("{dir}/seautil")),
        None => "seautil".to_string(),
    };
    let args: Vec<String> = vs.args().iter().map(|a| quote(a)).collect();
    format!("set -e\n{seautil} ipvs {} --run-once\n", args.join(" "))
}

/// Removes the IPVS rule of the virtual server `vip:port` (`seautil ipvs --clean` returns).
pub fn ipvs_rule_clean(vip: &str, port: u16, seautil_dir: Option<&str>) -> String {
    let seautil = match seautil_dir {
        Some(dir) => quote(&format!("{dir}/seautil")),
        None => "seautil".to_string(),
    };
    // Best effort: a rule already gone (a reboot, a cleaned host) must not stop the update.
    format!(
        "set -e\n{seautil} ipvs --vs {} --clean || true\n",
        quote(&format!("{vip}:{port}"))
    )
}

/// Where the kubelet finds static pods.
pub const STATIC_POD_DIR: &str = "/etc/kubernetes/manifests";

/// The lvscare static pod `name` (`kube-lvscare`, `reg-lvscare`) that keeps caring for the
/// virtual server after the one-shot rule, across reboots, as Sealer writes it: `lvscare
/// care` with the same arguments, host network, privileged, `/lib/modules` mounted.
pub fn lvscare_static_pod(name: &str, vs: &VirtualServer, image: &str) -> String {
    let mut args = String::from("    - care\n");
    for a in vs.args() {
        args.push_str(&format!("    - {}\n", yaml_scalar(&a)));
    }
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: kube-system\n  labels:\n    app: {name}\nspec:\n  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    command:\n    - /usr/bin/lvscare\n    args:\n{args}    securityContext:\n      privileged: true\n    volumeMounts:\n    - mountPath: /lib/modules\n      name: lib-modules\n      readOnly: true\n  hostNetwork: true\n  priorityClassName: system-node-critical\n  volumes:\n  - name: lib-modules\n    hostPath:\n      path: /lib/modules\n",
        name = yaml_scalar(name),
        image = yaml_scalar(image),
    )
}

/// A YAML plain scalar when it reads back as the same string (`--vs`, `10.0.0.2:6443`),
/// else a double-quoted one.
fn yaml_scalar(s: &str) -> String {
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-./_:".contains(c));
    let other_type = s.parse::<f64>().is_ok()
        || ["true", "false", "yes", "no", "on", "off", "null", "~"]
            .contains(&s.to_ascii_lowercase().as_str());
    if safe && !s.is_empty() && s != "-" && !s.starts_with(':') && !s.ends_with(':') && !other_type
    {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// Writes (or rewrites) the static pod `name` with `yaml` through a temp file, so a kill
/// leaves the old or the new pod, never half of one.
pub fn write_static_pod(name: &str, yaml: &str) -> String {
    let path = format!("{STATIC_POD_DIR}/{name}.yaml");
    format!(
        "set -e\nmkdir -p {dir}\ntmp=$(mktemp {dir}/.sealer-static-pod.XXXXXX)\nprintf '%s' {y} > \"$tmp\"\nchmod 644 \"$tmp\"\nmv -f \"$tmp\" {p}\n",
        dir = STATIC_POD_DIR,
        y = quote(yaml),
        p = quote(&path),
    )
}

/// Removes the static pod `name` (the kubelet stops it).
pub fn remove_static_pod(name: &str) -> String {
    format!(
        "set -e\nrm -f {}\n",
        quote(&format!("{STATIC_POD_DIR}/{name}.yaml"))
    )
}

/// Resets a node: `kubeadm reset -f`, then the image's clean script when it has one.
pub fn kube_reset(cluster: &str, rootfs: &str, exports: &str) -> String {
    format!(
        "set -e\nif command -v kubeadm >/dev/null; then kubeadm reset -f; fi\n{}{}",
        optional_image_script(rootfs, exports, "clean-kube.sh").trim_start_matches("set -e\n"),
        hosts_block(cluster, "apiserver", &[])
    )
}

/// Drains a node before it leaves (on master0). A node the API no longer has (a destroy
/// interrupted after it was deleted) is done already.
pub fn drain(node: &str, timeout_secs: u64) -> String {
    format!(
        "set -e\nif kubectl get nodes | awk 'NR>1{{print $1}}' | grep -qxF -- {n}; then\n  kubectl drain {n} --ignore-daemonsets --delete-emptydir-data --force --timeout={t}s\nfi\n",
        n = quote(node),
        t = timeout_secs
    )
}

/// master0's part of a Kubernetes upgrade (`deploy.md`, "Upgrades"): the new binaries from
/// the rootfs (`init-kube.sh` installs them), the configuration the plan showed (on stdin)
/// kept where `kubeadm init` found it, `kubeadm upgrade plan` and `upgrade apply` to
/// `version`, then the kubelet restarted on its new binary.
pub fn kube_upgrade_apply(rootfs: &str, exports: &str, version: &str) -> String {
    format!(
        "set -e\n{init}cat > /etc/kubernetes/kubeadm.yaml\nkubeadm upgrade plan {v}\nkubeadm upgrade apply {v} --yes\n{restart}",
        init = image_script(rootfs, exports, "init-kube.sh", &[]).trim_start_matches("set -e\n"),
        v = quote(version),
        restart = restart_kubelet(),
    )
}

/// Another node's part of a Kubernetes upgrade, after master0's: the new binaries, `kubeadm
/// upgrade node` (a master's control plane, any node's kubelet configuration), the kubelet
/// restarted.
pub fn kube_upgrade_node(rootfs: &str, exports: &str) -> String {
    format!(
        "set -e\n{init}kubeadm upgrade node\n{restart}",
        init = image_script(rootfs, exports, "init-kube.sh", &[]).trim_start_matches("set -e\n"),
        restart = restart_kubelet(),
    )
}

/// kubeadm's upgrade does not restart the kubelet: the operator does, once the new binary
/// is in place. Where no systemd runs (a test-bed host), there is no service to restart.
fn restart_kubelet() -> &'static str {
    "if [ -d /run/systemd/system ]; then systemctl daemon-reload && systemctl restart kubelet; fi\n"
}

/// Lets the scheduler place pods on a drained node again.
pub fn uncordon(node: &str) -> String {
    format!("set -e\nkubectl uncordon {}\n", quote(node))
}

pub fn delete_node(node: &str) -> String {
    format!(
        "set -e\nkubectl delete node {} --ignore-not-found\n",
        quote(node)
    )
}

/// Labels and taints of a node, applied on master0; `remove_labels`/`remove_taints` are
/// what the node had before and no longer has.
pub fn node_meta(
    node: &str,
    labels: &[(String, String)],
    taints: &[String],
    remove_labels: &[String],
    remove_taints: &[String],
) -> String {
    let mut s = String::from("set -e\n");
    let n = quote(node);
    for (k, v) in labels {
        s.push_str(&format!(
            "kubectl label node {n} {} --overwrite\n",
            quote(&format!("{k}={v}"))
        ));
    }
    for k in remove_labels {
        s.push_str(&format!(
            "kubectl label node {n} {}\n",
            quote(&format!("{k}-"))
        ));
    }
    for t in taints {
        s.push_str(&format!(
            "kubectl taint node {n} {} --overwrite\n",
            quote(t)
        ));
    }
    for t in remove_taints {
        s.push_str(&format!(
            "kubectl taint node {n} {} || true\n",
            quote(&format!("{t}-"))
        ));
    }
    s
}

/// Runs commands in the rootfs with the env (apps, plugins): each command is a shell
/// command line the author wrote, run as written.
pub fn in_rootfs(rootfs: &str, exports: &str, commands: &[String]) -> String {
    let mut s = format!("set -e\n{exports}cd {}\n", quote(rootfs));
    for c in commands {
        s.push_str(&format!("( {c}\n)\n"));
    }
    s
}

/// Uninstalls an app: kube apps delete their files, helm apps their release.
pub fn app_destroy(rootfs: &str, kind: &str, name: &str, files: &[String]) -> Option<String> {
    match kind {
        "kube" => {
            let mut s = format!(
                "set -e\ncd {}\n",
                quote(&format!("{rootfs}/application/apps/{name}"))
            );
            for f in files.iter().rev() {
                s.push_str(&format!(
                    "kubectl delete -f {} --ignore-not-found\n",
                    quote(f)
                ));
            }
            Some(s)
        }
        // Only a release that is still there (an interrupted destroy may have removed it).
        "helm" => Some(format!(
            "set -e\nif helm list | awk 'NR>1{{print $1}}' | grep -qxF -- {n}; then helm uninstall {n}; fi\n",
            n = quote(name)
        )),
        _ => None,
    }
}

/// Prints `missing FILE: WHY` for each of a kube app's files whose objects are not all in
/// the API (`kubectl get -f`, run in the app's directory). Read-only.
pub fn kube_app_read(rootfs: &str, name: &str, files: &[String]) -> String {
    let mut s = format!(
        "set -e\ncd {}\n",
        quote(&format!("{rootfs}/application/apps/{name}"))
    );
    for f in files {
        s.push_str(&format!(
            "if ! why=$(kubectl get -f {f} 2>&1 >/dev/null); then printf 'missing %s: %s\\n' {f} \"$(printf '%s\\n' \"$why\" | tail -n 1)\"; fi\n",
            f = quote(f)
        ));
    }
    s
}

/// The HTTP status the registry at `endpoint` (`DOMAIN:PORT`) answers its API root
/// `/v2/` with, asked over TLS trusting the CA sealer put in the runtime's `certs.d`
/// (containerd's, else docker's) as the cluster's nodes do; what is missing to ask (the
/// CA, curl) on stderr with exit 3. Read-only.
pub fn registry_api_probe(endpoint: &str) -> String {
    let ep = quote(endpoint);
    format!(
        "ca=/etc/containerd/certs.d/{ep}/ca.crt
         [ -f \"$ca\" ] || ca=/etc/docker/certs.d/{ep}/ca.crt
         [ -f \"$ca\" ] || {{ echo \"no CA for \"{ep}\" in /etc/containerd/certs.d or /etc/docker/certs.d\" >&2; exit 3; }}
         command -v curl >/dev/null || {{ echo 'curl is not installed' >&2; exit 3; }}
         curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 --cacert \"$ca\" https://{ep}/v2/
"
    )
}

/// Applies the image policy YAML read from stdin.
pub fn apply_stdin_manifest() -> &'static str {
    "set -e\nkubectl apply -f -\n"
}

pub fn delete_image_policy() -> &'static str {
    "set -e\nkubectl delete clusterpolicy sealer-redirect-registry --ignore-not-found\n"
}

/// Removes the cluster's data directory from a host.
pub fn remove_dir(path: &str) -> String {
    format!("set -e\nrm -rf {}\n", quote(path))
}

/// Removes the cluster's data directory, then `parents` (innermost first) that are left
/// empty: directories sealer made, never ones that hold anything else.
pub fn remove_data_dir(path: &str, parents: &[String]) -> String {
    let mut s = remove_dir(path);
    for p in parents {
        s.push_str(&format!("rmdir {} 2>/dev/null || true\n", quote(p)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_hosts_block_is_replaced_and_removed() {
        let dir = tempfile_dir();
        let hosts = format!("{dir}/hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let run = |script: String| {
            let script = script
                .replace("/etc/hosts", &hosts)
                .replace("/etc/.hosts", &format!("{dir}/.hosts"));
            let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read_to_string(&hosts).unwrap()
        };
        let once = run(hosts_block("c", "host", &["10.0.0.9 foo.local".into()]));
        let twice = run(hosts_block("c", "host", &["10.0.0.9 foo.local".into()]));
        assert_eq!(once, twice, "idempotent");
        assert_eq!(
            once,
            "127.0.0.1 localhost\n# BEGIN sealer c host\n10.0.0.9 foo.local\n# END sealer c host\n"
        );
        assert_eq!(run(hosts_block("c", "host", &[])), "127.0.0.1 localhost\n");
    }

    fn tempfile_dir() -> String {
        let dir = std::env::temp_dir().join(format!("sealer-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.display().to_string()
    }

    #[test]
    fn host_facts_are_one_line_each_and_a_hostile_data_root_is_only_a_path() {
        let dir = format!("{}/facts", tempfile_dir());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let marker = format!("{dir}/ran");
        // A data root that does not exist yet, with shell in its name: the nearest existing
        // directory above it is measured, and nothing in it runs.
        let data_dir = format!("{dir}/$(touch {marker})/x'y/cluster");
        let out = Command::new("bash")
            .arg("-c")
            .arg(host_facts(&data_dir))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let facts: std::collections::BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once('=')).collect();
        for key in [
            "clock",
            "kernel",
            "machine",
            "os",
            "hostname",
            "swap",
            "listening",
            "br_netfilter",
            "overlay",
            "bridge_nf_call_iptables",
            "ip_forward",
            "disk_free_kib",
            "disk_path",
        ] {
            assert!(facts.contains_key(key), "{key} missing:\n{text}");
        }
        assert_eq!(facts["kernel"], "Linux");
        assert!(facts["clock"].parse::<u64>().is_ok(), "{text}");
        assert!(facts["disk_free_kib"].parse::<u64>().is_ok(), "{text}");
        assert_eq!(facts["disk_path"], dir);
        assert!(!std::path::Path::new(&marker).exists());
    }

    #[test]
    fn a_registry_client_gives_containerd_a_hosts_toml_naming_the_server_and_its_ca() {
        let dir = format!("{}/client", tempfile_dir());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(format!("{dir}/etc")).unwrap();
        std::fs::write(format!("{dir}/etc/hosts"), "").unwrap();
        let script =
            registry_client("c", "sea.hub:5000", None).replace("/etc/", &format!("{dir}/etc/"));
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"CA PEM").unwrap();
        assert!(child.wait().unwrap().success());
        let host_dir = format!("{dir}/etc/containerd/certs.d/sea.hub:5000");
        assert_eq!(
            std::fs::read_to_string(format!("{host_dir}/ca.crt")).unwrap(),
            "CA PEM\n"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/etc/docker/certs.d/sea.hub:5000/ca.crt"))
                .unwrap(),
            "CA PEM\n"
        );
        // containerd 1.6 reads this file (not a bare ca.crt) once config_path names certs.d.
        assert_eq!(
            std::fs::read_to_string(format!("{host_dir}/hosts.toml")).unwrap(),
            // (`{dir}` stands for `/`.)
            format!(
                "server = \"https://sea.hub:5000\"\n\n[host.\"https://sea.hub:5000\"]\n  ca = \"{dir}/etc/containerd/certs.d/sea.hub:5000/ca.crt\"\n"
            )
        );
        assert_eq!(
            containerd_hosts_toml_path("sea.hub:5000"),
            "/etc/containerd/certs.d/sea.hub:5000/hosts.toml"
        );
    }

    #[test]
    fn hostile_values_stay_quoted() {
        let script = node_meta(
            "n1",
            &[("k".into(), "$(touch /tmp/x); `id`".into())],
            &["a=b;c:NoSchedule".into()],
            &[],
            &[],
        );
        assert!(script.contains("'k=$(touch /tmp/x); `id`'"), "{script}");
        assert!(script.contains("'a=b;c:NoSchedule'"), "{script}");
    }

    #[test]
    fn a_join_gives_kubeadm_its_secrets_in_a_private_file_never_in_its_arguments() {
        let dir = format!("{}/join", tempfile_dir());
        std::fs::create_dir_all(&dir).unwrap();
        // A kubeadm that records what it was given: its arguments, and the file's mode and text.
        let fake = format!(
            "kubeadm() {{ printf '%s\\n' \"$*\" > {dir}/argv; stat -c %a \"$3\" > {dir}/mode; cat \"$3\" > {dir}/config; }}\n"
        );
        let script =
            format!("set -e\n{fake}{}", join_via_config(true)).replace("/etc/kubernetes", &dir);
        let join = "kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:aaaa \n";
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{join}{}\n", "k".repeat(64)).as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let argv = read("argv");
        assert!(argv.starts_with("join --config "), "{argv}");
        assert!(!argv.contains("abcdef") && !argv.contains("kkkk"), "{argv}");
        assert_eq!(read("mode").trim(), "600");
        let config = read("config");
        for line in [
            "kind: JoinConfiguration",
            "    apiServerEndpoint: apiserver.cluster.local:6443",
            "    token: abcdef.0123456789abcdef",
            "    - sha256:aaaa",
            "controlPlane:",
        ] {
            assert!(config.contains(line), "{line:?} not in:\n{config}");
        }
        assert!(config.contains(&format!("  certificateKey: {}", "k".repeat(64))));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".sealer-join"))
            .collect();
        assert!(left.is_empty(), "the join file stayed: {left:?}");
    }
}
