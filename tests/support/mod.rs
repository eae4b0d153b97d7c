//! Shared fixtures for the workspace-wide suites in `tests/`.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `schemas/` folder.
pub fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas")
}
