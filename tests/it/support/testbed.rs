//! A real multi-host test bed: N OpenSSH `sshd` hosts on one machine, each in its own
//! network, mount, UTS and PID namespaces, reachable only through a hub namespace.
//!
//! ```text
//!   root namespace (nothing of ours: no link, no address, no route)
//!   ┌ hub netns  sltbXXXX-hub ─────────────────────────────┐
//!   │ bridge sltbXXXX-br 10.A.B.1/24                       │
//!   │   └ veth sltbXXXX-vI ─┐                              │
//!   └───────────────────────┼──────────────────────────────┘
//!   ┌ host netns sltbXXXX-I ┴ eth0 10.A.B.(10+I)/24 ───────┐
//!   │ unshare --mount --uts --pid: hostname node-I,        │
//!   │ overlays on /etc /var /usr /opt /home /srv, own      │
//!   │ /root, fresh tmpfs /tmp /run /dev/shm; sshd = PID 1  │
//!   └──────────────────────────────────────────────────────┘
//! ```
//!
//! Every bed has a random id `XXXX` (4 hex digits) that names its namespaces, links and
//! directory and picks its subnet `10.A.B.0/24` (`A.B` = the id's two bytes), so beds of
//! parallel test threads and parallel `cargo test` processes never clash. The id is claimed
//! by creating the bed's directory, `$TMPDIR/sealer-testbeds/sltbXXXX/`, which also holds the
//! client key, `known_hosts`, each host's disk (overlay upper dirs), console log and PID file.
//!
//! Cleanup is by PID and by recorded name: every namespace is written to the bed's
//! `netns` file before it is created, every host's PIDs to its `pid` file as soon as they
//! exist. Drop kills the hosts (after checking what the PIDs are), deletes the namespaces
//! and removes the directory, panics included. A test process that was killed cannot run
//! Drop: [`TestBed::reap_leftovers`], run by every bed start, removes beds whose owner
//! process (`owner` file: PID and start time) is gone.
//!
//! Ways in: the engine under test runs inside the hub ([`TestBed::command`]) with the client
//! key ([`TestBed::client_key_path`]) and [`TestBed::known_hosts_path`]; tests read host
//! state with [`TestBed::ssh`] and [`TestBed::file_tree`], which use a harness key of their
//! own (so [`TestBed::client_logins`] counts the engine's logins only) and keep one connection
//! per host. Faults: [`TestBed::kill`], [`TestBed::restart`], [`TestBed::cut`],
//! [`TestBed::heal`].
//!
//! Shaped beds (benchmarks only; tests keep unshaped links): [`TestBedBuilder::shaped`] adds
//! an *operator* namespace `sltbXXXX-op` at `10.A.B.2` on the bridge, whose link is limited
//! to the operator's uplink rate both ways, and limits every host's link, both ways, to the
//! host rate, with `tc ... tbf` (this kernel has no `netem`). The engine then runs behind the
//! uplink, in the operator namespace ([`TestBed::operator_command`]), instead of in the hub.
//!
//! Hosts keep OpenSSH's default `MaxSessions` (10 channels per connection) so the engine's
//! channel cap is exercised for real; `MaxStartups` is raised so many parallel connects are
//! not dropped. Killing a host SIGKILLs the PID 1 of its PID namespace (sshd), which takes
//! every process of the host with it; its `unshare` parent reaps it and exits. (SIGKILL to
//! `unshare` would do the same through `--kill-child`, but would leave the host's PID 1 as a
//! zombie: this machine's init does not reap orphans.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub const SSHD: &str = "/usr/sbin/sshd";
pub const SSH: &str = "/usr/bin/ssh";
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
pub const SUDO: &str = "/usr/bin/sudo";
pub const TC: &str = "/usr/sbin/tc";

/// Prefix of every bed's id, and so of its directory, namespaces and links.
const PREFIX: &str = "sltb";
/// The non-root user [`TestBedBuilder::sudo_user`] creates.
pub const SUDO_USER: &str = "deploy";
/// Hosts are `10.A.B.(HOST_BASE + index)`; `.1` is the hub.
const HOST_BASE: usize = 10;
/// The operator namespace of a shaped bed is `10.A.B.OPERATOR_HOST`.
const OPERATOR_HOST: u8 = 2;
const MAX_HOSTS: usize = 240;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// A bed directory without an `owner` file is being created; only an old one is a leftover.
const UNOWNED_GRACE: Duration = Duration::from_secs(60);
/// Options of every `ssh` the harness runs. The cheap key exchange keeps fan-out fast on
/// two cores (~120 ms of CPU per connection instead of ~190 ms with OpenSSH's default).
const SSH_OPTIONS: &[&str] = &[
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "KexAlgorithms=curve25519-sha256",
    "-o",
    "LogLevel=ERROR",
];
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PID 1 of a host until it execs sshd: runs inside the host's netns and its fresh
/// mount, UTS and PID namespaces. Arguments: hostname, host dir, address/prefix, and on
/// first boot only, a setup script run inside the host before sshd starts.
const HOST_INIT: &str = r#"#!/bin/bash
set -euo pipefail
name=$1 dir=$2 addr=$3 setup=""
# Read before /tmp (which holds the bed directory) is covered by the host's own tmpfs.
if [ -n "${4:-}" ]; then setup=$(<"$4"); fi
hostname "$name"
ip link set lo up
ip addr replace "$addr" dev eth0
ip link set eth0 up
for d in etc var usr opt home srv; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount --bind "$dir/root" /root
mount -t proc proc /proc
mount -t tmpfs -o mode=755,size=64m tmpfs /run
mkdir -p /run/sshd
mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm
mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
if [ -n "$setup" ]; then
  (cd /root && bash -euo pipefail -c "$setup")
fi
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
"#;

/// First-boot setup of [`TestBedBuilder::sudo_user`]. The password field is `*`, not `!`:
/// without PAM, sshd refuses every login, keys included, to an account locked with `!`.
const SUDO_SETUP: &str = r#"
useradd --create-home --shell /bin/bash --password '*' deploy
install -d -m 700 -o deploy -g deploy /home/deploy/.ssh
install -m 600 -o deploy -g deploy /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys
echo 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy
chmod 440 /etc/sudoers.d/deploy
"#;

/// Lists a tree as NUL-separated records: `M TYPE MODE PATH`, then the link target, for
/// every entry, followed by `SHA256  PATH` for every regular file. `$1` is the root.
const FILE_TREE_SCRIPT: &str = r#"p=$1
[ -e "$p" ] || [ -L "$p" ] || exit 0
find "$p" -xdev -printf 'M %y %m %p\0%l\0'
find "$p" -xdev -type f -print0 | xargs -0 -r sha256sum -z"#;

/// Path → (mode with its file-type bits, as `st_mode`; content digest). The digest is the
/// hex SHA-256 of a file's content or of a symlink's target, empty for anything else.
pub type FileTree = BTreeMap<PathBuf, (u32, String)>;

/// Options for [`TestBed`]: `TestBed::builder(3).sudo_user(&[2]).start()`.
pub struct TestBedBuilder {
    hosts: usize,
    sudo_hosts: Vec<usize>,
    password: Option<String>,
    setup_all: String,
    setup: BTreeMap<usize, String>,
    shaping: Option<Shaping>,
}

/// Link rates of a shaped bed, in Mbit/s: the operator's uplink to the bridge, and each
/// host's link to it. Each applies in both directions of its link.
#[derive(Clone, Copy, Debug)]
pub struct Shaping {
    pub operator_uplink_mbit: u32,
    pub host_link_mbit: u32,
}

impl TestBedBuilder {
    /// Adds the operator namespace and shapes the links (see the module doc): for benchmarks
    /// of what crosses the operator's uplink. Tests keep unshaped beds.
    pub fn shaped(mut self, shaping: Shaping) -> Self {
        self.shaping = Some(shaping);
        self
    }

    /// Creates the user `deploy` (key login with the bed's client key, passwordless `sudo`)
    /// on these hosts.
    pub fn sudo_user(mut self, hosts: &[usize]) -> Self {
        self.sudo_hosts.extend_from_slice(hosts);
        self
    }

    /// Sets this password for root (and `deploy`) on every host and turns on sshd's
    /// password authentication, for tests of password logins.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }

    /// A bash script (`set -euo pipefail`) run as root inside host `index`, in `/root`, on its
    /// first boot before sshd starts. Its writes stay on that host; a failure fails the start.
    pub fn setup(mut self, index: usize, script: &str) -> Self {
        let text = self.setup.entry(index).or_default();
        text.push_str(script);
        text.push('\n');
        self
    }

    /// As [`setup`](Self::setup), on every host (after the host's own setup).
    pub fn setup_all(mut self, script: &str) -> Self {
        self.setup_all.push_str(script);
        self.setup_all.push('\n');
        self
    }

    pub fn start(self) -> TestBed {
        TestBed::start_with(self)
    }
}

/// One host of a bed.
pub struct Host {
    index: usize,
    hostname: String,
    ip: Ipv4Addr,
    netns: String,
    veth: String,
    dir: PathBuf,
    host_key: String,
    fingerprint: String,
    sudo_user: bool,
    process: Mutex<Option<HostProcess>>,
    /// The kept root connection of [`TestBed::ssh`] (an `ssh -M` in the hub).
    master: Mutex<Option<Child>>,
}

impl Host {
    pub fn index(&self) -> usize {
        self.index
    }

    /// The host's private address, reachable from the hub namespace only.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    pub fn ssh_port(&self) -> u16 {
        22
    }

    /// `node-INDEX`, the host's UTS hostname (and so its Kubernetes node name).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The host's public host key, `ssh-ed25519 AAAA...` (as in `known_hosts`).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The host key's fingerprint as OpenSSH prints it: `SHA256:` + unpadded base64.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether the host has the `deploy` sudo user.
    pub fn has_sudo_user(&self) -> bool {
        self.sudo_user
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// What sshd and the host's init printed (sshd logs at INFO to stderr).
    pub fn console_log(&self) -> String {
        fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }
}

/// A host's running `unshare` (our child) and its child, the host's PID 1.
struct HostProcess {
    unshare: Child,
    /// Root-namespace PID of the host's PID 1, once `unshare` has forked it.
    pid1: Option<u32>,
}

/// A running bed. Dropping it kills every host and removes every namespace and file.
pub struct TestBed {
    id: String,
    dir: PathBuf,
    net: [u8; 3],
    hub_netns: String,
    bridge: String,
    hosts: Vec<Host>,
    /// Namespaces created (or about to be), in creation order; mirrors the `netns` file.
    netns: Vec<String>,
    password: Option<String>,
    /// The operator namespace of a shaped bed, with its rates.
    operator: Option<(String, Shaping)>,
}

impl TestBed {
    /// `n` hosts as root with the default options.
    pub fn start(n: usize) -> TestBed {
        TestBed::builder(n).start()
    }

    pub fn builder(n: usize) -> TestBedBuilder {
        TestBedBuilder {
            hosts: n,
            sudo_hosts: Vec::new(),
            password: None,
            setup_all: String::new(),
            setup: BTreeMap::new(),
            shaping: None,
        }
    }

    fn start_with(options: TestBedBuilder) -> TestBed {
        let n = options.hosts;
        assert!(
            (1..=MAX_HOSTS).contains(&n),
            "a test bed has 1 to {MAX_HOSTS} hosts, not {n}"
        );
        for &i in options.sudo_hosts.iter().chain(options.setup.keys()) {
            assert!(i < n, "host {i} does not exist in a bed of {n} hosts");
        }
        require_root();
        require_tool(SSHD, "openssh-server");
        require_tool(SSH, "openssh-client");
        require_tool(SSH_KEYGEN, "openssh-client");
        if !options.sudo_hosts.is_empty() {
            require_tool(SUDO, "sudo");
        }
        if options.shaping.is_some() {
            require_tool(TC, "iproute2");
        }
        TestBed::reap_leftovers();

        let (id, dir) = claim_bed_dir();
        let [a, b] = u16::from_str_radix(&id[PREFIX.len()..], 16)
            .expect("hex bed id")
            .to_be_bytes();
        // From here on a panic drops the half-built bed, which cleans up what exists.
        let mut bed = TestBed {
            hub_netns: format!("{id}-hub"),
            bridge: format!("{id}-br"),
            net: [10, a, b],
            id,
            dir,
            hosts: Vec::new(),
            netns: Vec::new(),
            password: options.password.clone(),
            operator: None,
        };
        bed.write_owner();
        fs::write(bed.dir.join("host-init.sh"), HOST_INIT).expect("write host-init.sh");
        bed.make_keys(n);
        for i in 0..n {
            bed.hosts.push(bed.prepare_host(i, &options));
        }
        bed.write_known_hosts();
        bed.make_network();
        if let Some(shaping) = options.shaping {
            bed.shape_network(shaping);
        }
        for i in 0..n {
            bed.spawn_host(i, true);
        }
        bed.wait_ready(&(0..n).collect::<Vec<_>>());
        bed
    }

    /// The bed's id, e.g. `sltb3fa0`: the prefix of its namespaces and links.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bed's directory (client key, known_hosts, hosts' disks and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn host(&self, index: usize) -> &Host {
        self.hosts
            .get(index)
            .unwrap_or_else(|| panic!("no host {index}: the bed has {}", self.hosts.len()))
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    /// The hub namespace: the only place the hosts' addresses are reachable from.
    pub fn hub_netns(&self) -> &str {
        &self.hub_netns
    }

    /// The hub's address on the bridge, `10.A.B.1`.
    pub fn hub_ip(&self) -> Ipv4Addr {
        let [x, a, b] = self.net;
        Ipv4Addr::new(x, a, b, 1)
    }

    /// The bed's subnet, `10.A.B.0/24`.
    pub fn subnet(&self) -> String {
        let [x, a, b] = self.net;
        format!("{x}.{a}.{b}.0/24")
    }

    /// The private half of the ed25519 client key every host authorizes (root and `deploy`).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The harness's own key, used by [`ssh`](Self::ssh) and friends: hosts log which key
    /// logged in, so a test can count the logins of the engine (the client key) alone.
    pub fn harness_key_path(&self) -> PathBuf {
        self.dir.join("harness_ed25519")
    }

    /// How many times the client key (the engine's, not the harness's) logged in to host
    /// `index` since the bed started, restarts included, read from sshd's log.
    pub fn client_logins(&self, index: usize) -> usize {
        let public = fs::read_to_string(self.dir.join("id_ed25519.pub")).expect("client key");
        let fingerprint = fingerprint(&public);
        self.host(index)
            .console_log()
            .lines()
            .filter(|l| l.starts_with("Accepted publickey for ") && l.ends_with(&fingerprint))
            .count()
    }

    /// A `known_hosts` file with every host's key, by address.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The root password set by [`TestBedBuilder::password`].
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `program` run inside the hub namespace (`ip netns exec HUB program`), where the hosts'
    /// addresses are reachable: how tests run the engine under test against the bed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hub_netns]).arg(program);
        cmd
    }

    /// `program` run inside the operator namespace of a shaped bed, behind the operator's
    /// uplink: how benchmarks run the engine when what crosses that link matters.
    pub fn operator_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let (netns, _) = self
            .operator
            .as_ref()
            .expect("operator_command needs a shaped bed (TestBedBuilder::shaped)");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns]).arg(program);
        cmd
    }

    /// The operator's address on the bridge, `10.A.B.2`, in a shaped bed.
    pub fn operator_ip(&self) -> Option<Ipv4Addr> {
        let [x, a, b] = self.net;
        self.operator
            .as_ref()
            .map(|_| Ipv4Addr::new(x, a, b, OPERATOR_HOST))
    }

    /// The rates of a shaped bed.
    pub fn shaping(&self) -> Option<Shaping> {
        self.operator.as_ref().map(|(_, s)| *s)
    }

    /// Moves the calling thread into the hub's network namespace (`setns(2)`), so a client
    /// running in this process (the SSH transport under test) reaches the hosts. Only this
    /// thread moves: a network namespace is per thread on Linux. Call it on a thread made for
    /// the purpose, and run that thread's async code on a current-thread runtime.
    pub fn enter_hub(&self) {
        let path = Path::new("/run/netns").join(&self.hub_netns);
        let ns =
            fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("cannot enter {}: {e}", self.hub_netns));
    }

    /// An OpenSSH client to `user@host` inside the hub, with the harness key and the bed's
    /// known_hosts, in batch mode; append the remote command (one shell string) and run it.
    pub fn ssh_command(&self, index: usize, user: &str) -> Command {
        self.ssh_command_with_timeout(index, user, SSH_CONNECT_TIMEOUT)
    }

    /// [`ssh_command`](Self::ssh_command) with another connect timeout (whole seconds, at
    /// least 1). OpenSSH keeps the first value of an option, so it cannot be appended later.
    pub fn ssh_command_with_timeout(&self, index: usize, user: &str, timeout: Duration) -> Command {
        let host = self.host(index);
        let mut cmd = self.command(SSH);
        cmd.args(SSH_OPTIONS)
            .arg("-o")
            .arg(format!("ConnectTimeout={}", timeout.as_secs().max(1)))
            .arg("-i")
            .arg(self.harness_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts_path().display()
            ))
            .arg(format!("{user}@{}", host.ip));
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `command` on host `index` as root over SSH and returns what happened.
    pub fn ssh(&self, index: usize, command: &str) -> Output {
        self.ssh_as(index, "root", command)
    }

    /// Root's commands go over one kept connection per host (an OpenSSH control master: a
    /// new session costs ~7 ms instead of a ~120 ms handshake); other users connect anew.
    pub fn ssh_as(&self, index: usize, user: &str, command: &str) -> Output {
        let mut cmd = self.ssh_command(index, user);
        if user == "root"
            && let Some(socket) = self.control_socket(index)
        {
            cmd.arg("-S").arg(socket).args(["-o", "ControlMaster=no"]);
        }
        cmd.arg(command)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SSH}: {e}"))
    }

    /// stdout of `command` run as root on host `index`; panics with its stderr if it fails.
    pub fn ssh_ok(&self, index: usize, command: &str) -> String {
        let out = self.ssh(index, command);
        assert!(
            out.status.success(),
            "`{command}` on host {index} ({}) failed with {}:\n{}",
            self.host(index).ip,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Copies the contents of the local directory `from` into `to` on host `index` (created if
    /// missing), with tar over SSH; modes are kept.
    pub fn copy_to(&self, index: usize, from: &Path, to: &str) {
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(from)
            .args(["-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn tar");
        let remote = format!("mkdir -p {0} && tar -C {0} -xf -", shell_quote(to));
        let out = self
            .ssh_command(index, "root")
            .arg(remote)
            .stdin(tar.stdout.take().expect("tar stdout"))
            .output()
            .expect("run ssh");
        let tar_status = tar.wait().expect("wait for tar");
        assert!(
            tar_status.success() && out.status.success(),
            "copying {} to host {index}:{to} failed (tar: {tar_status}, ssh: {}):\n{}",
            from.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every file, directory and symlink under `path` on host `index` (not crossing mounts),
    /// with its mode and content digest; empty when `path` does not exist.
    pub fn file_tree(&self, index: usize, path: &str) -> FileTree {
        let command = format!(
            "bash -c {} _ {}",
            shell_quote(FILE_TREE_SCRIPT),
            shell_quote(path)
        );
        let out = self.ssh(index, &command);
        assert!(
            out.status.success(),
            "listing {path} on host {index} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        parse_file_tree(&out.stdout)
    }

    /// The control socket of host `index`'s kept root connection, started on first use; `None`
    /// if it cannot be opened (the host is down), and then commands connect on their own.
    fn control_socket(&self, index: usize) -> Option<PathBuf> {
        let host = self.host(index);
        let socket = host.dir.join("ssh.sock");
        let mut master = host.master.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = master.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Some(socket);
        }
        let _ = fs::remove_file(&socket);
        let mut child = self
            .ssh_command(index, "root")
            .arg("-S")
            .arg(&socket)
            .args(["-M", "-N", "-o", "ControlPersist=no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + SSH_CONNECT_TIMEOUT;
        while !socket.exists() {
            if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        *master = Some(child);
        Some(socket)
    }

    /// Closes host `index`'s kept connection (before a fault, so later commands see the fault
    /// as a new connection would, and do not hang on a dead one).
    fn stop_master(&self, index: usize) {
        let host = self.host(index);
        let mut master = host.master.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(host.dir.join("ssh.sock"));
    }

    /// Where this process sees host `index`'s own mounts (its `/run`, `/tmp`): the root of
    /// its PID 1, `/proc/PID/root`; say, to reach a unix socket a service of the host
    /// listens on.
    pub fn host_root(&self, index: usize) -> PathBuf {
        let host = self.host(index);
        let process = host.process.lock().unwrap();
        let pid1 = process
            .as_ref()
            .and_then(|p| p.pid1)
            .unwrap_or_else(|| panic!("host {index} is not running"));
        PathBuf::from(format!("/proc/{pid1}/root"))
    }

    /// Crashes host `index`: SIGKILL to the PID 1 of its PID namespace, so every process of
    /// the host dies at once. Its disk and network stay; [`restart`](Self::restart) boots it.
    pub fn kill(&self, index: usize) {
        self.stop_master(index);
        let host = self.host(index);
        let mut process = host.process.lock().unwrap();
        if let Some(p) = process.take() {
            stop_host(p);
        }
    }

    /// Whether host `index` is running (not killed, and its PID 1 has not exited).
    pub fn is_running(&self, index: usize) -> bool {
        let host = self.host(index);
        let mut process = host.process.lock().unwrap();
        match process.as_mut() {
            Some(p) => matches!(p.unshare.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Boots host `index` again with the disk it had (`/etc`, `/var`, ... keep their changes;
    /// `/tmp`, `/run` start empty), killing it first if it runs; returns when sshd listens.
    pub fn restart(&self, index: usize) {
        self.kill(index);
        self.spawn_host(index, false);
        self.wait_ready(&[index]);
    }

    /// Network partition: takes the hub side of host `index`'s link down. New connections time
    /// out; open ones stall.
    pub fn cut(&self, index: usize) {
        self.set_link(index, "down");
    }

    /// Undoes [`cut`](Self::cut).
    pub fn heal(&self, index: usize) {
        self.set_link(index, "up");
    }

    fn set_link(&self, index: usize, state: &str) {
        self.stop_master(index);
        let veth = &self.host(index).veth;
        run(Command::new("ip").args(["-n", &self.hub_netns, "link", "set", veth, state]));
    }

    /// Removes beds of test processes that are gone (killed before Drop could run): their host
    /// processes (checked by `/proc/PID/cmdline`), namespaces and directories. Also deletes
    /// namespaces of ours whose bed directory no longer exists.
    pub fn reap_leftovers() {
        let root = beds_root();
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(PREFIX) && entry.path().is_dir() && is_abandoned(&entry.path())
                {
                    clean_bed_dir(&entry.path());
                }
            }
        }
        let Ok(entries) = fs::read_dir("/run/netns") else {
            return;
        };
        for entry in entries.flatten() {
            let ns = entry.file_name().to_string_lossy().into_owned();
            let Some(bed) = ns.split('-').next().filter(|b| b.starts_with(PREFIX)) else {
                continue;
            };
            if !ns.contains('-') || root.join(bed).exists() {
                continue;
            }
            kill_marked_processes(&ns, &root.join(bed).to_string_lossy());
            delete_netns(&[ns]);
        }
    }

    // ---- start-up ----

    fn write_owner(&self) {
        let pid = std::process::id();
        let start = process_start_time(pid).expect("our own start time");
        let tmp = self.dir.join("owner.tmp");
        fs::write(&tmp, format!("{pid} {start}\n")).expect("write owner");
        fs::rename(&tmp, self.dir.join("owner")).expect("rename owner");
    }

    /// The client key and one host key per host, made by concurrent `ssh-keygen`s.
    fn make_keys(&self, n: usize) {
        let mut jobs = vec![
            (self.client_key_path(), format!("{}-client", self.id)),
            (self.harness_key_path(), format!("{}-harness", self.id)),
        ];
        for i in 0..n {
            let ssh_dir = self.host_dir(i).join("upper/etc/ssh");
            fs::create_dir_all(&ssh_dir).expect("host etc/ssh dir");
            jobs.push((ssh_dir.join("ssh_host_ed25519_key"), format!("node-{i}")));
        }
        let children: Vec<(PathBuf, Child)> = jobs
            .into_iter()
            .map(|(path, comment)| {
                let child = Command::new(SSH_KEYGEN)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
                    .arg(&path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot run {SSH_KEYGEN}: {e}"));
                (path, child)
            })
            .collect();
        for (path, child) in children {
            let out = child.wait_with_output().expect("wait for ssh-keygen");
            assert!(
                out.status.success(),
                "ssh-keygen for {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn host_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("hosts/{i}"))
    }

    fn host_ip(&self, i: usize) -> Ipv4Addr {
        let [x, a, b] = self.net;
        Ipv4Addr::new(x, a, b, (HOST_BASE + i) as u8)
    }

    /// The host's disk: overlay upper/work dirs pre-filled with its sshd config, host key,
    /// hostname, hosts file and machine id; its `/root` with the client key authorized.
    fn prepare_host(&self, i: usize, options: &TestBedBuilder) -> Host {
        let dir = self.host_dir(i);
        let hostname = format!("node-{i}");
        let ip = self.host_ip(i);
        for d in ["etc", "var", "usr", "opt", "home", "srv"] {
            fs::create_dir_all(dir.join("upper").join(d)).expect("upper dir");
            fs::create_dir_all(dir.join("work").join(d)).expect("work dir");
        }
        let etc = dir.join("upper/etc");
        let password_auth = if options.password.is_some() {
            "PasswordAuthentication yes\nPermitRootLogin yes\n"
        } else {
            "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
        };
        // No MaxSessions line: OpenSSH's default (10) is what the engine must live with.
        let sshd_config = format!(
            "Port 22\n\
             ListenAddress 0.0.0.0\n\
             HostKey /etc/ssh/ssh_host_ed25519_key\n\
             PidFile /run/sshd.pid\n\
             {password_auth}\
             PubkeyAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             UseDNS no\n\
             X11Forwarding no\n\
             MaxStartups 200:30:400\n\
             LogLevel INFO\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n"
        );
        write_file(&etc.join("ssh/sshd_config"), &sshd_config, 0o644);
        write_file(&etc.join("hostname"), &format!("{hostname}\n"), 0o644);
        write_file(
            &etc.join("hosts"),
            &format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{ip}\t{hostname}\n"),
            0o644,
        );
        let mut machine_id = [0u8; 16];
        getrandom::fill(&mut machine_id).expect("random machine id");
        write_file(
            &etc.join("machine-id"),
            &format!("{}\n", hex(&machine_id)),
            0o444,
        );
        let root = dir.join("root");
        fs::create_dir_all(root.join(".ssh")).expect("host /root/.ssh");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("chmod /root");
        fs::set_permissions(root.join(".ssh"), fs::Permissions::from_mode(0o700))
            .expect("chmod /root/.ssh");
        let mut authorized = String::new();
        for key in ["id_ed25519.pub", "harness_ed25519.pub"] {
            authorized += &fs::read_to_string(self.dir.join(key)).expect("client key");
        }
        write_file(&root.join(".ssh/authorized_keys"), &authorized, 0o600);

        let sudo_user = options.sudo_hosts.contains(&i);
        let mut setup = String::new();
        if sudo_user {
            setup.push_str(SUDO_SETUP);
        }
        if let Some(password) = &options.password {
            let users = if sudo_user { "root deploy" } else { "root" };
            let _ = writeln!(
                setup,
                "for u in {users}; do printf '%s:%s\\n' \"$u\" {} | chpasswd; done",
                shell_quote(password)
            );
        }
        if let Some(script) = options.setup.get(&i) {
            setup.push_str(script);
        }
        setup.push_str(&options.setup_all);
        if !setup.is_empty() {
            write_file(&dir.join("setup.sh"), &setup, 0o600);
        }

        let key_text =
            fs::read_to_string(etc.join("ssh/ssh_host_ed25519_key.pub")).expect("host key");
        let mut fields = key_text.split_whitespace();
        let host_key = format!(
            "{} {}",
            fields.next().expect("key type"),
            fields.next().expect("key blob")
        );
        let fingerprint = fingerprint(&host_key);
        Host {
            index: i,
            hostname,
            ip,
            netns: format!("{}-{i}", self.id),
            veth: format!("{}-v{i}", self.id),
            dir,
            host_key,
            fingerprint,
            sudo_user,
            process: Mutex::new(None),
            master: Mutex::new(None),
        }
    }

    fn write_known_hosts(&self) {
        let text: String = self
            .hosts
            .iter()
            .map(|h| format!("{} {}\n", h.ip, h.host_key))
            .collect();
        write_file(&self.known_hosts_path(), &text, 0o644);
    }

    /// The hub with its bridge, and one netns + veth pair per host, made by two `ip -batch`
    /// runs. Hosts configure their own side (`eth0`) in their init.
    fn make_network(&mut self) {
        let mut names = vec![self.hub_netns.clone()];
        names.extend(self.hosts.iter().map(|h| h.netns.clone()));
        // Recorded before they exist, so a crash between the two leaves nothing unknown.
        let mut list = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("netns"))
            .expect("open netns list");
        for name in &names {
            writeln!(list, "{name}").expect("record netns");
        }
        list.sync_all().expect("sync netns list");
        self.netns.extend(names);

        let mut root = String::new();
        for ns in &self.netns {
            let _ = writeln!(root, "netns add {ns}");
        }
        let _ = writeln!(
            root,
            "link add {} netns {} type bridge",
            self.bridge, self.hub_netns
        );
        for h in &self.hosts {
            let _ = writeln!(
                root,
                "link add {} netns {} type veth peer name eth0 netns {}",
                h.veth, self.hub_netns, h.netns
            );
        }
        ip_batch(&[], &root);

        let mut hub = format!(
            "link set lo up\naddr add {}/24 dev {br}\nlink set {br} up\n",
            self.hub_ip(),
            br = self.bridge
        );
        for h in &self.hosts {
            let _ = writeln!(hub, "link set {} master {} up", h.veth, self.bridge);
        }
        ip_batch(&["-n", &self.hub_netns], &hub);
    }

    /// The operator namespace with its veth on the bridge, then a token bucket (`tbf`) on
    /// both ends of every link: the operator's at the uplink rate, each host's at the host
    /// rate. Egress of the hub end shapes what reaches the namespace, egress of the
    /// namespace's `eth0` what leaves it. A configured root qdisc survives the host's init
    /// bringing `eth0` up.
    fn shape_network(&mut self, shaping: Shaping) {
        let netns = format!("{}-op", self.id);
        let veth = format!("{}-vop", self.id);
        let mut list = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("netns"))
            .expect("open netns list");
        writeln!(list, "{netns}").expect("record netns");
        list.sync_all().expect("sync netns list");
        self.netns.push(netns.clone());
        ip_batch(
            &[],
            &format!(
                "netns add {netns}
link add {veth} netns {} type veth peer name eth0 netns {netns}
",
                self.hub_netns
            ),
        );
        ip_batch(
            &["-n", &self.hub_netns],
            &format!(
                "link set {veth} master {} up
",
                self.bridge
            ),
        );
        let [x, a, b] = self.net;
        ip_batch(
            &["-n", &netns],
            &format!(
                "link set lo up
addr add {}/24 dev eth0
link set eth0 up
",
                Ipv4Addr::new(x, a, b, OPERATOR_HOST)
            ),
        );

        let uplink = tbf(shaping.operator_uplink_mbit);
        let host_link = tbf(shaping.host_link_mbit);
        let mut hub = format!(
            "qdisc add dev {veth} root {uplink}
"
        );
        for h in &self.hosts {
            let _ = writeln!(hub, "qdisc add dev {} root {host_link}", h.veth);
        }
        tc_batch(&self.hub_netns, &hub);
        tc_batch(
            &netns,
            &format!(
                "qdisc add dev eth0 root {uplink}
"
            ),
        );
        for h in &self.hosts {
            tc_batch(
                &h.netns,
                &format!(
                    "qdisc add dev eth0 root {host_link}
"
                ),
            );
        }
        self.operator = Some((netns, shaping));
    }

    fn spawn_host(&self, i: usize, first_boot: bool) {
        let host = self.host(i);
        let console = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(host.dir.join("console.log"))
            .expect("console log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.netns])
            .args([
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
            ])
            .args(["--propagation", "private", "/bin/bash"])
            .arg(self.dir.join("host-init.sh"))
            .arg(&host.hostname)
            .arg(&host.dir)
            .arg(format!("{}/24", host.ip));
        let setup = host.dir.join("setup.sh");
        if first_boot && setup.exists() {
            cmd.arg(setup);
        }
        // A clean environment: nothing of the test's leaks into hosts. Its own process group:
        // a terminal's Ctrl-C, which kills the test before any Drop runs, leaves the host whole
        // for the next bed start to reap, rather than half-killed. Every fd std opens is
        // close-on-exec, so no lock or pipe of ours leaks into a host.
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("console fd"))
            .stderr(console)
            .process_group(0);
        let unshare = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start host {i}: {e}"));
        let pid = unshare.id();
        write_file(&host.dir.join("pid"), &format!("{pid}\n"), 0o644);
        *host.process.lock().unwrap() = Some(HostProcess {
            unshare,
            pid1: None,
        });
    }

    /// Waits until every listed host's sshd listens on port 22, read from the host netns's
    /// `/proc/PID/net/tcp` (no probe connection, no ARP wait for a host whose `eth0` is not up
    /// yet), then proves each is reachable from the hub by connecting to it there.
    fn wait_ready(&self, indices: &[usize]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<usize> = indices.to_vec();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for &i in &pending {
                let host = self.host(i);
                let mut guard = host.process.lock().unwrap();
                let p = guard
                    .as_mut()
                    .unwrap_or_else(|| panic!("host {i} is not running"));
                if let Ok(Some(status)) = p.unshare.try_wait() {
                    drop(guard);
                    panic!(
                        "host {i} ({}) exited during start-up with {status}:\n{}",
                        host.hostname,
                        host.console_log()
                    );
                }
                let pid = p.unshare.id();
                if p.pid1.is_none() {
                    p.pid1 = first_child(pid);
                    if let Some(pid1) = p.pid1 {
                        write_file(&host.dir.join("pid"), &format!("{pid} {pid1}\n"), 0o644);
                    }
                }
                if p.pid1.is_none() || !listens_on_22(pid) {
                    still.push(i);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let logs: String = pending
                    .iter()
                    .map(|&i| format!("--- host {i} ---\n{}", self.host(i).console_log()))
                    .collect();
                panic!(
                    "hosts {pending:?} did not listen on port 22 within {READY_TIMEOUT:?}\n{logs}"
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ips: Vec<String> = indices
            .iter()
            .map(|&i| self.host(i).ip.to_string())
            .collect();
        let out = self
            .command("bash")
            .args([
                "-c",
                r#"for ip; do : <>"/dev/tcp/$ip/22" || echo "$ip"; done"#,
                "_",
            ])
            .args(&ips)
            .stdin(Stdio::null())
            .output()
            .expect("run bash in the hub");
        let unreachable = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && unreachable.trim().is_empty(),
            "hosts listen but are not reachable from the hub: {unreachable}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        for i in 0..self.hosts.len() {
            self.stop_master(i);
        }
        // Kill every host first (all PID 1s at once), then wait for them.
        let mut processes: Vec<HostProcess> = self
            .hosts
            .iter()
            .filter_map(|h| {
                // A test that panicked while holding the lock still gets its hosts stopped.
                let mut guard = h.process.lock().unwrap_or_else(|e| e.into_inner());
                guard.take()
            })
            .collect();
        let pid1s: Vec<u32> = processes.iter_mut().filter_map(verified_pid1).collect();
        kill_pids(&pid1s);
        for p in processes {
            stop_host(p);
        }
        delete_netns(&self.netns);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            warn(&format!(
                "test bed: cannot remove {}: {e}",
                self.dir.display()
            ));
        }
    }
}

/// Stops one host: SIGKILL to its PID 1 (if that PID is still our `unshare`'s child), then
/// waits for `unshare` to reap it and exit; SIGKILL to `unshare` if it does not.
fn stop_host(mut p: HostProcess) {
    if let Some(pid1) = verified_pid1(&mut p) {
        kill_pids(&[pid1]);
    }
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        match p.unshare.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    // Still our unreaped child, so the PID is still ours to kill.
    let _ = p.unshare.kill();
    let _ = p.unshare.wait();
}

/// The host's PID 1, if `unshare` still runs and the PID is still its child.
fn verified_pid1(p: &mut HostProcess) -> Option<u32> {
    if !matches!(p.unshare.try_wait(), Ok(None)) {
        return None;
    }
    let pid = p.unshare.id();
    let pid1 = p.pid1.or_else(|| first_child(pid))?;
    (parent_of(pid1) == Some(pid)).then_some(pid1)
}

/// Whether an abandoned bed: its owner process is gone (PID missing, or reused by another
/// process with a different start time), or it never got an owner and is old.
fn is_abandoned(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("owner")) {
        Ok(text) => {
            let mut f = text.split_whitespace();
            let pid: Option<u32> = f.next().and_then(|p| p.parse().ok());
            let start: Option<u64> = f.next().and_then(|s| s.parse().ok());
            match (pid, start) {
                (Some(pid), Some(start)) => process_start_time(pid) != Some(start),
                _ => true,
            }
        }
        Err(_) => fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > UNOWNED_GRACE),
    }
}

/// Cleans an abandoned bed from what its directory recorded.
fn clean_bed_dir(dir: &Path) {
    let marker = dir.join("host-init.sh").to_string_lossy().into_owned();
    let mut kill = Vec::new();
    if let Ok(hosts) = fs::read_dir(dir.join("hosts")) {
        for host in hosts.flatten() {
            let Ok(text) = fs::read_to_string(host.path().join("pid")) else {
                continue;
            };
            let pids: Vec<u32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            let Some(&unshare) = pids.first() else {
                continue;
            };
            if !cmdline(unshare).is_some_and(|c| c.contains(&marker)) {
                continue;
            }
            // Its PID 1 if still its child (killing it takes the namespace down), else itself.
            match pids.get(1) {
                Some(&pid1) if parent_of(pid1) == Some(unshare) => kill.push(pid1),
                _ => kill.push(unshare),
            }
        }
    }
    kill_pids(&kill);
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while kill.iter().any(|&p| is_live(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Ok(text) = fs::read_to_string(dir.join("netns")) {
        let names: Vec<String> = text.lines().map(str::to_string).collect();
        // What else of the bed still runs there: the hub's kept SSH connections.
        for ns in &names {
            kill_marked_processes(ns, &dir.to_string_lossy());
        }
        delete_netns(&names);
    }
    let _ = fs::remove_dir_all(dir);
}

/// `$TMPDIR/sealer-testbeds`, created on demand.
fn beds_root() -> PathBuf {
    std::env::temp_dir().join("sealer-testbeds")
}

/// Claims a fresh random id by creating its directory (atomic: one winner per id).
fn claim_bed_dir() -> (String, PathBuf) {
    let root = beds_root();
    fs::create_dir_all(&root).expect("create the test beds' root directory");
    for _ in 0..1000 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).expect("random bed id");
        let id = format!("{PREFIX}{}", hex(&bytes));
        let dir = root.join(&id);
        match fs::create_dir(&dir) {
            Ok(()) => return (id, dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
    panic!("no free test bed id in {}", root.display());
}

fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    assert!(
        root,
        "the SSH test bed needs root (network, mount and PID namespaces): run the tests as root"
    );
}

/// Fails the test, loudly, when a tool the test bed needs is not installed.
pub fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: the SSH test bed needs Debian's `{package}` package. Run the \
         README's test command, `./scripts/test.sh`, which installs it (or `apt-get install -y \
         openssh-server openssh-client sudo`), then run the tests again."
    );
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip [GLOBAL...] -batch -` with `commands` on stdin; panics naming the failed command.
fn ip_batch(global: &[&str], commands: &str) {
    let mut child = Command::new("ip")
        .args(global)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ip -batch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(commands.as_bytes())
        .expect("write ip batch");
    let out = child.wait_with_output().expect("wait for ip -batch");
    assert!(
        out.status.success(),
        "ip {global:?} -batch failed: {}\ncommands:\n{commands}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes these namespaces, last created first; missing ones are fine (`-force` goes on).
/// A token bucket of `mbit` Mbit/s. The bucket holds 10 ms of traffic (at least 128 KiB, so
/// a 64 KiB GSO segment of the veth always fits), and up to 50 ms may queue.
fn tbf(mbit: u32) -> String {
    let burst = (u64::from(mbit) * 1_000_000 / 8 / 100).max(128 * 1024);
    format!("tbf rate {mbit}mbit burst {burst} latency 50ms")
}

/// `tc -n NETNS -batch -` with these commands, one per line; panics with tc's message.
fn tc_batch(netns: &str, commands: &str) {
    let mut child = Command::new(TC)
        .args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {TC}: {e}"));
    child
        .stdin
        .take()
        .expect("tc stdin")
        .write_all(commands.as_bytes())
        .expect("write tc batch");
    let out = child.wait_with_output().expect("wait for tc");
    assert!(
        out.status.success(),
        "tc -n {netns} failed: {}
{commands}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn delete_netns(names: &[String]) {
    let existing: String = names
        .iter()
        .rev()
        .filter(|n| !n.is_empty() && Path::new("/run/netns").join(n).exists())
        .map(|n| format!("netns del {n}\n"))
        .collect();
    if existing.is_empty() {
        return;
    }
    let result = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(existing.as_bytes())?;
            child.wait_with_output()
        });
    match result {
        Ok(out) if out.status.success() => {}
        Ok(out) => warn(&format!(
            "test bed: deleting namespaces failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => warn(&format!("test bed: cannot run ip netns del: {e}")),
    }
}

/// SIGKILL to the processes in netns `ns` whose command line names `marker` (a bed directory).
fn kill_marked_processes(ns: &str, marker: &str) {
    if !Path::new("/run/netns").join(ns).exists() {
        return;
    }
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| cmdline(p).is_some_and(|c| c.contains(marker)))
            .collect();
        kill_pids(&pids);
    }
}

/// SIGKILL to these PIDs (already checked by the caller), in one `kill` run.
fn kill_pids(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `/proc/PID/cmdline` with NULs as spaces; `None` for a missing process (or a zombie).
fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (!raw.is_empty()).then(|| String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Fields of `/proc/PID/stat` after the command name: `[state, ppid, ...]`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Start time in clock ticks since boot: with the PID, identifies a process uniquely.
fn process_start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

fn is_live(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

fn first_child(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether the netns of process `pid` has a TCP socket listening on port 22.
fn listens_on_22(pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    // `sl local_address rem_address st ...`: local `0.0.0.0:22` is `00000000:0016`, 0A = LISTEN.
    text.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(":0016") && f[3] == "0A"
    })
}

/// OpenSSH's fingerprint of `TYPE BASE64` public key: `SHA256:` + unpadded base64 digest.
fn fingerprint(key: &str) -> String {
    let blob = key.split_whitespace().nth(1).expect("key blob");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .expect("base64 key blob");
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(raw))
    )
}

fn parse_file_tree(raw: &[u8]) -> FileTree {
    let mut tree = FileTree::new();
    let mut digests = BTreeMap::new();
    // Not filtered: the link target after each `M` record is an empty record for non-links.
    let mut records = raw.split(|&b| b == 0);
    while let Some(record) = records.next() {
        if record.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(record);
        if let Some(entry) = text.strip_prefix("M ") {
            let link = records
                .next()
                .map(|l| String::from_utf8_lossy(l).into_owned());
            let mut f = entry.splitn(3, ' ');
            let (kind, perm, path) = (f.next(), f.next(), f.next());
            let (Some(kind), Some(perm), Some(path)) = (kind, perm, path) else {
                panic!("unexpected find record {text:?}");
            };
            let perm = u32::from_str_radix(perm, 8).expect("octal mode");
            let (kind_bits, digest) = match kind {
                "f" => (0o100000, String::new()),
                "d" => (0o040000, String::new()),
                "l" => (
                    0o120000,
                    hex(&Sha256::digest(link.unwrap_or_default().as_bytes())),
                ),
                "p" => (0o010000, String::new()),
                "s" => (0o140000, String::new()),
                "c" => (0o020000, String::new()),
                "b" => (0o060000, String::new()),
                other => panic!("unknown file type {other:?} in {text:?}"),
            };
            tree.insert(PathBuf::from(path), (kind_bits | perm, digest));
        } else if let Some((digest, path)) = text.split_once("  ") {
            digests.insert(PathBuf::from(path), digest.to_string());
        } else {
            panic!("unexpected file tree record {text:?}");
        }
    }
    for (path, digest) in digests {
        if let Some(entry) = tree.get_mut(&path) {
            entry.1 = digest;
        }
    }
    tree
}

fn write_file(path: &Path, text: &str, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("parent dir");
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A POSIX shell single-quoted word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(clippy::print_stderr)]
fn warn(message: &str) {
    eprintln!("warning: {message}");
}
