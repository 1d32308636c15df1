//! A sync whose files come from another host (a *seeder*) instead of this machine, over
//! OpenSSH between the two hosts: how a rootfs reaches many hosts while the operator's
//! uplink carries each byte about once.
//!
//! The operator still probes the receiver and plans the sync exactly as [`super::sync`]
//! does, so an unchanged tree sends nothing and only changed files move. Then:
//! 1. **Receiver, from the operator** (small): directories, symlinks and the control files
//!    (delete lists, manifest delta, the list of files to come, their SHA-256 digests and
//!    modes, the receive script) in one tar, and ONE line in the SSH user's
//!    `authorized_keys`: `from="SEEDER",command="bash RECEIVE",restrict KEY
//!    sealer-distribution-ID`. The key is a one-time key of this apply; the line can only
//!    run the receive script, only from the seeder's address, with no forwarding or pty.
//! 2. **Seeder, from the operator** (one command): the private key, a known_hosts line
//!    with the receiver's host key as the operator's own connection verified it, and the
//!    file list, into a 0700 directory that a trap removes; then `tar -c` of those files
//!    from the seeder's verified copy (every mtime set to the sync's time) piped into
//!    `ssh -i KEY` to the receiver, with strict host key checking and batch mode.
//! 3. **Receiver, the forced command**: extracts only the listed files, computes their
//!    SHA-256 and compares them byte for byte with the digests the operator sent; on a
//!    mismatch it exits non-zero before the manifest is touched (files it wrote do not
//!    match the old manifest's stats, so a later sync sends them again). Then it sets
//!    the modes the manifest records and finishes like a direct sync: deletes, manifest
//!    delta checked by its SHA-256, rename.
//! 4. **Cleanup, always** (success or not): the `authorized_keys` line is removed, and so
//!    is the seeder's key directory; any error is returned, and the caller falls back to
//!    the direct sync.

use super::plan::Plan;
use super::{
    CONTROL_DIR, EXTRACTED_MARK, EntryKind, ManifestEntry, SyncError, SyncErrorKind, SyncOptions,
    SyncReport, archive, build_archive, finish_script, now_seconds, nul_joined, plan, pre_delete,
    report_of, run, send_direct, survey,
};
use crate::quote::quote;
use crate::transport::{Exec, Stdin, Transport};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PublicKey};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The comment that marks every `authorized_keys` line a distribution adds.
pub const KEY_COMMENT_PREFIX: &str = "sealer-distribution-";

/// Seconds the seeder's `ssh` waits for the receiver's TCP connection.
pub const CONNECT_TIMEOUT_SECS: u64 = 10;

/// A one-time key pair for one apply's distribution. The private half appears in no
/// `Debug` output; callers add [`DistributionKey::private_openssh`] to their redaction list.
pub struct DistributionKey {
    id: String,
    private: zeroize_string::Secret,
    public: String,
}

mod zeroize_string {
    /// A string that `Debug` never shows.
    pub struct Secret(pub String);
    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("(sensitive value)")
        }
    }
}

impl std::fmt::Debug for DistributionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributionKey")
            .field("id", &self.id)
            .field("public", &self.public)
            .field("private", &self.private)
            .finish()
    }
}

impl DistributionKey {
    /// A fresh Ed25519 key from the system's random source.
    pub fn generate() -> Result<DistributionKey, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no random source for a key: {e}"))?;
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(|e| format!("no random source for a key: {e}"))?;
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let comment = format!("{KEY_COMMENT_PREFIX}{id}");
        let key = PrivateKey::new(
            KeypairData::from(Ed25519Keypair::from_seed(&seed)),
            comment.as_str(),
        )
        .map_err(|e| format!("cannot make a key: {e}"))?;
        seed.fill(0);
        let private = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| format!("cannot encode the key: {e}"))?
            .to_string();
        let public = PublicKey::to_openssh(key.public_key())
            .map_err(|e| format!("cannot encode the key: {e}"))?;
        Ok(DistributionKey {
            id,
            private: zeroize_string::Secret(private),
            public,
        })
    }

    /// `sealer-distribution-<hex>`: the comment of its `authorized_keys` lines.
    pub fn comment(&self) -> String {
        format!("{KEY_COMMENT_PREFIX}{}", self.id)
    }

    /// The private key file's text: a secret, for redaction lists.
    pub fn private_openssh(&self) -> &str {
        &self.private.0
    }
}

/// How the seeder reaches the receiver, and with what.
pub struct Relay<'a, S: Transport> {
    /// The seeder's transport (the operator runs the sending command there).
    pub seeder: &'a S,
    /// The address the receiver sees the seeder's connection come from (`from=`).
    pub seeder_address: &'a str,
    /// The receiver's address and SSH port as the seeder dials them.
    pub receiver_address: &'a str,
    pub receiver_port: u16,
    /// The SSH user on the receiver; not root means the forced command runs `sudo -n`.
    pub receiver_user: &'a str,
    /// The receiver's host key in OpenSSH form (`ssh-ed25519 AAAA...`), as the operator's
    /// own connection verified it.
    pub receiver_host_key: &'a str,
    pub key: &'a DistributionKey,
    /// Fewer changed bytes than this go from the operator: a relay's fixed cost (a second
    /// connection, an `authorized_keys` edit) would outweigh what it saves the uplink.
    pub min_bytes: u64,
}

/// Makes `remote_root` on the receiver hold exactly `entries` like [`super::sync`], the
/// files coming from the seeder's copy at the same path. The seeder must hold these
/// entries verified (its own sync of them finished); anything else is refused by the
/// receiver's digest check. With nothing but directories, symlinks and deletions to send,
/// or fewer file bytes than [`Relay::min_bytes`], the sync is direct (`from_seeder` false
/// in the result).
pub async fn sync_via<T: Transport, S: Transport>(
    receiver: &T,
    local_root: &Path,
    entries: &[ManifestEntry],
    remote_root: &str,
    options: &SyncOptions,
    relay: &Relay<'_, S>,
) -> Result<(SyncReport, bool), SyncError> {
    let (entries, remote, excluded) = survey(receiver, entries, remote_root, options).await?;
    let mtime = now_seconds();
    let plan = plan::plan(&entries, &remote, &excluded, mtime);
    if plan.noop || plan.files_sent() == 0 || plan.bytes_sent() < relay.min_bytes.max(1) {
        let report = send_direct(
            receiver,
            local_root,
            &entries,
            &plan,
            remote_root,
            options,
            mtime,
        )
        .await?;
        return Ok((report, false));
    }
    let host = receiver.host().to_string();
    let local = |message: String| SyncError {
        host: host.clone(),
        kind: SyncErrorKind::Local,
        message,
    };
    let line = authorized_line(relay, remote_root).map_err(local)?;
    let known_host = known_hosts_line(relay.receiver_host_key).map_err(local)?;

    pre_delete(receiver, &plan, remote_root, options).await?;
    let files = files_of(&plan);
    let mut contents = archive::Contents::of(&entries, &plan).without_files();
    contents.extra_control = control_files(&files, remote_root, &plan);
    let (archive_file, control_bytes) =
        build_archive(&host, local_root, contents, mtime, options).await?;
    let prepare = Exec::new(
        prepare_script(remote_root, relay.receiver_user, &line),
        options.timeout,
    )
    .with_stdin(Stdin::File(archive_file.path().to_path_buf()));
    let prepared = run(receiver, prepare, "preparing the receiver").await;
    drop(archive_file);

    let sent = match prepared {
        Ok(_) => {
            send_from_seeder(
                relay,
                &host,
                &files,
                remote_root,
                &known_host,
                mtime,
                options,
            )
            .await
        }
        Err(e) => Err(e),
    };
    // Whatever happened: the key's line goes, and an unfinished sync's control files.
    let cleanup = Exec::new(
        cleanup_script(
            remote_root,
            relay.receiver_user,
            &relay.key.comment(),
            sent.is_err(),
        ),
        options.timeout.min(Duration::from_secs(60)),
    );
    let cleaned = run(receiver, cleanup, "removing the distribution key").await;
    sent?;
    cleaned?;
    let mut report = report_of(&plan);
    report.stream_bytes = control_bytes;
    Ok((report, true))
}

/// The regular files the plan sends, in archive order.
fn files_of<'p>(plan: &'p Plan<'_>) -> Vec<(&'p str, &'p str, u32)> {
    let mut files: Vec<(&str, &str, u32)> = plan
        .send
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { sha256, mode, .. } => {
                Some((e.path.as_str(), sha256.as_str(), mode & 0o7777))
            }
            _ => None,
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    files
}

/// The control files of a relayed sync: `files` (NUL list), `expected` (what
/// `sha256sum -z` prints for them), `modes/MODE` (NUL lists), `receive` (the script).
fn control_files(
    files: &[(&str, &str, u32)],
    root: &str,
    plan: &Plan<'_>,
) -> Vec<(String, Vec<u8>)> {
    let names: Vec<String> = files.iter().map(|(p, _, _)| p.to_string()).collect();
    let mut expected = Vec::new();
    let mut modes: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (path, sha, mode) in files {
        expected.extend_from_slice(format!("{sha}  {path}").as_bytes());
        expected.push(0);
        modes.entry(*mode).or_default().push(path.to_string());
    }
    let mut out = vec![
        ("files".to_string(), nul_joined(&names)),
        ("expected".to_string(), expected),
        (
            "receive".to_string(),
            receive_script(root, &plan.manifest).into_bytes(),
        ),
    ];
    for (mode, paths) in modes {
        out.push((format!("modes/{mode:04o}"), nul_joined(&paths)));
    }
    out
}

/// Where the receive script lands on the receiver.
fn receive_path(root: &str) -> String {
    format!("{}/{CONTROL_DIR}/receive", root.trim_end_matches('/'))
}

/// The `authorized_keys` line: the forced command, the seeder's address, `restrict`.
fn authorized_line<S: Transport>(relay: &Relay<'_, S>, root: &str) -> Result<String, String> {
    // Inside an option's double quotes only `"` and `\` are special: refuse them rather
    // than escape them (no real path or address has them).
    let receive = receive_path(root);
    for (what, value) in [
        ("path", receive.as_str()),
        ("address", relay.seeder_address),
    ] {
        if value.contains(['"', '\\', '\n', '\r']) {
            return Err(format!(
                "the {what} {value:?} cannot go into an authorized_keys option"
            ));
        }
    }
    if relay.seeder_address.contains([',', ' ', '*', '?', '!']) {
        return Err(format!(
            "the seeder's address {:?} is not a plain address",
            relay.seeder_address
        ));
    }
    let sudo = if relay.receiver_user == "root" {
        ""
    } else {
        "sudo -n "
    };
    Ok(format!(
        "from=\"{}\",command=\"{sudo}bash {}\",restrict {} {}",
        relay.seeder_address,
        quote(&receive),
        relay
            .key
            .public
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        relay.key.comment()
    ))
}

/// The seeder's known_hosts: the receiver's key under a fixed alias (`HostKeyAlias`), so
/// ports and address forms play no part.
fn known_hosts_line(host_key: &str) -> Result<String, String> {
    let mut words = host_key.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(data)) if kind.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(format!("sealer-receiver {kind} {data}\n"))
        }
        _ => Err("the receiver's host key is not known".to_string()),
    }
}

/// The shell lines that set `$keys` to the SSH user's `authorized_keys`.
fn keys_file(user: &str) -> String {
    format!(
        "user={user}\n\
         home=$(getent passwd \"$user\" | cut -d: -f6)\n\
         if [ -z \"$home\" ]; then echo \"no home directory for $user\" >&2; exit 1; fi\n\
         keys=\"$home/.ssh/authorized_keys\"\n",
        user = quote(user)
    )
}

/// Drops the lines whose comment starts with `marker` from `$keys`, in place (same file,
/// owner and mode).
fn drop_lines(marker: &str) -> String {
    format!(
        "if [ -f \"$keys\" ]; then\n\
         \x20 kept=$(grep -v -F -- {marker} \"$keys\" || true)\n\
         \x20 if [ -n \"$kept\" ]; then printf '%s\\n' \"$kept\" > \"$keys\"; else : > \"$keys\"; fi\n\
         fi\n",
        marker = quote(&format!(" {marker}"))
    )
}

/// On the receiver, from the operator: the control tar, then the key's line (stale lines
/// of earlier distributions removed first).
fn prepare_script(root: &str, user: &str, line: &str) -> String {
    format!(
        "{extract}\
         chmod 700 \"$ctl\"\n\
         {keys}\
         if [ ! -d \"$home/.ssh\" ]; then mkdir -m 700 -- \"$home/.ssh\"; chown -- \"$user\" \"$home/.ssh\"; fi\n\
         if [ ! -f \"$keys\" ]; then : > \"$keys\"; chmod 600 -- \"$keys\"; chown -- \"$user\" \"$keys\"; fi\n\
         {drop}\
         printf '%s\\n' {line} >> \"$keys\"\n",
        keys = keys_file(user),
        drop = drop_lines(KEY_COMMENT_PREFIX),
        line = quote(line),
        extract = super::extract_script(root),
    )
}

/// On the receiver, from the operator, always: the key's line goes; after a failed
/// transfer the control files too.
fn cleanup_script(root: &str, user: &str, comment: &str, failed: bool) -> String {
    let control = if failed {
        format!(
            "rm -rf -- {}\n",
            quote(&format!("{}/{CONTROL_DIR}", root.trim_end_matches('/')))
        )
    } else {
        String::new()
    };
    format!(
        "set -eu\n{keys}{drop}{control}",
        keys = keys_file(user),
        drop = drop_lines(comment),
    )
}

/// The forced command on the receiver: reads the seeder's tar on stdin.
fn receive_script(root: &str, update: &plan::ManifestUpdate) -> String {
    format!(
        "set -eu\n\
         cd -- {root}\n\
         ctl={CONTROL_DIR}\n\
         tar -xpf - --no-same-owner --null --verbatim-files-from -T \"$ctl/files\"\n\
         xargs -0 -r sha256sum -z -- < \"$ctl/files\" > \"$ctl/got\"\n\
         if ! cmp -s -- \"$ctl/got\" \"$ctl/expected\"; then\n\
         \x20 echo 'the files from the seeder do not match their SHA-256 digests: refused' >&2\n\
         \x20 exit 4\n\
         fi\n\
         for m in \"$ctl\"/modes/*; do\n\
         \x20 [ -f \"$m\" ] || continue\n\
         \x20 xargs -0 -r chmod -- \"${{m##*/}}\" < \"$m\"\n\
         done\n\
         {EXTRACTED_MARK}\n\
         {finish}",
        root = quote(root),
        finish = finish_script(update),
    )
}

/// Runs the transfer on the seeder: key, known_hosts and list in, `tar | ssh` out.
async fn send_from_seeder<S: Transport>(
    relay: &Relay<'_, S>,
    receiver: &str,
    files: &[(&str, &str, u32)],
    root: &str,
    known_host: &str,
    mtime: i64,
    options: &SyncOptions,
) -> Result<(), SyncError> {
    let names: Vec<String> = files.iter().map(|(p, _, _)| p.to_string()).collect();
    let bundle = bundle(&[
        ("key", relay.key.private_openssh().as_bytes(), 0o600),
        ("known_hosts", known_host.as_bytes(), 0o600),
        ("files", &nul_joined(&names), 0o600),
    ])
    .map_err(|e| SyncError {
        host: relay.seeder.host().to_string(),
        kind: SyncErrorKind::Local,
        message: format!("cannot bundle the key: {e}"),
    })?;
    let dir = seeder_dir(&relay.key.comment(), receiver);
    let script = seeder_script(relay, &dir, root, mtime);
    let exec = Exec::new(script, options.timeout).with_stdin(Stdin::Bytes(bundle));
    let sent = run(relay.seeder, exec, "sending from the seeder")
        .await
        .map(drop)
        .map_err(|e| SyncError {
            host: receiver.to_string(),
            kind: e.kind,
            message: format!("from {}: {}", relay.seeder.host(), e.message),
        });
    if sent.is_err() {
        // The script's trap removes the directory; a killed script may not have.
        let cleanup = Exec::new(
            format!("rm -rf -- {}\n", quote(&dir)),
            Duration::from_secs(30),
        );
        let _ = relay.seeder.exec(&cleanup, None).await;
    }
    sent
}

/// The seeder's private directory for one transfer.
fn seeder_dir(comment: &str, receiver: &str) -> String {
    let safe: String = receiver
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("/tmp/{comment}-{safe}")
}

fn seeder_script<S: Transport>(relay: &Relay<'_, S>, dir: &str, root: &str, mtime: i64) -> String {
    format!(
        "set -eu -o pipefail\n\
         d={dir}\n\
         rm -rf -- \"$d\"\n\
         mkdir -m 700 -- \"$d\"\n\
         trap 'rm -rf -- \"$d\"' EXIT\n\
         trap 'exit 143' TERM HUP INT\n\
         tar -xf - -C \"$d\" --no-same-owner\n\
         cd -- {root}\n\
         tar -cf - --null --verbatim-files-from --no-recursion -T \"$d/files\" \
         --mtime=@{mtime} --owner=0 --group=0 --numeric-owner \\\n\
         | ssh -F /dev/null -i \"$d/key\" -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o BatchMode=yes -o ConnectTimeout={CONNECT_TIMEOUT_SECS} \
         -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\"$d/known_hosts\" \
         -o GlobalKnownHostsFile=/dev/null -o HostKeyAlias=sealer-receiver \
         -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o ControlPath=none \
         -o LogLevel=ERROR -p {port} -l {user} -- {address} sealer-receive\n",
        dir = quote(dir),
        root = quote(root),
        port = relay.receiver_port,
        user = quote(relay.receiver_user),
        address = quote(relay.receiver_address),
    )
}

/// A small tar in memory (the seeder's key, known_hosts and list).
fn bundle(files: &[(&str, &[u8], u32)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(*mode);
        header.set_size(bytes.len() as u64);
        builder.append_data(&mut header, name, *bytes)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_fresh_and_its_line_is_restricted() {
        let a = DistributionKey::generate().unwrap();
        let b = DistributionKey::generate().unwrap();
        assert_ne!(a.comment(), b.comment());
        assert!(a.comment().starts_with(KEY_COMMENT_PREFIX));
        assert!(a.private_openssh().contains("OPENSSH PRIVATE KEY"));
        assert!(!format!("{a:?}").contains("PRIVATE"));
        let local = crate::local::LocalTransport::new("10.0.0.2");
        let relay = Relay {
            seeder: &local,
            seeder_address: "10.0.0.2",
            receiver_address: "10.0.0.3",
            receiver_port: 22,
            receiver_user: "root",
            receiver_host_key: "ssh-ed25519 AAAA",
            key: &a,
            min_bytes: 0,
        };
        let line = authorized_line(&relay, "/var/lib/sealer/data/my cluster/rootfs").unwrap();
        assert!(
            line.starts_with(
                "from=\"10.0.0.2\",command=\"bash '/var/lib/sealer/data/my cluster/rootfs/.sealer-sync.tmp/receive'\",restrict ssh-ed25519 "
            ),
            "{line}"
        );
        assert!(line.ends_with(&a.comment()));
        assert!(!line.contains("PRIVATE"));
        assert!(authorized_line(&relay, "/data/\"x").is_err());
    }

    /// The receive script with the operator's control files in place, fed a seeder's tar
    /// by local bash: a file whose content is not the operator's (same size) is refused
    /// before the manifest exists; the right one is installed with the manifest's mode.
    #[test]
    fn the_receiver_refuses_content_whose_digest_is_not_the_operators() {
        use super::super::{manifest, prepare, probe};
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let root_str = root.to_str().unwrap();
        let good: &[u8] = b"good content";
        let listed = vec![ManifestEntry {
            path: "etc/a".to_string(),
            kind: EntryKind::File {
                sha256: manifest::sha256_hex(good),
                size: good.len() as u64,
                mode: 0o640,
            },
        }];
        let entries = prepare(&listed, &[]).unwrap();
        let remote = probe::Remote {
            manifest: None,
            seen: Default::default(),
        };
        let plan = plan::plan(&entries, &remote, &[], 1_700_000_000);
        let files = files_of(&plan);
        assert_eq!(files, [("etc/a", listed_sha(&listed), 0o640)]);
        let mut contents = archive::Contents::of(&entries, &plan).without_files();
        contents.extra_control = control_files(&files, root_str, &plan);
        let control = dir.path().join("control.tar");
        let file = std::fs::File::create(&control).unwrap();
        archive::write(file, dir.path(), &contents, 1_700_000_000).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let extracted = Command::new("tar")
            .arg("-xpf")
            .arg(&control)
            .arg("--no-same-owner")
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(extracted.success());

        let receive = |content: &[u8]| {
            let seeder_tar = bundle(&[("etc/a", content, 0o600)]).unwrap();
            let mut child = Command::new("bash")
                .arg(root.join(CONTROL_DIR).join("receive"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&seeder_tar).unwrap();
            child.wait_with_output().unwrap()
        };
        let refused = receive(b"evil content");
        assert_eq!(refused.status.code(), Some(4));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("SHA-256"));
        assert!(!root.join(super::super::MANIFEST_FILE).exists());

        let accepted = receive(good);
        assert!(
            accepted.status.success(),
            "{}",
            String::from_utf8_lossy(&accepted.stderr)
        );
        assert_eq!(std::fs::read(root.join("etc/a")).unwrap(), good);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(root.join("etc/a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        let manifest = std::fs::read_to_string(root.join(super::super::MANIFEST_FILE)).unwrap();
        assert!(manifest.contains(listed_sha(&listed)), "{manifest}");
        assert!(
            !root.join(CONTROL_DIR).exists(),
            "the control files are gone"
        );
    }

    fn listed_sha(entries: &[ManifestEntry]) -> &str {
        match &entries[0].kind {
            EntryKind::File { sha256, .. } => sha256,
            _ => "",
        }
    }

    #[test]
    fn the_known_hosts_line_names_the_alias() {
        assert_eq!(
            known_hosts_line("ssh-ed25519 AAAAC3Nz").unwrap(),
            "sealer-receiver ssh-ed25519 AAAAC3Nz\n"
        );
        assert!(known_hosts_line("").is_err());
    }
}
