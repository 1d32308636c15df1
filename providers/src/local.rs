//! The `local` transport: commands run on the operator machine itself, as the current user
//! (no SSH, no sudo). For single-node clusters on this machine, the quickstart and tests.
//!
//! A **sandboxed** local host runs each command in a private mount namespace whose system
//! directories are overlays: reads see the machine, writes land in the sandbox directory.
//! It needs root (mounting), and runs one command at a time, because overlays sharing an
//! upper directory must not be mounted twice at once.

use crate::transport::{
    Exec, ExecOutput, ExitStatus, OutputChunk, OutputSink, Stdin, Transport, TransportError,
    TransportErrorKind,
};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

pub struct LocalTransport {
    host: String,
    sandbox: Option<Sandbox>,
}

struct Sandbox {
    dir: PathBuf,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// The directories a sandbox overlays; `/tmp` gets a fresh tmpfs per command instead.
const OVERLAID: &str = "etc usr var opt root home srv";

/// Runs `$2` in the sandbox `$1` (already in a private mount namespace), in the environment
/// of a root login over SSH rather than sealer's own. The overlay options
/// name the upper directories relative to the sandbox, reached through the working
/// directory: once `/root` (say) is overlaid, a sandbox under `/root` is only reachable
/// that way as itself, not as the overlay's view of it.
const SANDBOX_WRAPPER: &str = r#"set -e
cd -- "$1"
for d in OVERLAID; do
  [ -d "/$d" ] || continue
  mkdir -p "upper/$d" "work/$d"
done
for d in OVERLAID; do
  [ -d "/$d" ] || continue
  mount -t overlay sealer-sandbox -o "lowerdir=/$d,upperdir=upper/$d,workdir=work/$d" "/$d"
done
mount -t tmpfs sealer-sandbox-tmp /tmp
cd /
exec env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "$2"
"#;

impl LocalTransport {
    pub fn new(host: impl Into<String>) -> LocalTransport {
        LocalTransport {
            host: host.into(),
            sandbox: None,
        }
    }

    /// A local host confined to `dir` (created when missing). Fails when this machine
    /// cannot make the mount namespace (not root, no `unshare`), rather than at the first
    /// step, and never falls back to running unconfined.
    pub async fn sandboxed(
        host: impl Into<String>,
        dir: impl Into<PathBuf>,
    ) -> Result<LocalTransport, TransportError> {
        let mut t = LocalTransport::new(host);
        let dir = dir.into();
        let text = dir.to_string_lossy();
        if !dir.is_absolute() || text.contains([',', ':', '\n']) {
            return Err(t.error(
                TransportErrorKind::Connect,
                format!(
                    "sandbox {text}: must be an absolute path without `,`, `:` or newlines (overlay mount options)"
                ),
            ));
        }
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            t.error(
                TransportErrorKind::Connect,
                format!("cannot create sandbox {text}: {e}"),
            )
        })?;
        let probe = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "true"])
            .stdin(Stdio::null())
            .output()
            .await;
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(t.error(
                    TransportErrorKind::Connect,
                    format!(
                        "sandbox {text} needs a private mount namespace, and `unshare --mount` failed: {} (run sealer as root)",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            Err(e) => {
                return Err(t.error(
                    TransportErrorKind::Connect,
                    format!("sandbox {text} needs `unshare` (util-linux): {e}"),
                ));
            }
        }
        t.sandbox = Some(Sandbox {
            dir,
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        Ok(t)
    }

    /// The command that runs a script of `script_len` bytes sent first on its stdin: the
    /// script (and the exports in it) never appears in a command line, which any local
    /// user can read in `/proc/*/cmdline`. `head -c` reads no further than the script, so
    /// the command's own stdin follows it. The SSH transport does the same.
    fn command(&self, script_len: usize) -> Command {
        let script = format!("s=$(head -c {script_len}) && eval \"$s\"");
        match &self.sandbox {
            None => {
                let mut cmd = Command::new("bash");
                cmd.arg("-c").arg(script);
                cmd
            }
            Some(sandbox) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--mount", "--propagation", "private", "--", "bash", "-c"])
                    .arg(SANDBOX_WRAPPER.replace("OVERLAID", OVERLAID))
                    .arg("sealer-sandbox")
                    .arg(&sandbox.dir)
                    .arg(script);
                cmd
            }
        }
    }

    fn error(&self, kind: TransportErrorKind, message: String) -> TransportError {
        TransportError {
            host: self.host.clone(),
            kind,
            message,
        }
    }
}

/// Reads a pipe to its end, keeping at most [`crate::transport::MAX_OUTPUT`] bytes;
/// `None` when there was more.
async fn pump(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    stderr: bool,
    sink: Option<OutputSink>,
) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut overflowed = false;
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if all.len() + n <= crate::transport::MAX_OUTPUT {
            all.extend_from_slice(&buf[..n]);
        } else {
            overflowed = true;
        }
        if let Some(sink) = &sink {
            let _ = sink.send(OutputChunk {
                stderr,
                bytes: buf[..n].to_vec(),
            });
        }
    }
    (!overflowed).then_some(all)
}

impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(
        &self,
        exec: &Exec,
        sink: Option<&OutputSink>,
    ) -> Result<ExecOutput, TransportError> {
        let _turn = match &self.sandbox {
            Some(sandbox) => Some(sandbox.one_at_a_time.lock().await),
            None => None,
        };
        let mut child = self
            .command(exec.script.len())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| self.error(TransportErrorKind::Io, format!("cannot start bash: {e}")))?;
        let stdin_task = child.stdin.take().map(|mut pipe| {
            let script = exec.script.clone().into_bytes();
            let stdin = exec.stdin.clone();
            tokio::spawn(async move {
                if pipe.write_all(&script).await.is_err() {
                    return;
                }
                match stdin {
                    Stdin::Null => {}
                    Stdin::Bytes(bytes) => {
                        let _ = pipe.write_all(&bytes).await;
                    }
                    Stdin::File(path) => {
                        if let Ok(mut file) = tokio::fs::File::open(&path).await {
                            let _ = tokio::io::copy(&mut file, &mut pipe).await;
                        }
                    }
                }
            })
        });
        let out = tokio::spawn(pump(
            child.stdout.take().expect("piped"),
            false,
            sink.cloned(),
        ));
        let err = tokio::spawn(pump(
            child.stderr.take().expect("piped"),
            true,
            sink.cloned(),
        ));
        let status = match tokio::time::timeout(exec.timeout, child.wait()).await {
            Ok(Ok(status)) => match status.code() {
                Some(code) => ExitStatus::Code(code),
                None => ExitStatus::Signal,
            },
            Ok(Err(e)) => {
                return Err(self.error(TransportErrorKind::Io, format!("waiting for bash: {e}")));
            }
            Err(_) => {
                // Kill the whole process group: the script's children must not outlive it.
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill")
                        .args(["-s", "KILL", "--", &format!("-{pid}")])
                        .status();
                }
                let _ = child.kill().await;
                ExitStatus::TimedOut
            }
        };
        if let Some(task) = stdin_task {
            task.abort();
        }
        let (Some(stdout), Some(stderr)) =
            (out.await.unwrap_or_default(), err.await.unwrap_or_default())
        else {
            return Err(self.error(
                TransportErrorKind::Output,
                format!(
                    "the command printed more than {} MiB, the most sealer keeps of a command",
                    crate::transport::MAX_OUTPUT >> 20
                ),
            ));
        };
        Ok(ExecOutput {
            status,
            stdout,
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_scripts_with_stdin_and_streams_output() {
        let t = LocalTransport::new("127.0.0.1");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let exec = Exec::new("cat; echo err >&2; exit 3", Duration::from_secs(10))
            .with_stdin(Stdin::Bytes(b"hello".to_vec()));
        let out = t.exec(&exec, Some(&tx)).await.unwrap();
        assert_eq!(out.status, ExitStatus::Code(3));
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        drop(tx);
        let mut streamed = Vec::new();
        while let Some(c) = rx.recv().await {
            if !c.stderr {
                streamed.extend(c.bytes);
            }
        }
        assert_eq!(streamed, b"hello");
    }

    #[tokio::test]
    async fn a_script_is_in_no_command_line() {
        let t = LocalTransport::new("127.0.0.1");
        // The command line of every process, the script's own included: none has its text.
        let script = "export TOKEN=marker-5f1e2d\nfor p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done; echo \"done $TOKEN\"\n";
        let out = t
            .exec(&Exec::new(script, Duration::from_secs(10)), None)
            .await
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("done marker-5f1e2d"), "{stdout}");
        assert!(stdout.contains("eval"), "the launcher is listed: {stdout}");
        assert_eq!(stdout.matches("marker-5f1e2d").count(), 1, "{stdout}");
    }

    #[tokio::test]
    async fn a_script_without_stdin_reads_end_of_file() {
        let t = LocalTransport::new("127.0.0.1");
        let out = t
            .exec(&Exec::new("cat; echo after", Duration::from_secs(10)), None)
            .await
            .unwrap();
        assert_eq!(out.stdout, b"after\n");
    }

    #[tokio::test]
    async fn a_hanging_command_times_out_with_its_children() {
        let t = LocalTransport::new("127.0.0.1");
        let start = std::time::Instant::now();
        let out = t
            .exec(
                &Exec::new("sleep 30 & sleep 30", Duration::from_millis(300)),
                None,
            )
            .await
            .unwrap();
        assert_eq!(out.status, ExitStatus::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_flood_of_output_is_an_error_not_a_full_memory() {
        let t = LocalTransport::new("127.0.0.1");
        let script = format!(
            "head -c {} /dev/zero; echo fine >&2",
            crate::transport::MAX_OUTPUT + 1
        );
        let err = t
            .exec(&Exec::new(script, Duration::from_secs(60)), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Output);
        assert!(err.message.contains("more than 256 MiB"), "{}", err.message);
    }
}
