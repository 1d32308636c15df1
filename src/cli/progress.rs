//! What people (and machines) see while an apply runs: spinners per running step on a
//! terminal, plain lines otherwise, or one JSON object per line with `--json`.

use sealer::exec::{Event, EventSink};
use sealer::plan::Action;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

pub enum Mode {
    Json,
    Bars,
    Lines,
}

pub struct Progress {
    mode: Mode,
    bars: indicatif::MultiProgress,
    running: Mutex<HashMap<String, indicatif::ProgressBar>>,
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
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            bars: indicatif::MultiProgress::new(),
            running: Mutex::new(HashMap::new()),
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
            for (_, bar) in running.drain() {
                bar.finish_and_clear();
            }
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: Event) {
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
                    let bar = self.bars.add(indicatif::ProgressBar::new_spinner());
                    bar.set_message(format!("{address}: {}{at}", verb(action)));
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    if let Ok(mut running) = self.running.lock() {
                        running.insert(address, bar);
                    }
                } else {
                    self.line(format!("{address}: {}{at}…", verb(action)));
                }
            }
            Event::StepOutput { address, line, .. } => {
                if let Mode::Bars = self.mode
                    && let Ok(running) = self.running.lock()
                    && let Some(bar) = running.get(&address)
                {
                    let short: String = line.chars().take(80).collect();
                    bar.set_message(format!("{address}: {short}"));
                }
            }
            Event::StepDone {
                address,
                action,
                seconds,
                ..
            } => {
                if let Ok(mut running) = self.running.lock()
                    && let Some(bar) = running.remove(&address)
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
                    && let Some(bar) = running.remove(&address)
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
