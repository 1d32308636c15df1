//! Plans: `sealer plan`, `show`, `graph`, `validate`.

use crate::diag::Result;
use crate::plan::saved::SavedPlan;
use std::path::Path;

/// Reads a saved plan for `sealer show`.
pub fn show_plan(path: &Path) -> Result<SavedPlan> {
    SavedPlan::read(path)
}
