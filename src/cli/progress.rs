//! What people (and machines) see while an apply runs: on a terminal, a spinner per running
//! step under one overall line (steps finished of the plan's, elapsed, what each host runs)
//! and a table per host at the end; plain lines otherwise; or one JSON object per line with
//! `--json`. What the overall line and the table say is rendered in [`super::overview`].

use super::overview::{SpinnerText, Tally};
use sealer::exec::{Event, EventSink};
use sealer::plan::Action;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

pub enum Mode {
    Json,
    Bars,
    Lines,
}

pub struct Progress {
    mode: Mode,
    bars: indicatif::MultiProgress,
    /// Each running step's spinner, and what of its output it shows.
    running: Mutex<HashMap<String, (indicatif::ProgressBar, SpinnerText)>>,
    tally: Arc<Mutex<Tally>>,
    /// When the steps started ([`Progress::begin`]).
    started: OnceLock<Instant>,
    /// The overall line, under the spinners (terminal only).
    overall: OnceLock<indicatif::ProgressBar>,
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "destroying",
    }
}

impl Progress {
    /// Progress of a run of `tally`'s steps; the display starts with [`Progress::begin`].
    pub fn new(mode: Mode, tally: Tally) -> Progress {
        Progress {
            mode,
            bars: indicatif::MultiProgress::new(),
            running: Mutex::new(HashMap::new()),
            tally: Arc::new(Mutex::new(tally)),
            started: OnceLock::new(),
            overall: OnceLock::new(),
        }
    }

    /// The steps start now: on a terminal, the overall line appears (not before: the plan,
    /// the question and preflight print first, and a drawn line would garble them).
    pub fn begin(&self) {
        let started = *self.started.get_or_init(Instant::now);
        let Mode::Bars = self.mode else {
            return;
        };
        let shown = Arc::clone(&self.tally);
        let style = indicatif::ProgressStyle::with_template("{overall}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .with_key(
                "overall",
                move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    // One column short of the width: a full line wraps on some terminals.
                    let width = usize::from(console::Term::stderr().size().1).max(20) - 1;
                    if let Ok(tally) = shown.lock() {
                        let _ = w.write_str(&tally.line(started.elapsed(), width));
                    }
                },
            );
        self.overall.get_or_init(|| {
            let bar = self
                .bars
                .add(indicatif::ProgressBar::new_spinner().with_style(style));
            bar.enable_steady_tick(std::time::Duration::from_millis(500));
            bar
        });
    }

    /// The closing table per host (terminal only: pipes and `--json` keep their output).
    pub fn summary_table(&self) -> Option<String> {
        let Mode::Bars = self.mode else {
            return None;
        };
        let tally = self.tally.lock().ok()?;
        let elapsed = self.started.get().map(Instant::elapsed).unwrap_or_default();
        Some(tally.table(elapsed))
    }

    fn count(&self, event: &Event) {
        let Ok(mut tally) = self.tally.lock() else {
            return;
        };
        match event {
            Event::StepStart { address, host, .. } => tally.started(address, host.as_deref()),
            Event::StepDone {
                address,
                host,
                seconds,
                ..
            } => tally.done(address, host.as_deref(), *seconds),
            Event::StepFailed { address, host, .. } => tally.failed(address, host.as_deref()),
            Event::StepSkipped { address, .. } => tally.skipped(address),
            Event::StepOutput { .. } | Event::Warning { .. } => {}
        }
    }

    /// A JSON event line on stdout (`apply --json`), with a timestamp.
    pub fn json_line(&self, mut value: serde_json::Value) {
        if let Some(map) = value.as_object_mut() {
            map.insert("timestamp".into(), json!(sealer::clock::now_rfc3339()));
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    fn line(&self, text: String) {
        match self.mode {
            Mode::Bars => self.bars.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Ok(mut running) = self.running.lock() {
            for (_, (bar, _)) in running.drain() {
                bar.finish_and_clear();
            }
        }
        if let Some(bar) = self.overall.get() {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: Event) {
        self.count(&event);
        if let Mode::Json = self.mode {
            let value = match &event {
                Event::StepStart {
                    address,
                    host,
                    action,
                } => {
                    json!({"type": "step_start", "address": address, "host": host, "action": action.as_str()})
                }
                Event::StepOutput {
                    address,
                    host,
                    stderr,
                    line,
                } => {
                    json!({"type": "step_output", "address": address, "host": host, "stream": if *stderr { "stderr" } else { "stdout" }, "line": line})
                }
                Event::StepDone {
                    address,
                    host,
                    action,
                    seconds,
                } => {
                    json!({"type": "step_done", "address": address, "host": host, "action": action.as_str(), "seconds": seconds})
                }
                Event::StepFailed {
                    address,
                    host,
                    failure,
                } => {
                    json!({"type": "step_failed", "address": address, "host": host, "command": failure.command, "error": failure.message, "output_tail": failure.output_tail})
                }
                Event::StepSkipped { address, because } => {
                    json!({"type": "step_skipped", "address": address, "because": because})
                }
                Event::Warning { message } => json!({"type": "warning", "message": message}),
            };
            self.json_line(value);
            return;
        }
        match event {
            Event::StepStart {
                address,
                host,
                action,
            } => {
                let at = host.map(|h| format!(" on {h}")).unwrap_or_default();
                if let Mode::Bars = self.mode {
                    let spinner = indicatif::ProgressBar::new_spinner();
                    let bar = match self.overall.get() {
                        Some(overall) => self.bars.insert_before(overall, spinner),
                        None => self.bars.add(spinner),
                    };
                    bar.set_message(format!("{address}: {}{at}", verb(action)));
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    if let Ok(mut running) = self.running.lock() {
                        running.insert(address, (bar, SpinnerText::default()));
                    }
                } else {
                    self.line(format!("{address}: {}{at}…", verb(action)));
                }
            }
            Event::StepOutput { address, line, .. } => {
                if let Mode::Bars = self.mode
                    && let Ok(mut running) = self.running.lock()
                    && let Some((bar, text)) = running.get_mut(&address)
                    && let Some(shown) = text.next(&line)
                {
                    bar.set_message(format!("{address}: {shown}"));
                }
            }
            Event::StepDone {
                address,
                action,
                seconds,
                ..
            } => {
                if let Ok(mut running) = self.running.lock()
                    && let Some((bar, _)) = running.remove(&address)
                {
                    bar.finish_and_clear();
                }
                let done = match action {
                    Action::Create => "created",
                    Action::Update => "updated",
                    Action::Replace => "replaced",
                    Action::Delete => "destroyed",
                };
                self.line(format!("{address}: {done} ({seconds:.1}s)"));
            }
            Event::StepFailed {
                address, failure, ..
            } => {
                if let Ok(mut running) = self.running.lock()
                    && let Some((bar, _)) = running.remove(&address)
                {
                    bar.finish_and_clear();
                }
                self.line(format!("{address}: failed: {}", failure.message));
            }
            Event::StepSkipped { address, because } => {
                self.line(format!("{address}: skipped ({because} failed)"));
            }
            Event::Warning { message } => self.line(format!("warning: {message}")),
        }
    }
}
