//! The SSH transport against real `sshd` hosts of the test bed. The transport runs in this
//! process, on a thread moved into the bed's hub network namespace (`TestBed::enter_hub`).

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sealer_providers::quote::quote;
use sealer_providers::ssh::{MAX_CHANNELS, SshConfig, SshTransport};
use sealer_providers::{
    Exec, ExecOutput, ExitStatus, Stdin, Transport, TransportError, TransportErrorKind,
};
use sha2::{Digest as _, Sha256};

use crate::support::testbed::{SUDO_USER, TestBed};

const STEP: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const KEEPALIVE: Duration = Duration::from_secs(1);
/// The transport's promise: a call returns within the step timeout plus this (remote kill
/// delay and slack), or the connect timeouts of one reconnect. Generous for a busy machine.
const GRACE: Duration = Duration::from_secs(8);

/// Runs `f` on a new thread inside the bed's hub namespace, on a current-thread runtime;
/// a panic in it fails the test with its own message.
fn in_hub<T: Send, F: Future<Output = T>>(bed: &TestBed, f: impl FnOnce() -> F + Send) -> T {
    std::thread::scope(|s| {
        let thread = s.spawn(|| {
            bed.enter_hub();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(f())
        });
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Root on host `i` with the bed's client key and known_hosts.
fn config(bed: &TestBed, i: usize) -> SshConfig {
    let mut config = SshConfig::new(bed.host(i).ip().to_string(), "root");
    config.auth.key_file = Some(bed.client_key_path());
    config.host_keys.known_hosts = Some(bed.known_hosts_path());
    config.connect_timeout = CONNECT_TIMEOUT;
    config.keepalive = KEEPALIVE;
    config
}

async fn connect(config: SshConfig) -> SshTransport {
    let host = config.host.clone();
    SshTransport::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connecting to {host}: {e}"))
}

async fn run(t: &SshTransport, script: &str) -> ExecOutput {
    run_with(t, Exec::new(script, STEP)).await
}

async fn run_with(t: &SshTransport, exec: Exec) -> ExecOutput {
    t.exec(&exec, None)
        .await
        .unwrap_or_else(|e| panic!("`{}` on {}: {e}", exec.script, t.host()))
}

/// stdout of a script that must succeed.
async fn ok(t: &SshTransport, script: &str) -> String {
    let out = run(t, script).await;
    assert_eq!(
        out.status,
        ExitStatus::Code(0),
        "`{script}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

async fn connect_err(config: SshConfig) -> TransportError {
    match SshTransport::connect(config).await {
        Ok(t) => panic!("connecting to {} should fail", t.host()),
        Err(e) => e,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn key_auth_runs_commands_and_streams_their_output() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        assert_eq!(t.host(), bed.host(0).ip().to_string());
        assert_eq!(ok(&t, "hostname").await, "node-0\n");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let exec = Exec::new("echo out; echo err >&2; echo more; exit 3", STEP);
        let out = t.exec(&exec, Some(&tx)).await.expect("exec");
        assert_eq!(out.status, ExitStatus::Code(3));
        assert_eq!(out.stdout, b"out\nmore\n");
        assert_eq!(out.stderr, b"err\n");
        drop(tx);
        let (mut streamed_out, mut streamed_err) = (Vec::new(), Vec::new());
        while let Some(chunk) = rx.recv().await {
            if chunk.stderr {
                streamed_err.extend(chunk.bytes);
            } else {
                streamed_out.extend(chunk.bytes);
            }
        }
        assert_eq!((streamed_out, streamed_err), (out.stdout, out.stderr));

        // A signal that kills the command is reported as such.
        let out = run(&t, "kill -KILL $$").await;
        assert_eq!(out.status, ExitStatus::Signal);
    });
}

#[test]
fn password_auth_works_and_a_wrong_password_names_what_was_tried() {
    let bed = TestBed::builder(1).password("pw-Secret").start();
    in_hub(&bed, || async {
        let mut c = config(&bed, 0);
        c.auth.key_file = None;
        c.auth.password = Some("pw-Secret".into());
        let t = connect(c.clone()).await;
        assert_eq!(ok(&t, "id -un").await, "root\n");
        assert_eq!(bed.client_logins(0), 0, "no key was used");

        c.auth.password = Some("wrong-Secret".into());
        let e = connect_err(c).await;
        assert_eq!(e.kind, TransportErrorKind::Auth, "{e}");
        assert_eq!(e.host, bed.host(0).ip().to_string());
        let text = format!("{e} {e:?}");
        assert!(text.contains("tried: password"), "{text}");
        assert!(text.contains("for user root"), "{text}");
        assert!(!text.contains("Secret"), "{text}");
        // What the operator reads, with what to check next (docs/errors.md).
        let ip = bed.host(0).ip().to_string();
        insta::assert_snapshot!("wrong_ssh_password", e.to_string().replace(&ip, "HOST"));
    });
}

#[test]
fn an_unknown_key_file_login_fails_naming_the_key_and_the_server_methods() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let mut c = config(&bed, 0);
        // The harness key is authorized for root; a fresh key is not.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_other");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(status.success());
        c.auth.key_file = Some(key.clone());
        let e = connect_err(c).await;
        assert_eq!(e.kind, TransportErrorKind::Auth, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("publickey with {}", key.display())),
            "{text}"
        );
        assert!(text.contains("the server accepts: publickey"), "{text}");
    });
}

#[test]
fn host_keys_unknown_refused_accepted_new_pinned_changed_and_hashed() {
    let bed = TestBed::start(2);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let expected = bed.host(0).host_key_fingerprint().to_string();
    let ip = bed.host(0).ip().to_string();
    in_hub(&bed, || async {
        // Unknown host: refused, naming its fingerprint and the flag.
        let mut c = config(&bed, 0);
        c.host_keys.known_hosts = Some(empty.clone());
        let e = connect_err(c.clone()).await;
        assert_eq!(e.kind, TransportErrorKind::HostKey, "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{ip}: host key unknown")),
            "{text}"
        );
        assert!(text.contains(&expected), "{text}");
        assert!(text.contains("--accept-new-host-keys"), "{text}");

        // Accepted with accept_new; the fingerprint is OpenSSH's.
        c.host_keys.accept_new = true;
        let t = connect(c.clone()).await;
        assert_eq!(t.host_key_fingerprint(), expected);
        assert_eq!(ok(&t, "echo hi").await, "hi\n");

        // Pinned: the right pin is enough, even with no known_hosts entry.
        c.host_keys.accept_new = false;
        c.host_keys.pinned = Some(expected.clone());
        let t = connect(c.clone()).await;
        assert_eq!(t.host_key_fingerprint(), expected);

        // A wrong pin is a changed key, refused even with accept_new, naming both.
        let other = bed.host(1).host_key_fingerprint().to_string();
        c.host_keys.pinned = Some(other.clone());
        c.host_keys.accept_new = true;
        let e = connect_err(c.clone()).await;
        assert_eq!(e.kind, TransportErrorKind::HostKey, "{e}");
        assert!(
            e.to_string().starts_with(&format!(
                "{ip}: host key changed: expected {other}, got {expected}"
            )),
            "{e}"
        );

        // known_hosts with another key for this address: changed, even with accept_new.
        let wrong = dir.path().join("wrong_known_hosts");
        std::fs::write(&wrong, format!("{ip} {}\n", bed.host(1).host_key())).unwrap();
        c.host_keys.pinned = None;
        c.host_keys.known_hosts = Some(wrong);
        let e = connect_err(c.clone()).await;
        assert_eq!(e.kind, TransportErrorKind::HostKey, "{e}");
        assert!(
            e.to_string().contains(&format!(
                "host key changed: expected {other}, got {expected}"
            )),
            "{e}"
        );

        // Hashed known_hosts entries (ssh-keygen -H) are understood.
        let hashed = dir.path().join("hashed_known_hosts");
        std::fs::copy(bed.known_hosts_path(), &hashed).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&hashed)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = std::fs::read_to_string(&hashed).unwrap();
        assert!(text.starts_with("|1|") && !text.contains(&ip), "{text}");
        c.host_keys.known_hosts = Some(hashed);
        c.host_keys.accept_new = false;
        let t = connect(c).await;
        assert_eq!(t.host_key_fingerprint(), expected);
    });
}

#[test]
fn fifty_sequential_commands_use_one_connection() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        for i in 0..50 {
            assert_eq!(ok(&t, &format!("echo {i}")).await, format!("{i}\n"));
        }
    });
    assert_eq!(bed.client_logins(0), 1);
}

/// 20 commands at once on one transport: at most 8 channels are open at a time, so sshd's
/// `MaxSessions 10` is not exhausted. (Without the cap, and without the transport's retry of
/// a refused open, the 11th channel fails at once: "the host refused to open a channel". With
/// the cap alone it still fails now and then: sshd frees a slot a moment after it closed the
/// channel, so an open sent right behind several closes can be refused; the retry covers it.)
#[test]
fn twenty_concurrent_commands_share_one_connection_within_max_sessions() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        // Each command records how many of them run at the same moment.
        let script = |i: usize| {
            format!(
                "d=/tmp/running; mkdir -p $d; touch $d/{i}; ls $d | wc -l >> /tmp/peaks; \
                 sleep 0.5; rm $d/{i}; echo {i}"
            )
        };
        let scripts: Vec<String> = (0..20).map(script).collect();
        let outs = join_all(scripts.iter().map(|s| run(&t, s))).await;
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(out.status, ExitStatus::Code(0), "{i}");
            assert_eq!(out.stdout, format!("{i}\n").as_bytes());
        }
        let peaks = ok(&t, "cat /tmp/peaks").await;
        let peak = peaks
            .lines()
            .filter_map(|l| l.trim().parse::<usize>().ok())
            .max();
        assert!(peak.is_some_and(|p| p <= MAX_CHANNELS && p > 1), "{peaks}");
    });
    assert_eq!(bed.client_logins(0), 1);
}

#[test]
fn a_sudo_user_runs_as_root_and_a_sudo_that_needs_a_password_is_an_auth_error() {
    // Host 0: passwordless sudo. Host 1: sudo asks deploy's password ("pw-Secret").
    let bed = TestBed::builder(2)
        .sudo_user(&[0, 1])
        .password("pw-Secret")
        .setup(
            1,
            "echo 'deploy ALL=(ALL:ALL) ALL' > /etc/sudoers.d/deploy\n\
             chmod 440 /etc/sudoers.d/deploy",
        )
        .start();
    in_hub(&bed, || async {
        let deploy = |i: usize, password: Option<&str>| {
            let mut c = config(&bed, i);
            c.user = SUDO_USER.to_string();
            c.auth.password = password.map(str::to_string);
            c
        };
        let stdin = b"line 1\nline 2 with 'quotes' and $(no expansion)\n".to_vec();
        let cat = || Exec::new("cat", STEP).with_stdin(Stdin::Bytes(stdin.clone()));

        let t = connect(deploy(0, None)).await;
        assert_eq!(ok(&t, "id -u").await, "0\n");
        assert_eq!(ok(&t, "echo $HOME").await, "/root\n");
        let out = run_with(&t, cat()).await;
        assert_eq!(out.stdout, stdin);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&t, "echo to-err >&2; exit 4").await;
        assert_eq!(out.status, ExitStatus::Code(4));
        assert_eq!(out.stderr, b"to-err\n");

        // A configured password is not fed to a sudo that does not ask for it.
        let t = connect(deploy(0, Some("pw-Secret"))).await;
        assert_eq!(run_with(&t, cat()).await.stdout, stdin);

        // sudo asks for a password and none is configured.
        let t = connect(deploy(1, None)).await;
        let e = t.exec(&Exec::new("id -u", STEP), None).await.unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Auth, "{e}");
        assert!(e.to_string().contains("a password is required"), "{e}");
        assert!(
            e.to_string().contains(&format!(
                "\nhint: allow {SUDO_USER} NOPASSWD in sudoers, or set its `passwd` under `ssh:` in the Clusterfile"
            )),
            "{e}"
        );

        // The configured password answers sudo; it shows nowhere.
        let t = connect(deploy(1, Some("pw-Secret"))).await;
        let out = run(&t, "id -u; echo done >&2").await;
        assert_eq!(out.status, ExitStatus::Code(0));
        assert_eq!(out.stdout, b"0\n");
        assert_eq!(out.stderr, b"done\n");
        let out = run_with(&t, cat()).await;
        assert_eq!(out.stdout, stdin);
        // While a sudo command runs, no process on the host has the password in its arguments.
        let root = connect(config(&bed, 1)).await;
        let slow = Exec::new("sleep 1.5; id -u", STEP);
        let look = async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            ok(&root, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '").await
        };
        let (out, seen) = tokio::join!(t.exec(&slow, None), look);
        assert_eq!(out.expect("sudo exec").stdout, b"0\n");
        assert!(seen.contains("sleep 1.5"), "{seen}");
        assert!(!seen.contains("pw-Secret"), "{seen}");

        // A wrong password for sudo (the login itself uses the key).
        let t = connect(deploy(1, Some("wrong-Secret"))).await;
        let e = t.exec(&Exec::new("id -u", STEP), None).await.unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Auth, "{e}");
        assert!(
            e.to_string().contains("rejected the configured password"),
            "{e}"
        );
        assert!(!format!("{e} {e:?}").contains("Secret"), "{e}");
    });
}

#[test]
fn stdin_bytes_and_a_large_file_arrive_intact() {
    let bed = TestBed::start(1);
    let dir = tempfile::tempdir().unwrap();
    // 50 MiB that is not all one byte, written in pieces (never held whole).
    let path = dir.path().join("big");
    let mut hasher = Sha256::new();
    {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut block = [0u8; 4096];
        for i in 0u32..(50 * 256) {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) as usize + j * 7) as u8;
            }
            hasher.update(block);
            file.write_all(&block).unwrap();
        }
    }
    let big_digest = hex(&hasher.finalize());
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let out = run_with(
            &t,
            Exec::new("sha256sum | cut -d' ' -f1", STEP).with_stdin(Stdin::Bytes(bytes.clone())),
        )
        .await;
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            hex(&Sha256::digest(&bytes))
        );
        let out = run_with(
            &t,
            Exec::new("sha256sum | cut -d' ' -f1; echo read >&2", STEP)
                .with_stdin(Stdin::File(path.clone())),
        )
        .await;
        assert_eq!(out.status, ExitStatus::Code(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), big_digest);
        // A script that does not read its stdin still ends.
        let out = run_with(
            &t,
            Exec::new("echo ignored", STEP).with_stdin(Stdin::File(path.clone())),
        )
        .await;
        assert_eq!(out.stdout, b"ignored\n");
        // A missing stdin file fails before anything runs.
        let e = t
            .exec(
                &Exec::new("true", STEP).with_stdin(Stdin::File(dir.path().join("missing"))),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Io, "{e}");
    });
}

#[test]
fn a_hanging_command_times_out_and_is_killed_on_the_host() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        let start = Instant::now();
        let out = run_with(
            &t,
            Exec::new("sleep 600 & sleep 601; echo never", Duration::from_secs(2)),
        )
        .await;
        let took = start.elapsed();
        assert_eq!(out.status, ExitStatus::TimedOut);
        assert!(took >= Duration::from_secs(2), "{took:?}");
        assert!(took < Duration::from_secs(2) + GRACE, "{took:?}");
        assert!(out.stdout.is_empty());
        // The script and its background child are gone from the host.
        let left = run(&t, "pgrep -a sleep || true").await;
        assert_eq!(String::from_utf8_lossy(&left.stdout), "");
        // The connection is still good.
        assert_eq!(ok(&t, "echo alive").await, "alive\n");
    });
    assert_eq!(bed.client_logins(0), 1);
}

#[test]
fn a_killed_host_fails_the_next_command_naming_the_host() {
    let bed = TestBed::start(1);
    let ip = bed.host(0).ip().to_string();
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        assert_eq!(ok(&t, "echo up").await, "up\n");
        bed.kill(0);
        let start = Instant::now();
        let e = t.exec(&Exec::new("echo up", STEP), None).await.unwrap_err();
        assert!(
            start.elapsed() < CONNECT_TIMEOUT * 2 + GRACE,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(e.host, ip);
        assert_eq!(e.kind, TransportErrorKind::Connect, "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{ip}: cannot connect to {ip}:22")),
            "{e}"
        );
    });
}

#[test]
fn a_cut_host_fails_within_the_timeout_and_a_new_connection_times_out() {
    let bed = TestBed::start(2);
    let ip = bed.host(0).ip().to_string();
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        assert_eq!(ok(&t, "echo up").await, "up\n");

        // Cut while a command runs: keepalives notice, or the deadline passes.
        let step = Duration::from_secs(3);
        let exec = Exec::new("sleep 1; echo late", step);
        let running = t.exec(&exec, None);
        let cut = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            bed.cut(0);
        };
        let start = Instant::now();
        let (result, ()) = tokio::join!(running, cut);
        assert!(start.elapsed() < step + GRACE, "{:?}", start.elapsed());
        match result {
            Ok(out) => assert_eq!(out.status, ExitStatus::TimedOut),
            Err(e) => {
                assert_eq!(e.host, ip);
                assert_eq!(e.kind, TransportErrorKind::Connection, "{e}");
            }
        }

        // The next command on the cut host fails within the connect timeouts.
        let start = Instant::now();
        let e = t.exec(&Exec::new("echo up", step), None).await.unwrap_err();
        assert!(
            start.elapsed() < CONNECT_TIMEOUT * 2 + GRACE,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(e.host, ip);
        assert!(
            matches!(
                e.kind,
                TransportErrorKind::Connect | TransportErrorKind::Connection
            ),
            "{e}"
        );

        // A fresh connection to it times out.
        let start = Instant::now();
        let e = connect_err(config(&bed, 0)).await;
        assert!(start.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2));
        assert_eq!(e.kind, TransportErrorKind::Connect, "{e}");
        assert!(e.to_string().contains("timed out after 3s"), "{e}");

        // The other host was not affected; the cut one is back once healed.
        let other = connect(config(&bed, 1)).await;
        assert_eq!(ok(&other, "echo fine").await, "fine\n");
        bed.heal(0);
        assert_eq!(ok(&t, "echo back").await, "back\n");
    });
}

/// Keepalives off: nothing notices the cut link, yet the call returns at its deadline (step
/// timeout plus grace) instead of hanging, and the next call starts over and fails fast.
#[test]
fn without_keepalives_a_cut_host_still_returns_at_the_deadline() {
    let bed = TestBed::start(1);
    let ip = bed.host(0).ip().to_string();
    in_hub(&bed, || async {
        let mut c = config(&bed, 0);
        c.keepalive = Duration::ZERO;
        let t = connect(c).await;
        let step = Duration::from_secs(1);
        let exec = Exec::new("sleep 0.5; echo late", step);
        let cut = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            bed.cut(0);
        };
        let start = Instant::now();
        let (result, ()) = tokio::join!(t.exec(&exec, None), cut);
        let took = start.elapsed();
        let out = result.expect("a deadline is an outcome, not an error");
        assert_eq!(out.status, ExitStatus::TimedOut);
        assert!(
            took >= step && took < step + GRACE + Duration::from_secs(2),
            "{took:?}"
        );

        let e = t.exec(&Exec::new("true", step), None).await.unwrap_err();
        assert_eq!(e.host, ip);
        assert_eq!(e.kind, TransportErrorKind::Connect, "{e}");
    });
}

#[test]
fn after_a_restart_the_next_command_reconnects() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        ok(&t, "echo kept > /var/tmp/mark").await;
        bed.restart(0);
        assert_eq!(ok(&t, "cat /var/tmp/mark").await, "kept\n");
        assert_eq!(ok(&t, "echo again").await, "again\n");
        assert_eq!(t.host_key_fingerprint(), bed.host(0).host_key_fingerprint());
    });
    assert_eq!(bed.client_logins(0), 2);
}

#[test]
fn hostile_arguments_come_back_unchanged() {
    let bed = TestBed::builder(2).sudo_user(&[1]).start();
    let values = [
        "plain",
        "",
        "a b",
        "it's",
        "\"double\"",
        "$(touch /tmp/pwned)",
        "`touch /tmp/pwned`",
        "a;touch /tmp/pwned",
        "line1\nline2\n",
        "'\"\\$HOME",
        "--flag=x",
        "ünïcødé ☃",
        "%s %d %%",
    ];
    in_hub(&bed, || async {
        let root = connect(config(&bed, 0)).await;
        let mut c = config(&bed, 1);
        c.user = SUDO_USER.to_string();
        let sudo = connect(c).await;
        for t in [&root, &sudo] {
            for value in values {
                let out = ok(t, &format!("printf '%s' {}", quote(value))).await;
                assert_eq!(out, value, "through {}", t.host());
            }
            assert_eq!(
                ok(t, "ls /tmp/pwned 2>/dev/null || echo none").await,
                "none\n"
            );
            // The script reaches the host on stdin: no command line on the host holds it,
            // for other users to read in /proc or for sudo to log.
            let lines = ok(
                t,
                "secret=s3cr3t-in-script; tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' ' ' < /proc/$PPID/cmdline",
            )
            .await;
            assert!(!lines.contains("s3cr3t"), "through {}: {lines}", t.host());
        }
    });
}

/// Not a benchmark with a threshold: prints how long 10 sequential small commands on each of
/// 8 hosts take with the hosts in parallel (run with `--nocapture` to see it).
#[test]
#[allow(clippy::print_stderr)]
fn ten_commands_on_eight_hosts_in_parallel() {
    let bed = TestBed::start(8);
    let (connect_took, run_took) = in_hub(&bed, || async {
        let start = Instant::now();
        let transports = join_all((0..8).map(|i| connect(config(&bed, i)))).await;
        let connect_took = start.elapsed();
        let start = Instant::now();
        join_all(transports.iter().enumerate().map(|(i, t)| async move {
            for step in 0..10 {
                let out = ok(t, &format!("echo {i}-{step} > /tmp/step; cat /tmp/step")).await;
                assert_eq!(out, format!("{i}-{step}\n"));
            }
        }))
        .await;
        (connect_took, start.elapsed())
    });
    for i in 0..8 {
        assert_eq!(bed.client_logins(i), 1);
    }
    eprintln!(
        "ssh transport: 8 hosts x 10 sequential commands: connect {connect_took:?}, \
         commands {run_took:?}, total {:?}",
        connect_took + run_took
    );
}

/// ssh-agent authentication (no key file, no password: the agent at `SSH_AUTH_SOCK`). This
/// process's environment cannot be changed safely, so this test binary runs [`agent_login`]
/// again, inside the hub, with an agent holding the client key, and once with no agent.
#[test]
fn agent_auth_uses_the_agent_at_ssh_auth_sock() {
    let bed = TestBed::start(1);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = Agent(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run ssh-agent"),
    );
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssh-agent did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(bed.client_key_path())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("run ssh-add");
    assert!(added.status.success(), "{added:?}");
    let child = |agent_sock: Option<&std::path::Path>, expect: &str| {
        // Through /proc: works even if a rebuild replaced the binary since this one started.
        let mut cmd = bed.command(format!("/proc/{}/exe", std::process::id()));
        cmd.args([
            "ssh::agent_login",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env("SEALER_TEST_SSH_HOST", bed.host(0).ip().to_string())
        .env("SEALER_TEST_SSH_KNOWN_HOSTS", bed.known_hosts_path())
        .env("SEALER_TEST_SSH_EXPECT", expect);
        match agent_sock {
            Some(s) => cmd.env("SSH_AUTH_SOCK", s),
            None => cmd.env_remove("SSH_AUTH_SOCK"),
        };
        let out = cmd.output().expect("run the test binary in the hub");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{expect}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    child(Some(&sock), "login");
    child(None, "no-agent");
    drop(agent);
    assert_eq!(bed.client_logins(0), 1);
}

/// The ssh-agent this test started; killed by its PID.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "run by agent_auth_uses_the_agent_at_ssh_auth_sock, in the hub, with its own SSH_AUTH_SOCK"]
fn agent_login() {
    let var = |name: &str| std::env::var(name).ok();
    let (Some(host), Some(known_hosts), Some(expect)) = (
        var("SEALER_TEST_SSH_HOST"),
        var("SEALER_TEST_SSH_KNOWN_HOSTS"),
        var("SEALER_TEST_SSH_EXPECT"),
    ) else {
        return;
    };
    let mut c = SshConfig::new(host, "root");
    c.host_keys.known_hosts = Some(known_hosts.into());
    c.connect_timeout = CONNECT_TIMEOUT;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        if expect == "login" {
            let t = connect(c).await;
            assert_eq!(ok(&t, "id -un").await, "root\n");
        } else {
            let e = connect_err(c).await;
            assert_eq!(e.kind, TransportErrorKind::Auth, "{e}");
            assert!(e.to_string().contains("SSH_AUTH_SOCK"), "{e}");
        }
    });
}

/// A host that floods its output fails the command with the limit named; the operator's
/// memory holds at most the limit.
#[test]
fn a_flood_of_output_fails_the_command_naming_the_limit() {
    let bed = TestBed::start(1);
    in_hub(&bed, || async {
        let t = connect(config(&bed, 0)).await;
        let script = format!("head -c {} /dev/zero", sealer_providers::MAX_OUTPUT + 1);
        let err = t
            .exec(&Exec::new(script, Duration::from_secs(120)), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Output, "{err}");
        // The connection still serves the next command.
        assert_eq!(ok(&t, "echo next").await, "next\n");
    });
}
