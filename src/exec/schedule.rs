//! The scheduler: runs a plan's changes in dependency order, in parallel where the graph
//! allows, one step at a time per host, committing each finished step before its
//! dependents start. A failure (a panic of the step included) skips the failed step's
//! dependents and lets the rest finish.
//!
//! Besides dependencies, a plan may order steps without making one need the other: the
//! rootfs distribution tree ([`crate::plan::distribution`]) lets a receiver start once its
//! seeder's step ended, whatever its outcome (a receiver whose seeder failed syncs from the
//! operator instead of being skipped).
//!
//! The bookkeeping lives in `StepQueue`, in the manner of cargo's `DependencyQueue`: it
//! knows which steps wait, which may start and which run, and nothing about tasks, the
//! state or events. `Tasks` runs steps and always says which step a result belongs to,
//! even when the step panicked or its task was cancelled. [`run`] is the loop between them.

use super::{Event, EventSink, Recorder, StepFailure, StepRunner};
use crate::plan::{Action, Change, Plan};
use crate::resource::Attributes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

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
///
/// A dependency `depends_on` between two changes orders them; which way depends on whether
/// the one that declares it is destroyed:
/// - a change that is not a delete goes after what it depends on (a delete included: what
///   it needs gone must be gone first);
/// - a delete goes before what it depended on, delete or not: dependents are destroyed
///   first, and what a destroyed resource used is changed or replaced only once it is gone.
///
/// Deletes therefore never wait for other changes, and a change waits for a delete only
/// when one of them names the other: an unrelated create need not wait for a slow destroy.
pub(super) fn dependencies(changes: &[Change]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.as_str(), i))
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    // One pass over the dependency lists: a destroy of thousands of hosts has tens of
    // thousands of them.
    for (j, change) in changes.iter().enumerate() {
        for d in &change.depends_on {
            let Some(&i) = index.get(d.as_str()) else {
                continue;
            };
            if i == j {
                continue;
            }
            if change.action == Action::Delete {
                deps[i].push(j);
            } else {
                deps[j].push(i);
            }
        }
    }
    for ds in &mut deps {
        ds.sort_unstable();
        ds.dedup();
    }
    deps
}

/// Where a step is in its life. Done, Failed and Skipped are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
    Skipped,
}

/// Which steps wait, may start, run and are finished, and which hosts are busy.
///
/// Every step moves forward only (waiting, ready, running, then one final stage), so each
/// is reported once; a step that never left waiting or ready is "not started".
pub(super) struct StepQueue<'a> {
    changes: &'a [Change],
    dependents: Vec<Vec<usize>>,
    /// Steps ordered after each step (ordering only: they start once it ended, however).
    followers: Vec<Vec<usize>>,
    /// How many dependencies of each step are not done yet.
    waiting: Vec<usize>,
    stage: Vec<Stage>,
    /// Ordered by index: ready steps start in plan order.
    ready: BTreeSet<usize>,
    busy_hosts: HashSet<&'a str>,
    running: usize,
}

impl<'a> StepQueue<'a> {
    #[cfg(test)]
    pub(super) fn new(changes: &'a [Change]) -> StepQueue<'a> {
        StepQueue::ordered(changes, &[])
    }

    /// A queue where, besides the dependencies, each `(before, after)` pair makes `after`
    /// wait until `before` ended, whether it succeeded, failed or was skipped.
    pub(super) fn ordered(changes: &'a [Change], order: &[(usize, usize)]) -> StepQueue<'a> {
        let deps = dependencies(changes);
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut followers: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
        for &(before, after) in order {
            if before < changes.len() && after < changes.len() && before != after {
                followers[before].push(after);
                waiting[after] += 1;
            }
        }
        let ready: BTreeSet<usize> = (0..changes.len()).filter(|&i| waiting[i] == 0).collect();
        let stage = (0..changes.len())
            .map(|i| {
                if waiting[i] == 0 {
                    Stage::Ready
                } else {
                    Stage::Waiting
                }
            })
            .collect();
        StepQueue {
            changes,
            dependents,
            followers,
            waiting,
            stage,
            ready,
            busy_hosts: HashSet::new(),
            running: 0,
        }
    }

    /// The first ready step, in plan order, whose host is free, if fewer than
    /// `parallelism` steps run; it is running (its host busy) from now on.
    pub(super) fn next_startable(&mut self, parallelism: usize) -> Option<usize> {
        if self.running >= parallelism.max(1) {
            return None;
        }
        let changes = self.changes;
        let i = self.ready.iter().copied().find(|&i| {
            changes[i]
                .host
                .as_deref()
                .is_none_or(|h| !self.busy_hosts.contains(h))
        })?;
        self.ready.remove(&i);
        self.stage[i] = Stage::Running;
        self.running += 1;
        if let Some(h) = changes[i].host.as_deref() {
            self.busy_hosts.insert(h);
        }
        Some(i)
    }

    /// A running step finished (`ok`: done and recorded); frees its host. Returns the
    /// steps that became ready (none for a failure: see [`StepQueue::skip_dependents`]).
    pub(super) fn finish(&mut self, i: usize, ok: bool) -> Vec<usize> {
        if self.stage[i] != Stage::Running {
            debug_assert!(false, "step {i} finished while {:?}", self.stage[i]);
            return Vec::new();
        }
        self.running -= 1;
        if let Some(h) = self.changes[i].host.as_deref() {
            self.busy_hosts.remove(h);
        }
        let mut ready = Vec::new();
        self.release_followers(i, &mut ready);
        if !ok {
            self.stage[i] = Stage::Failed;
            return ready;
        }
        self.stage[i] = Stage::Done;
        for d in self.dependents[i].clone() {
            self.one_less(d, &mut ready);
        }
        ready
    }

    /// Step `d` waits for one thing less; it is ready when it waits for nothing.
    fn one_less(&mut self, d: usize, ready: &mut Vec<usize>) {
        self.waiting[d] -= 1;
        if self.waiting[d] == 0 && self.stage[d] == Stage::Waiting {
            self.stage[d] = Stage::Ready;
            self.ready.insert(d);
            ready.push(d);
        }
    }

    /// Step `i` ended (done, failed or skipped): what is only ordered after it may go.
    fn release_followers(&mut self, i: usize, ready: &mut Vec<usize>) {
        for f in std::mem::take(&mut self.followers[i]) {
            self.one_less(f, ready);
        }
    }

    /// Skips everything that waits for step `i`, transitively; returns the skipped steps
    /// in plan order, each once (also across calls).
    pub(super) fn skip_dependents(&mut self, i: usize) -> Vec<usize> {
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if !matches!(self.stage[d], Stage::Waiting | Stage::Ready) {
                continue;
            }
            self.stage[d] = Stage::Skipped;
            self.ready.remove(&d);
            skipped.push(d);
            self.release_followers(d, &mut Vec::new());
            stack.extend(self.dependents[d].iter().copied());
        }
        skipped.sort_unstable();
        skipped
    }

    /// Steps that never started and were not skipped, in plan order.
    pub(super) fn not_started(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.stage.len()).filter(|&i| matches!(self.stage[i], Stage::Waiting | Stage::Ready))
    }
}

/// How a step's task ended: its attributes and how long it took, or why it failed.
pub(super) type Outcome = Result<(Attributes, Duration), StepFailure>;

/// The running steps' tasks, each known by its step index, whatever way its task ends.
#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<Outcome>,
    /// A panicked or cancelled task comes back as a [`JoinError`] that only has the task's
    /// id: this maps it back to the step, so that step frees its host and is reported.
    steps: HashMap<Id, usize>,
}

impl Tasks {
    pub(super) fn spawn<F>(&mut self, i: usize, step: F) -> AbortHandle
    where
        F: Future<Output = Result<Attributes, StepFailure>> + Send + 'static,
    {
        let handle = self.set.spawn(async move {
            let started = Instant::now();
            step.await.map(|computed| (computed, started.elapsed()))
        });
        self.steps.insert(handle.id(), i);
        handle
    }

    pub(super) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next step to end and how, or None when none runs.
    pub(super) async fn join_next(&mut self) -> Option<(usize, Outcome)> {
        loop {
            let (id, outcome) = match self.set.join_next_with_id().await? {
                Ok((id, outcome)) => (id, outcome),
                Err(e) => (e.id(), Err(lost(e))),
            };
            // Every task is registered as it is spawned, before it can be joined; an
            // unknown id has no step to report.
            if let Some(i) = self.steps.remove(&id) {
                return Some((i, outcome));
            }
        }
    }
}

/// The failure of a step whose task did not return: it panicked or was cancelled.
fn lost(e: JoinError) -> StepFailure {
    if e.is_cancelled() {
        return StepFailure::message("the step was cancelled before it finished");
    }
    let text = match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned()),
        Err(_) => None,
    };
    StepFailure::message(match text {
        Some(text) => format!("the step panicked (a bug in sealer): {text}"),
        None => "the step panicked (a bug in sealer)".to_string(),
    })
}

/// What a run does around the queue: the state writes, the events and the report.
struct Books<'a> {
    queue: StepQueue<'a>,
    recorder: &'a dyn Recorder,
    sink: &'a dyn EventSink,
    report: Report,
}

impl Books<'_> {
    /// Prepares a step the queue let start; false when it failed before it could run.
    fn start(&mut self, i: usize) -> bool {
        let changes = self.queue.changes;
        let change = &changes[i];
        // A step that creates something is recorded as tainted before it starts: if
        // sealer dies midway, the next plan replaces it (its teardown tolerates a
        // half-made resource) instead of creating it a second time.
        if matches!(change.action, Action::Create | Action::Replace)
            && let Err(e) = self.recorder.taint(change)
        {
            let failure =
                StepFailure::message(format!("the state could not record the step's start: {e}"));
            self.fail(i, failure);
            return false;
        }
        self.sink.event(Event::StepStart {
            address: change.address.clone(),
            host: change.host.clone(),
            action: change.action,
        });
        true
    }

    /// Records a step that ended, before anything that waits for it may start.
    fn end(&mut self, i: usize, outcome: Outcome) {
        let changes = self.queue.changes;
        let change = &changes[i];
        let (computed, took) = match outcome {
            Ok(v) => v,
            Err(failure) => return self.fail(i, failure),
        };
        if let Err(e) = self.recorder.record(change, computed) {
            let failure = StepFailure::message(format!(
                "the step finished but the state could not record it: {e}"
            ));
            return self.fail(i, failure);
        }
        self.sink.event(Event::StepDone {
            address: change.address.clone(),
            host: change.host.clone(),
            action: change.action,
            seconds: took.as_secs_f64(),
        });
        self.report.done.push(change.address.clone());
        self.queue.finish(i, true);
    }

    fn fail(&mut self, i: usize, failure: StepFailure) {
        self.queue.finish(i, false);
        let changes = self.queue.changes;
        let change = &changes[i];
        // Tainted: the next plan replaces it. A failed destroy keeps the resource recorded.
        // A failed update is not tainted: it keeps its record, and the next plan runs the
        // same (idempotent) update again; replacing it instead would be out of proportion,
        // and for a Kubernetes upgrade would re-initialize the cluster.
        if change.action != Action::Update
            && let Err(e) = self.recorder.taint(change)
        {
            self.sink.event(Event::Warning {
                message: format!(
                    "{}: could not mark it tainted in the state: {e}",
                    change.address
                ),
            });
        }
        self.sink.event(Event::StepFailed {
            address: change.address.clone(),
            host: change.host.clone(),
            failure: failure.clone(),
        });
        self.report.failed.push((change.address.clone(), failure));
        for d in self.queue.skip_dependents(i) {
            let address = changes[d].address.clone();
            self.sink.event(Event::StepSkipped {
                address: address.clone(),
                because: change.address.clone(),
            });
            self.report.skipped.push(address);
        }
    }

    fn into_report(self) -> Report {
        let mut report = self.report;
        let changes = self.queue.changes;
        report
            .not_started
            .extend(self.queue.not_started().map(|i| changes[i].address.clone()));
        report
    }
}

pub async fn run<R: StepRunner>(
    plan: &Plan,
    runner: Arc<R>,
    recorder: &dyn Recorder,
    parallelism: usize,
    sink: &dyn EventSink,
    mut cancel: watch::Receiver<bool>,
) -> Report {
    let tree = crate::plan::distribution::tree(&plan.changes, plan.rootfs_distribution);
    let mut books = Books {
        queue: StepQueue::ordered(&plan.changes, &tree.order),
        recorder,
        sink,
        report: Report::default(),
    };
    let mut tasks = Tasks::default();
    // With every sender gone no interrupt can come: waiting for one would spin.
    let mut cancel_open = true;
    loop {
        let interrupted = *cancel.borrow();
        if !interrupted {
            while let Some(i) = books.queue.next_startable(parallelism) {
                if books.start(i) {
                    let runner = Arc::clone(&runner);
                    let change = plan.changes[i].clone();
                    tasks.spawn(i, async move { runner.run(&change).await });
                }
            }
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            ended = tasks.join_next() => {
                if let Some((i, outcome)) = ended {
                    books.end(i, outcome);
                }
            }
            changed = cancel.changed(), if !interrupted && cancel_open => {
                cancel_open = changed.is_ok();
            }
        }
    }
    books.into_report()
}
