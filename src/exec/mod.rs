//! The executor: carries out a plan on hosts. [`schedule`] decides when each step runs;
//! a [`StepRunner`] runs it (the real one talks to hosts through `sealer_providers`); a
//! [`Recorder`] commits every finished step to the state before its dependents start.
//! Nothing here prints: progress goes out as [`Event`]s.

pub mod hosts;
pub mod runner;
pub mod schedule;

use crate::plan::{Action, Change};
use crate::resource::{Attributes, Recorded, Status};
use crate::state::StateStore;
use std::future::Future;

pub use schedule::Report;

/// Why a step failed: the command, what went wrong, and the last lines of its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The command that failed, as shown to people (never with secrets in it).
    pub command: Option<String>,
    pub message: String,
    pub output_tail: Vec<String>,
}

impl StepFailure {
    pub fn message(message: impl Into<String>) -> StepFailure {
        StepFailure {
            command: None,
            message: message.into(),
            output_tail: Vec::new(),
        }
    }
}

/// What the executor reports while it works (rendered by the CLI as progress bars, plain
/// lines or `--json` events).
#[derive(Debug, Clone)]
pub enum Event {
    StepStart {
        address: String,
        host: Option<String>,
        action: Action,
    },
    StepOutput {
        address: String,
        host: Option<String>,
        stderr: bool,
        line: String,
    },
    StepDone {
        address: String,
        host: Option<String>,
        action: Action,
        seconds: f64,
    },
    StepFailed {
        address: String,
        host: Option<String>,
        failure: StepFailure,
    },
    StepSkipped {
        address: String,
        because: String,
    },
    Warning {
        message: String,
    },
}

pub trait EventSink: Send + Sync {
    fn event(&self, event: Event);
}

/// Runs one step (a change) on its host(s); returns the attributes known only now.
pub trait StepRunner: Send + Sync + 'static {
    fn run(&self, change: &Change) -> impl Future<Output = Result<Attributes, StepFailure>> + Send;
}

/// Where finished steps are recorded.
pub trait Recorder: Send + Sync {
    fn record(&self, change: &Change, computed: Attributes) -> crate::Result<()>;
    fn taint(&self, change: &Change) -> crate::Result<()>;
}

/// The state store as a recorder: one transaction per finished step.
pub struct StateRecorder<'a> {
    pub store: &'a StateStore,
    pub cluster: String,
}

impl Recorder for StateRecorder<'_> {
    fn record(&self, change: &Change, computed: Attributes) -> crate::Result<()> {
        match (&change.action, &change.desired) {
            (Action::Delete, _) => {
                self.store.remove(&self.cluster, &change.address)?;
            }
            (_, Some(desired)) => {
                self.store
                    .commit(&self.cluster, &Recorded::applied(desired, computed))?;
            }
            (_, None) => {
                return Err(crate::Error::msg(format!(
                    "{}: the plan has no desired attributes for it",
                    change.address
                )));
            }
        }
        Ok(())
    }

    fn taint(&self, change: &Change) -> crate::Result<()> {
        match (&change.action, &change.desired) {
            // A resource being made: recorded tainted with what it is becoming, in one
            // write (no read of the whole state per step), so the next plan replaces it.
            (Action::Create | Action::Replace, Some(desired)) => {
                let mut r = Recorded::applied(desired, Attributes::new());
                r.status = Status::Tainted;
                self.store.commit(&self.cluster, &r)?;
            }
            // An update or a destroy that failed: the recorded resource is marked.
            _ => {
                self.store.taint(&self.cluster, &change.address)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
