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
    /// What the scheduler told the sink: `failed a`, `skipped b`, ...
    emitted: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    hosts: Mutex<BTreeMap<String, usize>>,
    host_overlap: AtomicUsize,
}

struct Runner {
    log: Arc<Log>,
    fail: BTreeSet<String>,
    /// Steps that panic as they start.
    panic: BTreeSet<String>,
    delay: Duration,
    /// Steps that take this long instead of `delay`.
    slow: BTreeMap<String, Duration>,
    /// Interrupts the run as this step starts.
    interrupt_at: Option<(String, tokio::sync::watch::Sender<bool>)>,
}

use std::sync::Arc;

impl StepRunner for Runner {
    async fn run(&self, change: &Change) -> Result<Attributes, StepFailure> {
        let log = &self.log;
        if self.panic.contains(&change.address) {
            log.events
                .lock()
                .unwrap()
                .push(format!("start {}", change.address));
            panic!("scripted panic of {}", change.address);
        }
        if let Some((address, tx)) = &self.interrupt_at
            && *address == change.address
        {
            let _ = tx.send(true);
        }
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
        let delay = self
            .slow
            .get(&change.address)
            .copied()
            .unwrap_or(self.delay);
        tokio::time::sleep(delay).await;
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

struct Sink(Arc<Log>);
impl EventSink for Sink {
    fn event(&self, event: Event) {
        let line = match event {
            Event::StepStart { address, .. } => format!("started {address}"),
            Event::StepDone { address, .. } => format!("done {address}"),
            Event::StepFailed {
                address, failure, ..
            } => format!("failed {address}: {}", failure.message),
            Event::StepSkipped { address, because } => format!("skipped {address} ({because})"),
            Event::StepOutput { .. } | Event::Warning { .. } => return,
        };
        self.0.emitted.lock().unwrap().push(line);
    }
}

fn plan_of(ds: &[Desired]) -> Plan {
    diff("c", ds, None, &PlanOptions::default()).unwrap()
}

/// How the scripted runner behaves.
struct Script {
    fail: &'static [&'static str],
    panic: &'static [&'static str],
    slow: &'static [(&'static str, u64)],
    interrupt_at: Option<&'static str>,
    parallelism: usize,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            fail: &[],
            panic: &[],
            slow: &[],
            interrupt_at: None,
            parallelism: 10,
        }
    }
}

async fn run_script(plan: &Plan, script: Script) -> (Report, Arc<Log>) {
    let log = Arc::new(Log::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let runner = Arc::new(Runner {
        log: Arc::clone(&log),
        fail: script.fail.iter().map(|s| s.to_string()).collect(),
        panic: script.panic.iter().map(|s| s.to_string()).collect(),
        delay: Duration::from_millis(20),
        slow: script
            .slow
            .iter()
            .map(|(a, ms)| (a.to_string(), Duration::from_millis(*ms)))
            .collect(),
        interrupt_at: script.interrupt_at.map(|a| (a.to_string(), tx.clone())),
    });
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        schedule::run(
            plan,
            runner,
            &Rec(Arc::clone(&log)),
            script.parallelism,
            &Sink(Arc::clone(&log)),
            rx,
        ),
    )
    .await
    .expect("the run ended");
    drop(tx);
    (report, log)
}

async fn run(plan: &Plan, fail: &'static [&'static str], parallelism: usize) -> (Report, Arc<Log>) {
    run_script(
        plan,
        Script {
            fail,
            parallelism,
            ..Script::default()
        },
    )
    .await
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
        panic: BTreeSet::new(),
        delay: Duration::from_millis(200),
        slow: BTreeMap::new(),
        interrupt_at: None,
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(true);
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let report = schedule::run(
        &plan,
        runner,
        &Rec(Arc::clone(&log)),
        10,
        &Sink(Arc::clone(&log)),
        rx,
    )
    .await;
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

/// A plan from `state` (recorded as applied) to `desired`: what `desired` lacks is destroyed.
fn plan_against(state: &[Desired], desired: &[Desired]) -> Plan {
    let recorded: BTreeMap<String, crate::resource::Recorded> = state
        .iter()
        .map(|d| {
            (
                d.address.clone(),
                crate::resource::Recorded::applied(d, Attributes::new()),
            )
        })
        .collect();
    let current = crate::plan::Current {
        lineage: "l",
        serial: 1,
        resources: &recorded,
    };
    diff("c", desired, Some(current), &PlanOptions::default()).unwrap()
}

fn with_version(mut d: Desired, version: u64) -> Desired {
    d.attributes.insert("version".into(), version.into());
    d
}

fn emitted(log: &Log) -> Vec<String> {
    log.emitted.lock().unwrap().clone()
}

fn count(lines: &[String], pred: impl Fn(&str) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

#[tokio::test]
async fn a_panicking_step_fails_alone_frees_its_host_and_skips_its_dependents() {
    let plan = plan_of(&[
        desired("p", "h1", &[]),
        desired("q", "h1", &[]),
        desired("r", "h2", &["p"]),
        desired("s", "h3", &["r"]),
    ]);
    let (report, log) = run_script(
        &plan,
        Script {
            panic: &["p"],
            ..Script::default()
        },
    )
    .await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let (address, failure) = &report.failed[0];
    assert_eq!(address, "p");
    assert!(
        failure.message.contains("panicked") && failure.message.contains("scripted panic of p"),
        "{failure:?}"
    );
    assert_eq!(report.done, ["q"], "p's host was freed for q");
    assert_eq!(report.skipped, ["r", "s"]);
    assert!(report.not_started.is_empty(), "{report:?}");
    let events = log.events.lock().unwrap().clone();
    assert_eq!(
        count(&events, |e| e == "taint p"),
        2,
        "tainted before it started and when it failed: {events:?}"
    );
    let emitted = emitted(&log);
    assert_eq!(
        count(&emitted, |e| e.starts_with("failed ")),
        1,
        "{emitted:?}"
    );
    assert_eq!(count(&emitted, |e| e == "skipped r (p)"), 1, "{emitted:?}");
    assert_eq!(count(&emitted, |e| e == "skipped s (p)"), 1, "{emitted:?}");
}

#[tokio::test]
async fn an_unrelated_create_does_not_wait_for_a_running_delete() {
    let plan = plan_against(&[desired("old", "ha", &[])], &[desired("new", "hb", &[])]);
    let (report, log) = run_script(
        &plan,
        Script {
            slow: &[("old", 300)],
            ..Script::default()
        },
    )
    .await;
    assert!(report.success(), "{report:?}");
    assert!(position(&log, "start new") < position(&log, "record old"));
    assert!(position(&log, "record new") < position(&log, "record old"));
}

#[tokio::test]
async fn what_a_delete_depended_on_is_created_or_changed_after_the_delete() {
    let state = [
        with_version(desired("used", "hc", &[]), 1),
        desired("gone", "ha", &["base", "used"]),
    ];
    let plan = plan_against(
        &state,
        &[
            desired("base", "hb", &[]),
            with_version(desired("used", "hc", &[]), 2),
            desired("free", "hd", &[]),
        ],
    );
    let actions: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("gone", Action::Delete),
            ("base", Action::Create),
            ("free", Action::Create),
            ("used", Action::Update),
        ]
    );
    let (report, log) = run_script(
        &plan,
        Script {
            slow: &[("gone", 100)],
            ..Script::default()
        },
    )
    .await;
    assert!(report.success(), "{report:?}");
    assert!(position(&log, "record gone") < position(&log, "start base"));
    assert!(position(&log, "record gone") < position(&log, "start used"));
    assert!(position(&log, "record free") < position(&log, "record gone"));
}

#[tokio::test]
async fn a_change_that_depends_on_a_destroyed_address_waits_for_the_destroy() {
    let plan = plan_against(
        &[desired("gone", "ha", &[])],
        &[desired("user", "hb", &["gone"]), desired("free", "hc", &[])],
    );
    let (report, log) = run(&plan, &[], 10).await;
    assert!(report.success(), "{report:?}");
    assert!(position(&log, "record gone") < position(&log, "start user"));
    assert!(position(&log, "start free") < position(&log, "record gone"));
}

#[tokio::test]
async fn the_report_partitions_the_plan_and_says_everything_once() {
    let plan = plan_against(
        &[
            desired("gone.a", "h5", &[]),
            desired("gone.b", "h6", &["gone.a"]),
        ],
        &[
            desired("a", "h1", &[]),
            desired("a2", "h2", &["a"]),
            desired("p", "h3", &[]),
            desired("p2", "h2", &["p"]),
            desired("x", "h4", &[]),
            desired("y", "h4", &["x"]),
            desired("z", "h7", &[]),
            desired("z2", "h8", &["z"]),
        ],
    );
    let (report, log) = run_script(
        &plan,
        Script {
            fail: &["a"],
            panic: &["p"],
            interrupt_at: Some("z"),
            ..Script::default()
        },
    )
    .await;
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let failed: Vec<String> = report.failed.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(sorted(&report.done), ["gone.b", "x", "z"], "{report:?}");
    assert_eq!(sorted(&failed), ["a", "p"], "{report:?}");
    assert_eq!(sorted(&report.skipped), ["a2", "p2"], "{report:?}");
    assert_eq!(
        sorted(&report.not_started),
        ["gone.a", "y", "z2"],
        "{report:?}"
    );
    let mut all: Vec<String> = [&report.done, &failed, &report.skipped, &report.not_started]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    all.sort();
    let mut addresses: Vec<String> = plan.changes.iter().map(|c| c.address.clone()).collect();
    addresses.sort();
    assert_eq!(all, addresses, "each address in exactly one list");
    let emitted = emitted(&log);
    for address in &addresses {
        let said = count(&emitted, |e| {
            ["done ", "failed ", "skipped "].iter().any(|k| {
                e.strip_prefix(k)
                    .is_some_and(|r| r.split([' ', ':']).next() == Some(address))
            })
        });
        let expected = usize::from(!report.not_started.contains(address));
        assert_eq!(said, expected, "{address}: {emitted:?}");
    }
}

#[tokio::test]
async fn a_cancelled_step_task_is_reported_under_its_step() {
    let mut tasks = schedule::Tasks::default();
    let stuck = tasks.spawn(7, std::future::pending());
    tasks.spawn(8, async { Ok(Attributes::new()) });
    stuck.abort();
    let mut ended = Vec::new();
    while let Some((i, outcome)) = tasks.join_next().await {
        ended.push((i, outcome.map(|_| ()).map_err(|f| f.message)));
    }
    ended.sort_by_key(|(i, _)| *i);
    assert_eq!(
        ended,
        [
            (
                7,
                Err("the step was cancelled before it finished".to_string())
            ),
            (8, Ok(())),
        ]
    );
}

#[test]
fn deletes_order_only_the_changes_they_are_related_to() {
    let plan = plan_against(
        &[
            desired("used", "h1", &[]),
            desired("gone.a", "h2", &["used"]),
            desired("gone.b", "h3", &["gone.a"]),
        ],
        &[
            with_version(desired("used", "h1", &[]), 2),
            desired("user", "h4", &["gone.b"]),
            desired("free", "h5", &[]),
        ],
    );
    let index = |a: &str| plan.changes.iter().position(|c| c.address == a).unwrap();
    let deps = schedule::dependencies(&plan.changes);
    let waits_for = |a: &str| -> Vec<&str> {
        deps[index(a)]
            .iter()
            .map(|&j| plan.changes[j].address.as_str())
            .collect()
    };
    assert_eq!(waits_for("gone.b"), Vec::<&str>::new());
    assert_eq!(
        waits_for("gone.a"),
        ["gone.b"],
        "dependents are destroyed first"
    );
    assert_eq!(
        waits_for("used"),
        ["gone.a"],
        "changed once its dependent is gone"
    );
    assert_eq!(
        waits_for("user"),
        ["gone.b"],
        "what it needs gone is gone first"
    );
    assert_eq!(
        waits_for("free"),
        Vec::<&str>::new(),
        "unrelated to any delete"
    );
}

#[test]
fn the_queue_starts_in_plan_order_one_per_host_and_skips_each_step_once() {
    let plan = plan_of(&[
        desired("a", "h1", &[]),
        desired("b", "h1", &[]),
        desired("c", "h2", &["a"]),
        desired("d", "h3", &["a", "c"]),
        desired("e", "h4", &[]),
    ]);
    let name = |i: usize| plan.changes[i].address.as_str();
    let mut queue = schedule::StepQueue::new(&plan.changes);
    let first = queue.next_startable(2).map(name);
    let second = queue.next_startable(2).map(name);
    assert_eq!((first, second), (Some("a"), Some("e")), "b waits for h1");
    assert_eq!(queue.next_startable(2), None, "parallelism 2");
    let a = plan.changes.iter().position(|c| c.address == "a").unwrap();
    let ready: Vec<&str> = queue.finish(a, true).into_iter().map(name).collect();
    assert_eq!(ready, ["c"], "d still waits for c");
    assert_eq!(queue.next_startable(3).map(name), Some("b"), "h1 is free");
    let c = queue.next_startable(3).unwrap();
    assert_eq!(name(c), "c");
    assert!(queue.finish(c, false).is_empty());
    let skipped: Vec<&str> = queue.skip_dependents(c).into_iter().map(name).collect();
    assert_eq!(skipped, ["d"]);
    assert!(queue.skip_dependents(c).is_empty(), "skipped once");
    assert_eq!(queue.not_started().count(), 0);
}

#[test]
fn an_ordered_step_starts_after_its_predecessor_ends_even_when_it_failed_or_was_skipped() {
    let plan = plan_of(&[
        desired("host", "h0", &[]),
        desired("seeder", "h1", &["host"]),
        desired("receiver", "h2", &[]),
        desired("next", "h3", &[]),
    ]);
    let index = |a: &str| plan.changes.iter().position(|c| c.address == a).unwrap();
    let name = |i: usize| plan.changes[i].address.as_str();
    let order = [
        (index("seeder"), index("receiver")),
        (index("receiver"), index("next")),
    ];
    let mut queue = schedule::StepQueue::ordered(&plan.changes, &order);
    assert_eq!(queue.next_startable(8).map(name), Some("host"));
    assert_eq!(
        queue.next_startable(8),
        None,
        "the receiver waits for its seeder"
    );
    // The seeder is skipped (its host step failed): the receiver may still go.
    assert!(queue.finish(index("host"), false).is_empty());
    assert_eq!(queue.skip_dependents(index("host")), [index("seeder")]);
    assert_eq!(queue.next_startable(8).map(name), Some("receiver"));
    assert_eq!(queue.next_startable(8), None);
    // A failed receiver releases what is ordered after it, without skipping it.
    let ready: Vec<&str> = queue
        .finish(index("receiver"), false)
        .into_iter()
        .map(name)
        .collect();
    assert_eq!(ready, ["next"]);
    assert!(queue.skip_dependents(index("receiver")).is_empty());
    assert_eq!(queue.next_startable(8).map(name), Some("next"));
}

#[test]
fn a_failed_command_shows_no_env_not_even_a_list_or_a_multi_line_value() {
    use sealer_providers::quote::{EnvItem, exports};
    let env = exports(&[
        (
            "Token".to_string(),
            EnvItem::Scalar("line1\nsecret-2".to_string()),
        ),
        (
            "Hosts".to_string(),
            EnvItem::List(vec!["a".into(), "secret-3".into()]),
        ),
    ]);
    let script = format!("set -e\n{env}cd /rootfs/scripts\nbash init.sh\n");
    let shown = super::runner::shown_command(&script, &env);
    assert_eq!(shown, "cd /rootfs/scripts; bash init.sh");
    assert!(!shown.contains("secret"), "{shown}");
}

#[tokio::test]
async fn a_failed_update_keeps_its_record_untainted() {
    let plan = plan_against(
        &[with_version(desired("used", "hc", &[]), 1)],
        &[with_version(desired("used", "hc", &[]), 2)],
    );
    assert_eq!(plan.changes[0].action, Action::Update);
    let (report, log) = run_script(
        &plan,
        Script {
            fail: &["used"],
            ..Script::default()
        },
    )
    .await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let events = log.events.lock().unwrap().clone();
    assert_eq!(count(&events, |e| e == "taint used"), 0, "{events:?}");
}
