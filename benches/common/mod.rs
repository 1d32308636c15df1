//! What both benchmarks need: the release binary, and an applied state without hosts.

use std::path::{Path, PathBuf};

/// The `sealer` binary `cargo build --release` made, next to the bench executable's
/// directory (target/release/deps/..).
pub fn sealer_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("sealer");
    assert!(
        bin.is_file(),
        "build the binary first: cargo build --release ({})",
        bin.display()
    );
    bin
}

/// Records every resource of the saved plan `plan_file` as applied in `state_db`, under
/// `cluster`, through the state API: the state of an applied cluster whose hosts need not
/// exist (a no-op must not contact them).
pub fn seed_applied_state(state_db: &Path, cluster: &str, plan_file: &Path) {
    let saved = sealer::plan::saved::SavedPlan::read(plan_file).unwrap();
    let store = sealer::state::StateStore::open_or_create(state_db).unwrap();
    store.create_cluster(cluster).unwrap();
    for c in &saved.plan.changes {
        let d = c.desired.as_ref().unwrap();
        let computed = d
            .computed
            .iter()
            .map(|k| (k.clone(), serde_json::json!("x")))
            .collect();
        store
            .commit(cluster, &sealer::resource::Recorded::applied(d, computed))
            .unwrap();
    }
}
