//! The scheduler with a scripted runner: order, per-host exclusivity, parallelism, failure
//! handling, interruption. (Real hosts are exercised by the end-to-end suite.)

use super::*;
use crate::plan::{Plan, PlanOptions, diff};
use crate::resource::{Desired, ResourceType};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn desired(address: &str, host: &str, deps: &[&str]) -> Desired {
    Desired {
        address: address.into(),
        resource_type: ResourceType::Host,
        host: Some(host.into()),
        attributes: Attributes::new(),
        sensitive: BTreeSet::new(),
        computed: BTreeSet::new(),
        replace_on: BTreeSet::new(),
        depends_on: deps.iter().map(|s| s.to_string()).collect(),
    }
}

#[derive(Default)]
struct Log {
    events: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    hosts: Mutex<BTreeMap<String, usize>>,
    host_overlap: AtomicUsize,
}

struct Runner {
    log: Arc<Log>,
    fail: BTreeSet<String>,
    delay: Duration,
}

use std::sync::Arc;

impl StepRunner for Runner {
    async fn run(&self, change: &Change) -> Result<Attributes, StepFailure> {
        let log = &self.log;
        let now = log.running.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_running.fetch_max(now, Ordering::SeqCst);
        let host = change.host.clone().unwrap_or_default();
        {
            let mut hosts = log.hosts.lock().unwrap();
            let n = hosts.entry(host.clone()).or_default();
            *n += 1;
            if *n > 1 {
                log.host_overlap.fetch_add(1, Ordering::SeqCst);
            }
        }
        log.events
            .lock()
            .unwrap()
            .push(format!("start {}", change.address));
        tokio::time::sleep(self.delay).await;
        *log.hosts.lock().unwrap().get_mut(&host).unwrap() -= 1;
        log.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.contains(&change.address) {
            return Err(StepFailure::message("boom"));
        }
        Ok(Attributes::new())
    }
}

struct Rec(Arc<Log>);

impl Recorder for Rec {
    fn record(&self, change: &Change, _: Attributes) -> crate::Result<()> {
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("record {}", change.address));
        Ok(())
    }
    fn taint(&self, change: &Change) -> crate::Result<()> {
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("taint {}", change.address));
        Ok(())
    }
}

struct Sink;
impl EventSink for Sink {
    fn event(&self, _: Event) {}
}

fn plan_of(ds: &[Desired]) -> Plan {
    diff("c", ds, None, &PlanOptions::default()).unwrap()
}

async fn run(plan: &Plan, fail: &[&str], parallelism: usize) -> (Report, Arc<Log>) {
    let log = Arc::new(Log::default());
    let runner = Arc::new(Runner {
        log: Arc::clone(&log),
        fail: fail.iter().map(|s| s.to_string()).collect(),
        delay: Duration::from_millis(20),
    });
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = schedule::run(plan, runner, &Rec(Arc::clone(&log)), parallelism, &Sink, rx).await;
    (report, log)
}

fn position(log: &Log, event: &str) -> usize {
    let events = log.events.lock().unwrap();
    events
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("no {event} in {events:?}"))
}

#[tokio::test]
async fn dependencies_are_recorded_before_dependents_start() {
    let plan = plan_of(&[
        desired("a.1", "h1", &[]),
        desired("b.1", "h1", &["a.1"]),
        desired("a.2", "h2", &[]),
        desired("c", "h3", &["b.1", "a.2"]),
    ]);
    let (report, log) = run(&plan, &[], 10).await;
    assert!(report.success(), "{report:?}");
    assert!(position(&log, "record a.1") < position(&log, "start b.1"));
    assert!(position(&log, "record b.1") < position(&log, "start c"));
    assert!(position(&log, "record a.2") < position(&log, "start c"));
}

#[tokio::test]
async fn one_step_at_a_time_per_host_parallel_across_hosts() {
    let mut ds = Vec::new();
    for h in 0..6 {
        for s in 0..3 {
            ds.push(desired(&format!("s{s}.{h}"), &format!("h{h}"), &[]));
        }
    }
    let (report, log) = run(&plan_of(&ds), &[], 4).await;
    assert!(report.success());
    assert_eq!(
        log.host_overlap.load(Ordering::SeqCst),
        0,
        "two steps ran on one host"
    );
    assert_eq!(
        log.max_running.load(Ordering::SeqCst),
        4,
        "parallelism is used and bounded"
    );
}

#[tokio::test]
async fn a_failure_skips_dependents_and_lets_the_rest_finish() {
    let plan = plan_of(&[
        desired("a", "h1", &[]),
        desired("b", "h1", &["a"]),
        desired("c", "h2", &["b"]),
        desired("x", "h3", &[]),
        desired("y", "h3", &["x"]),
    ]);
    let (report, log) = run(&plan, &["a"], 10).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "a");
    let mut skipped = report.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, ["b", "c"]);
    assert_eq!(report.done, ["x", "y"]);
    assert!(log.events.lock().unwrap().contains(&"taint a".to_string()));
}

#[tokio::test]
async fn an_interrupt_stops_scheduling_and_waits_for_running_steps() {
    let plan = plan_of(&[desired("a", "h1", &[]), desired("b", "h1", &["a"])]);
    let log = Arc::new(Log::default());
    let runner = Arc::new(Runner {
        log: Arc::clone(&log),
        fail: BTreeSet::new(),
        delay: Duration::from_millis(200),
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(true);
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let report = schedule::run(&plan, runner, &Rec(Arc::clone(&log)), 10, &Sink, rx).await;
    task.abort();
    assert_eq!(
        report.done,
        ["a"],
        "the running step finished and was recorded"
    );
    assert_eq!(report.not_started, ["b"]);
}

#[tokio::test]
async fn destroys_run_dependents_first() {
    let ds = [
        desired("a", "h1", &[]),
        desired("b", "h2", &["a"]),
        desired("c", "h3", &["b"]),
    ];
    let state: BTreeMap<String, crate::resource::Recorded> = ds
        .iter()
        .map(|d| {
            (
                d.address.clone(),
                crate::resource::Recorded::applied(d, Attributes::new()),
            )
        })
        .collect();
    let plan = diff(
        "c",
        &[],
        Some(crate::plan::Current {
            lineage: "l",
            serial: 1,
            resources: &state,
        }),
        &PlanOptions {
            destroy: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (report, log) = run(&plan, &[], 10).await;
    assert!(report.success());
    assert!(position(&log, "record c") < position(&log, "start b"));
    assert!(position(&log, "record b") < position(&log, "start a"));
}
