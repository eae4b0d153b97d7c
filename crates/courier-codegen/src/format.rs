//! Formatting of generated Rust: prettyplease turns typify's token stream
//! into readable code (doc attributes become `///`), then rustfmt gives it
//! exactly the layout `cargo fmt --check` expects.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// Parses `source` as a Rust file and formats it like `cargo fmt` would.
pub fn rust_file(source: &str, what: &str, workspace_root: &Path) -> Result<String, Error> {
    let error = |reason: String| Error::Format {
        what: what.to_string(),
        reason,
    };
    let file = syn::parse_file(source)
        .map_err(|e| error(format!("generated code does not parse: {e}")))?;
    let pretty = prettyplease::unparse(&file);
    rustfmt(&pretty, workspace_root).map_err(error)
}

/// Runs rustfmt over `source` from the workspace root, so the workspace's
/// own rustfmt settings apply.
fn rustfmt(source: &str, workspace_root: &Path) -> Result<String, String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(workspace_root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run {rustfmt} ({e}); install it with `rustup component add rustfmt`")
        })?;
    let mut stdin = child.stdin.take().ok_or("rustfmt stdin unavailable")?;
    let input = source.to_string();
    // Write from another thread so a large file cannot deadlock against
    // rustfmt filling its stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer thread failed".to_string())?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}
