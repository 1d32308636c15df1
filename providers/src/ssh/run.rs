//! One command on one open channel: the remote command line (step timeout, sudo), stdin,
//! output streaming, the sudo handshake, the client-side deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::quote::quote;
use crate::transport::{ExecOutput, ExitStatus, OutputChunk, OutputSink};

/// The remote `timeout` sends SIGKILL this long after SIGTERM.
pub(crate) const KILL_AFTER: Duration = Duration::from_secs(5);
/// How long past the step timeout the client waits for the remote `timeout` to report, before
/// giving up on the host: the remote kill delay plus network slack.
pub(crate) const GRACE: Duration = Duration::from_secs(8);
/// Best-effort messages (signal, close) on a connection that may be stuck.
const BEST_EFFORT: Duration = Duration::from_secs(1);
/// Printed by root's bash once sudo let us in; sudo's own output comes before it.
const SUDO_MARK: &[u8] = b"sealer-sudo-ok\n";
/// sudo's prompt with `-S` (on stderr); seeing it means sudo wants the configured password.
const SUDO_PROMPT: &str = "[sealer] sudo password: ";
/// stdin is sent in chunks of this size; a file is never read whole.
const CHUNK: usize = 64 * 1024;

/// How the script reaches root.
#[derive(Clone, Copy)]
pub(crate) enum Privilege<'a> {
    /// The login user is root.
    Root,
    /// `sudo -n`: passwordless sudo, or fail.
    Sudo,
    /// `sudo -S`: the password is sent on stdin when sudo prompts (never on a command line).
    SudoPassword(&'a str),
}

/// The command line sent to the host: a shell under `timeout` (which kills it and its
/// process group on the host), through sudo unless the user is root, that reads the script
/// (`script_len` bytes) from the head of its stdin and runs it; the rest of stdin is the
/// script's. The script never appears in a command line: not in `/proc/*/cmdline`, where
/// any user of the host can read it, nor in sudo's log.
pub(crate) fn remote_command(
    script_len: usize,
    timeout: Duration,
    privilege: Privilege<'_>,
) -> String {
    let ms = timeout.as_millis().max(1);
    let inner = format!(
        "timeout --kill-after={}s {}.{:03}s bash -c {}",
        KILL_AFTER.as_secs(),
        ms / 1000,
        ms % 1000,
        quote(&format!("s=$(head -c {script_len}) && eval \"$s\""))
    );
    let announce = |inner: &str| {
        let mark = String::from_utf8_lossy(SUDO_MARK);
        quote(&format!(
            "printf '%s\\n' {} >&2; exec {inner}",
            mark.trim_end()
        ))
    };
    match privilege {
        Privilege::Root => inner,
        Privilege::Sudo => format!("sudo -n -H -- bash -c {}", announce(&inner)),
        Privilege::SudoPassword(_) => format!(
            "sudo -S -p {} -H -- bash -c {}",
            quote(SUDO_PROMPT),
            announce(&inner)
        ),
    }
}

/// What the remote shell reads: the script, then the script's own stdin.
pub(crate) struct Input {
    pub(crate) script: Vec<u8>,
    pub(crate) data: Data,
}

/// The script's stdin.
pub(crate) enum Data {
    Null,
    Bytes(Vec<u8>),
    File(tokio::fs::File),
}

/// How a run ended.
pub(crate) enum Ended {
    /// The command ran and exited (or was killed by the remote `timeout`).
    Exited(ExecOutput),
    /// No exit within the step timeout plus [`GRACE`]: the host or the connection stopped
    /// answering. The output so far.
    Deadline(ExecOutput),
    /// The channel or the connection went away before an exit status.
    Lost,
    /// The host refused the exec request.
    Refused,
    /// The command printed more than [`crate::transport::MAX_OUTPUT`].
    TooMuchOutput,
    /// sudo did not let us in: no password configured, wrong password, not in sudoers.
    Sudo(SudoFailure),
    /// The local stdin file could not be read.
    StdinIo(String),
}

pub(crate) enum SudoFailure {
    /// `sudo -n` wanted a password (or failed otherwise): what sudo said.
    NeedsPassword(String),
    Other(String),
    WrongPassword,
}

/// stderr until sudo lets us in: sudo's own prompts and messages.
struct SudoGate<'a> {
    password: Option<&'a str>,
    buf: Vec<u8>,
    answered: usize,
}

enum GateStep {
    Wait,
    SendPassword,
    WrongPassword,
    /// In: sudo's noise before the mark (prompts removed), and script stderr after it.
    Open(Vec<u8>, Vec<u8>),
}

impl SudoGate<'_> {
    fn feed(&mut self, data: &[u8]) -> GateStep {
        self.buf.extend_from_slice(data);
        if let Some(at) = find(&self.buf, SUDO_MARK) {
            let rest = self.buf[at + SUDO_MARK.len()..].to_vec();
            let noise = self.noise(at);
            return GateStep::Open(noise, rest);
        }
        let prompts = count(&self.buf, SUDO_PROMPT.as_bytes());
        if prompts > self.answered {
            if self.answered == 0 && self.password.is_some() {
                self.answered = 1;
                return GateStep::SendPassword;
            }
            return GateStep::WrongPassword;
        }
        GateStep::Wait
    }

    /// sudo's output before byte `end`, without our prompts; empty if only whitespace.
    fn noise(&self, end: usize) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.buf[..end]).replace(SUDO_PROMPT, "");
        if text.trim().is_empty() {
            Vec::new()
        } else {
            text.into_bytes()
        }
    }

    fn failure(&self) -> SudoFailure {
        let said = String::from_utf8_lossy(&self.noise(self.buf.len()))
            .trim()
            .to_string();
        let said = last_lines(&said, 5);
        match self.password {
            None if said.contains("password is required") => SudoFailure::NeedsPassword(said),
            None => SudoFailure::Other(said),
            Some(_) if said.contains("incorrect password") => SudoFailure::WrongPassword,
            Some(_) => SudoFailure::Other(said),
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

enum WriteError {
    /// Reading the local file failed.
    Local(String),
    /// The channel is gone (the command exited or the connection died); the reader sees why.
    Remote,
}

type Writer = Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send>>;

async fn write_input(tx: Arc<ChannelWriteHalf<Msg>>, input: Input) -> Result<(), WriteError> {
    if !input.script.is_empty() {
        tx.data_bytes(input.script)
            .await
            .map_err(|_| WriteError::Remote)?;
    }
    match input.data {
        Data::Null => {}
        Data::Bytes(bytes) => {
            if !bytes.is_empty() {
                tx.data_bytes(bytes).await.map_err(|_| WriteError::Remote)?;
            }
        }
        Data::File(mut file) => {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| WriteError::Local(e.to_string()))?;
                if n == 0 {
                    break;
                }
                tx.data_bytes(buf[..n].to_vec())
                    .await
                    .map_err(|_| WriteError::Remote)?;
            }
        }
    }
    tx.eof().await.map_err(|_| WriteError::Remote)
}

async fn poll_writer(writer: &mut Option<Writer>) -> Result<(), WriteError> {
    match writer {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

/// Stops the remote command (SIGTERM, which `timeout` and sudo pass on) and closes the
/// channel, without waiting on a connection that may be stuck.
async fn stop(tx: &ChannelWriteHalf<Msg>) {
    let _ = tokio::time::timeout(BEST_EFFORT, tx.signal(Sig::TERM)).await;
    let _ = tokio::time::timeout(BEST_EFFORT, tx.close()).await;
}

/// Closes the channel if a run is dropped midway (the caller gave up on it), so the host
/// frees the session slot and the command gets its SIGTERM.
struct CloseOnDrop {
    tx: Option<Arc<ChannelWriteHalf<Msg>>>,
}

impl CloseOnDrop {
    fn disarm(&mut self) {
        self.tx = None;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { stop(&tx).await });
        }
    }
}

enum Event {
    Message(Option<ChannelMsg>),
    Written(Result<(), WriteError>),
    Deadline,
}

/// Runs the command already requested on `rx`/`tx` to its end. The deadline is `timeout`
/// plus [`GRACE`] from now.
pub(crate) async fn run(
    mut rx: ChannelReadHalf,
    tx: ChannelWriteHalf<Msg>,
    input: Input,
    timeout: Duration,
    privilege: Privilege<'_>,
    sink: Option<&OutputSink>,
) -> Ended {
    let started = Instant::now();
    // Saturating: a step timeout of "forever" must not overflow the clock.
    let deadline = started
        .checked_add(timeout.saturating_add(GRACE))
        .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 24 * 3600));
    let tx = Arc::new(tx);
    let mut guard = CloseOnDrop {
        tx: Some(Arc::clone(&tx)),
    };
    let mut gate = match privilege {
        Privilege::Root => None,
        Privilege::Sudo => Some(SudoGate {
            password: None,
            buf: Vec::new(),
            answered: 0,
        }),
        Privilege::SudoPassword(password) => Some(SudoGate {
            password: Some(password),
            buf: Vec::new(),
            answered: 0,
        }),
    };
    let mut out = ExecOutput {
        status: ExitStatus::Signal,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let mut overflowed = false;
    let mut emit = |out: &mut ExecOutput, stderr: bool, bytes: &[u8]| {
        if bytes.is_empty() {
            return;
        }
        let kept = if stderr {
            &mut out.stderr
        } else {
            &mut out.stdout
        };
        if kept.len() + bytes.len() <= crate::transport::MAX_OUTPUT {
            kept.extend_from_slice(bytes);
        } else {
            overflowed = true;
        }
        if let Some(sink) = sink {
            let _ = sink.send(OutputChunk {
                stderr,
                bytes: bytes.to_vec(),
            });
        }
    };
    let mut input = Some(input);
    let mut writer: Option<Writer> = None;
    let mut writer_done = false;
    let mut status: Option<ExitStatus> = None;

    loop {
        // stdin flows once the script runs: at once for root, after sudo's mark otherwise
        // (so sudo can never read script input as a password).
        if writer.is_none()
            && gate.is_none()
            && let Some(input) = input.take()
        {
            writer = Some(Box::pin(write_input(Arc::clone(&tx), input)));
        }
        let event = tokio::select! {
            msg = rx.wait() => Event::Message(msg),
            written = poll_writer(&mut writer), if writer.is_some() && !writer_done => {
                Event::Written(written)
            }
            () = tokio::time::sleep_until(deadline) => Event::Deadline,
        };
        match event {
            Event::Written(Ok(())) | Event::Written(Err(WriteError::Remote)) => writer_done = true,
            Event::Written(Err(WriteError::Local(e))) => {
                stop(&tx).await;
                guard.disarm();
                return Ended::StdinIo(e);
            }
            Event::Deadline => {
                stop(&tx).await;
                guard.disarm();
                out.status = ExitStatus::TimedOut;
                return Ended::Deadline(out);
            }
            Event::Message(None) | Event::Message(Some(ChannelMsg::Close)) => break,
            Event::Message(Some(msg)) => match msg {
                ChannelMsg::Data { data } => emit(&mut out, false, &data),
                ChannelMsg::ExtendedData { data, ext: _ } => match gate.as_mut() {
                    None => emit(&mut out, true, &data),
                    Some(g) => match g.feed(&data) {
                        GateStep::Wait => {}
                        GateStep::SendPassword => {
                            let line = format!("{}\n", g.password.unwrap_or_default());
                            if tx.data_bytes(line.into_bytes()).await.is_err() {
                                guard.disarm();
                                return Ended::Lost;
                            }
                        }
                        GateStep::WrongPassword => {
                            stop(&tx).await;
                            guard.disarm();
                            return Ended::Sudo(SudoFailure::WrongPassword);
                        }
                        GateStep::Open(noise, rest) => {
                            emit(&mut out, true, &noise);
                            emit(&mut out, true, &rest);
                            gate = None;
                        }
                    },
                },
                ChannelMsg::ExitStatus { exit_status } => {
                    status = Some(ExitStatus::Code(
                        i32::try_from(exit_status).unwrap_or(i32::MAX),
                    ));
                }
                ChannelMsg::ExitSignal { .. } => status = Some(ExitStatus::Signal),
                ChannelMsg::Failure => {
                    stop(&tx).await;
                    guard.disarm();
                    return Ended::Refused;
                }
                _ => {}
            },
        }
    }
    // The host closed the channel (it answers our close itself), or the connection is gone.
    guard.disarm();
    if overflowed {
        return Ended::TooMuchOutput;
    }
    if let Some(g) = &gate {
        return match status {
            Some(_) => Ended::Sudo(g.failure()),
            None => Ended::Lost,
        };
    }
    match status {
        None => Ended::Lost,
        Some(ExitStatus::Code(124 | 137)) if started.elapsed() >= timeout => {
            out.status = ExitStatus::TimedOut;
            Ended::Exited(out)
        }
        Some(s) => {
            out.status = s;
            Ended::Exited(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs a remote command line locally, the way sshd runs it (`bash -c LINE`), with the
    /// script on its stdin as the transport sends it.
    fn sh(line: &str, script: &str) -> (i32, String, String) {
        use std::io::Write as _;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(script.as_bytes());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_script_survives_the_wrapping_unchanged() {
        let hostile =
            "printf '%s|' \"a b\" '$(touch /tmp/sealer-ssh-pwned)' \"it's\" 'x\ny' `echo ok`";
        let line = remote_command(hostile.len(), Duration::from_secs(30), Privilege::Root);
        assert!(
            line.starts_with("timeout --kill-after=5s 30.000s bash -c "),
            "{line}"
        );
        assert!(
            !line.contains("printf"),
            "the script is not on the line: {line}"
        );
        let (code, out, _) = sh(&line, hostile);
        assert_eq!(code, 0);
        assert_eq!(out, "a b|$(touch /tmp/sealer-ssh-pwned)|it's|x\ny|ok|");
        assert!(!std::path::Path::new("/tmp/sealer-ssh-pwned").exists());
    }

    #[test]
    fn the_remote_timeout_kills_the_script_and_its_children() {
        let script = "sleep 30 & sleep 30";
        let line = remote_command(script.len(), Duration::from_millis(200), Privilege::Root);
        assert!(line.contains(" 0.200s "), "{line}");
        let start = std::time::Instant::now();
        let (code, _, _) = sh(&line, script);
        assert_eq!(code, 124);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn any_timeout_makes_a_valid_command_line() {
        let line = remote_command(4, Duration::MAX, Privilege::Root);
        assert_eq!(sh(&line, "true").0, 0, "{line}");
        // A zero timeout is the shortest one `timeout` takes, not its "no timeout" (0).
        for t in [Duration::ZERO, Duration::from_micros(1)] {
            let line = remote_command(7, t, Privilege::Root);
            assert!(line.contains(" 0.001s "), "{line}");
            assert_eq!(sh(&line, "sleep 5").0, 124, "{line}");
        }
    }

    #[test]
    fn sudo_lines_keep_the_password_off_the_command_line() {
        let line = remote_command(5, Duration::from_secs(1), Privilege::SudoPassword("s3cret"));
        assert!(!line.contains("s3cret"), "{line}");
        assert!(line.starts_with("sudo -S -p "), "{line}");
        let line = remote_command(5, Duration::from_secs(1), Privilege::Sudo);
        assert!(line.starts_with("sudo -n -H -- bash -c "), "{line}");
    }

    #[test]
    fn the_sudo_gate_answers_one_prompt_and_splits_sudo_noise_from_script_output() {
        let mut gate = SudoGate {
            password: Some("pw"),
            buf: Vec::new(),
            answered: 0,
        };
        assert!(matches!(
            gate.feed(b"sudo: unable to resolve host x\n[sealer] sudo"),
            GateStep::Wait
        ));
        assert!(matches!(gate.feed(b" password: "), GateStep::SendPassword));
        assert!(matches!(gate.feed(b"sealer-sudo"), GateStep::Wait));
        match gate.feed(b"-ok\nscript err") {
            GateStep::Open(noise, rest) => {
                assert_eq!(noise, b"sudo: unable to resolve host x\n");
                assert_eq!(rest, b"script err");
            }
            _ => panic!("not open"),
        }
        let mut wrong = SudoGate {
            password: Some("pw"),
            buf: Vec::new(),
            answered: 0,
        };
        assert!(matches!(
            wrong.feed(SUDO_PROMPT.as_bytes()),
            GateStep::SendPassword
        ));
        assert!(matches!(
            wrong.feed(format!("Sorry, try again.\n{SUDO_PROMPT}").as_bytes()),
            GateStep::WrongPassword
        ));
        let mut none = SudoGate {
            password: None,
            buf: Vec::new(),
            answered: 0,
        };
        assert!(matches!(
            none.feed(b"sudo: a password is required\n"),
            GateStep::Wait
        ));
        assert!(
            matches!(none.failure(), SudoFailure::NeedsPassword(m) if m == "sudo: a password is required")
        );
    }
}
