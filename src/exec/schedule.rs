//! The scheduler: runs a plan's changes in dependency order, in parallel where the graph
//! allows, one step at a time per host, committing each finished step before its
//! dependents start. A failure skips the failed step's dependents and lets the rest finish.

use super::{Event, EventSink, Recorder, StepFailure, StepRunner};
use crate::plan::{Action, Change, Plan};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What happened to each step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub done: Vec<String>,
    pub failed: Vec<(String, StepFailure)>,
    pub skipped: Vec<String>,
    /// Steps not started because the run was interrupted.
    pub not_started: Vec<String>,
}

impl Report {
    pub fn success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty()
    }
}

/// For each change, the indices of the changes it waits for.
fn dependencies(changes: &[Change]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.as_str(), i))
        .collect();
    let deletes: Vec<usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == Action::Delete)
        .map(|(i, _)| i)
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    // A resource goes after everything being destroyed that depends on it (one pass over
    // the dependency lists: a destroy of thousands of hosts has tens of thousands).
    for &j in &deletes {
        for d in &changes[j].depends_on {
            if let Some(&i) = index.get(d.as_str())
                && i != j
                && changes[i].action == Action::Delete
            {
                deps[i].push(j);
            }
        }
    }
    for &i in &deletes {
        deps[i].sort_unstable();
        deps[i].dedup();
    }
    for (i, change) in changes.iter().enumerate() {
        if change.action == Action::Delete {
            continue;
        }
        // Destroys come first; then dependencies that are part of this plan.
        deps[i].extend(deletes.iter().copied());
        for d in &change.depends_on {
            if let Some(&j) = index.get(d.as_str())
                && changes[j].action != Action::Delete
                && j != i
            {
                deps[i].push(j);
            }
        }
    }
    deps
}

pub async fn run<R: StepRunner>(
    plan: &Plan,
    runner: Arc<R>,
    recorder: &dyn Recorder,
    parallelism: usize,
    sink: &dyn EventSink,
    mut cancel: watch::Receiver<bool>,
) -> Report {
    let changes = &plan.changes;
    let deps = dependencies(changes);
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: BTreeSet<usize> = (0..changes.len()).filter(|&i| waiting[i] == 0).collect();
    let mut busy_hosts: HashSet<String> = HashSet::new();
    let mut finished: Vec<bool> = vec![false; changes.len()];
    let mut report = Report::default();
    let mut running: JoinSet<(
        usize,
        Result<crate::resource::Attributes, StepFailure>,
        Instant,
    )> = JoinSet::new();
    let parallelism = parallelism.max(1);

    loop {
        let interrupted = *cancel.borrow();
        if !interrupted {
            // Start what may start, in plan order.
            let startable: Vec<usize> = ready
                .iter()
                .copied()
                .filter(|&i| {
                    changes[i]
                        .host
                        .as_ref()
                        .is_none_or(|h| !busy_hosts.contains(h))
                })
                .collect();
            let mut hosts_taken: HashSet<String> = HashSet::new();
            for i in startable {
                if running.len() >= parallelism {
                    break;
                }
                let change = &changes[i];
                if let Some(h) = &change.host {
                    if hosts_taken.contains(h) {
                        continue;
                    }
                    hosts_taken.insert(h.clone());
                    busy_hosts.insert(h.clone());
                }
                ready.remove(&i);
                // A step that creates something is recorded as tainted before it starts: if
                // sealer dies midway, the next plan replaces it (its teardown tolerates a
                // half-made resource) instead of creating it a second time.
                if matches!(change.action, Action::Create | Action::Replace)
                    && let Err(e) = recorder.taint(change)
                {
                    if let Some(h) = &change.host {
                        busy_hosts.remove(h);
                    }
                    let failure = StepFailure::message(format!(
                        "the state could not record the step's start: {e}"
                    ));
                    fail(
                        i,
                        failure,
                        changes,
                        &dependents,
                        &mut finished,
                        &mut ready,
                        &mut report,
                        recorder,
                        sink,
                    );
                    continue;
                }
                sink.event(Event::StepStart {
                    address: change.address.clone(),
                    host: change.host.clone(),
                    action: change.action,
                });
                let runner = Arc::clone(&runner);
                let change = change.clone();
                running.spawn(async move {
                    let started = Instant::now();
                    let result = runner.run(&change).await;
                    (i, result, started)
                });
            }
        }
        if running.is_empty() {
            break;
        }
        let finished_task = tokio::select! {
            joined = running.join_next() => joined,
            _ = cancel.changed(), if !interrupted => continue,
        };
        let Some(joined) = finished_task else { break };
        let (i, result, started) = match joined {
            Ok(v) => v,
            // A panicking step is a bug; the scheduler keeps its own invariants anyway.
            Err(e) => {
                report.failed.push((
                    format!("(step panicked: {e})"),
                    StepFailure::message(e.to_string()),
                ));
                continue;
            }
        };
        let change = &changes[i];
        if let Some(h) = &change.host {
            busy_hosts.remove(h);
        }
        finished[i] = true;
        match result {
            Ok(computed) => match recorder.record(change, computed) {
                Ok(()) => {
                    sink.event(Event::StepDone {
                        address: change.address.clone(),
                        host: change.host.clone(),
                        action: change.action,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                    report.done.push(change.address.clone());
                    for &d in &dependents[i] {
                        waiting[d] -= 1;
                        if waiting[d] == 0 && !finished[d] {
                            ready.insert(d);
                        }
                    }
                }
                Err(e) => {
                    let failure = StepFailure::message(format!(
                        "the step finished but the state could not record it: {e}"
                    ));
                    fail(
                        i,
                        failure,
                        changes,
                        &dependents,
                        &mut finished,
                        &mut ready,
                        &mut report,
                        recorder,
                        sink,
                    );
                }
            },
            Err(failure) => fail(
                i,
                failure,
                changes,
                &dependents,
                &mut finished,
                &mut ready,
                &mut report,
                recorder,
                sink,
            ),
        }
    }
    for (i, change) in changes.iter().enumerate() {
        if !finished[i] {
            report.not_started.push(change.address.clone());
        }
    }
    report
}

#[allow(clippy::too_many_arguments)]
fn fail(
    i: usize,
    failure: StepFailure,
    changes: &[Change],
    dependents: &[Vec<usize>],
    finished: &mut [bool],
    ready: &mut BTreeSet<usize>,
    report: &mut Report,
    recorder: &dyn Recorder,
    sink: &dyn EventSink,
) {
    let change = &changes[i];
    // Tainted: the next plan replaces it. A failed destroy keeps the resource recorded.
    if let Err(e) = recorder.taint(change) {
        sink.event(Event::Warning {
            message: format!(
                "{}: could not mark it tainted in the state: {e}",
                change.address
            ),
        });
    }
    sink.event(Event::StepFailed {
        address: change.address.clone(),
        host: change.host.clone(),
        failure: failure.clone(),
    });
    report.failed.push((change.address.clone(), failure));
    // Everything that waits for it, transitively, is skipped.
    let mut stack: Vec<usize> = dependents[i].clone();
    while let Some(d) = stack.pop() {
        if finished[d] {
            continue;
        }
        finished[d] = true;
        ready.remove(&d);
        sink.event(Event::StepSkipped {
            address: changes[d].address.clone(),
            because: change.address.clone(),
        });
        report.skipped.push(changes[d].address.clone());
        stack.extend(dependents[d].iter().copied());
    }
}
