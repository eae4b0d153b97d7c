//! `cargo xtask compat` end to end, in a throwaway git repository holding a
//! copy of the workspace's schemas: a compatible new version passes; a
//! required field without a default fails with its file, line, rule and
//! pointer, and a witness document that v2 accepts and v3 rejects; an
//! edited released version fails; a reviewed exception excuses a break;
//! exit codes and output formats.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier_schema::Validator;
use serde_json::{json, Value};

struct Repo {
    dir: PathBuf,
}

impl Repo {
    /// A git repository with `schemas/` copied from the workspace and
    /// committed, so every version in it counts as released.
    fn new() -> Repo {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "courier-compat-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        copy_dir(&workspace.join("schemas"), &dir.join("schemas"));
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("released");
        repo
    }

    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
            .args(args)
            .current_dir(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join("schemas/contact_center").join(relative)
    }

    fn read(&self, relative: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path(relative)).unwrap()).unwrap()
    }

    fn write(&self, relative: &str, value: &Value) {
        std::fs::write(
            self.path(relative),
            serde_json::to_string_pretty(value).unwrap() + "\n",
        )
        .unwrap();
    }

    /// Runs `cargo xtask compat` on the copy: (exit code, stdout, stderr).
    fn compat(&self, extra: &[&str]) -> (i32, String, String) {
        let schemas = self.dir.join("schemas");
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("compat")
            .arg("--schemas")
            .arg(&schemas)
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `classified_task.v3.json`: v2 with `change` applied.
    fn add_v3(&self, change: impl FnOnce(&mut Value)) {
        let mut v3 = self.read("classified_task.v2.json");
        v3["$id"] = json!("https://courier.dev/schemas/contact_center/classified_task.v3.json");
        change(&mut v3);
        self.write("classified_task.v3.json", &v3);
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_repository_schemas_are_compatible() {
    let repo = Repo::new();
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("0 error(s)"), "{err}");
}

#[test]
fn a_compatible_new_version_passes() {
    let repo = Repo::new();
    repo.add_v3(|v3| {
        v3["properties"]["channel_hint"] = json!({"description": "Where the answer should go.", "type": "string", "maxLength": 32});
    });
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_required_field_without_default_fails_with_file_line_rule_and_pointer() {
    let repo = Repo::new();
    repo.add_v3(|v3| {
        v3["properties"]["language"] = json!({"type": "string", "pattern": "^[a-z]{2}$"});
        v3["required"]
            .as_array_mut()
            .unwrap()
            .push(json!("language"));
    });
    let text = std::fs::read_to_string(repo.path("classified_task.v3.json")).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("\"required\""))
        .unwrap()
        + 1;
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 1, "{out}{err}");
    let expected = format!(
        "schemas/contact_center/classified_task.v3.json:{line}:3: error[REQUIRED_ADDED] /required: \
         the reader requires \"language\", which the writer may omit; give it a default or keep it optional \
         (backward on channel billing, v2 -> v3)"
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == expected)
        .unwrap_or_else(|| panic!("expected\n{expected}\nin\n{out}"));

    // The next line is the witness: a v2 message that v3 rejects, for
    // want of "language".
    let witness = lines[at + 1]
        .strip_prefix("  witness: ")
        .unwrap_or_else(|| panic!("no witness line after the violation:\n{out}"));
    let witness: Value = serde_json::from_str(witness).unwrap();
    let v2 = Validator::compile(&repo.read("classified_task.v2.json")).unwrap();
    let v3 = Validator::compile(&repo.read("classified_task.v3.json")).unwrap();
    assert!(v2.is_valid(&witness), "v2 rejects the witness {witness}");
    let errors = v3.validate(&witness).unwrap_err();
    assert!(
        errors.iter().all(|e| e.message.contains("\"language\"")),
        "{errors:?}"
    );

    // The same in JSON and as GitHub annotations.
    let (_, json_out, _) = repo.compat(&["--format", "json"]);
    let report: Value = serde_json::from_str(&json_out).unwrap();
    let entry = report
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "REQUIRED_ADDED" && v["line"] == line)
        .unwrap_or_else(|| panic!("{json_out}"));
    assert_eq!(entry["witness"], witness);
    assert!(entry.get("witness_note").is_none(), "{entry}");
    let (_, github, _) = repo.compat(&["--format", "github"]);
    assert!(github.starts_with(&format!(
        "::error file=schemas/contact_center/classified_task.v3.json,line={line},col=3,title=REQUIRED_ADDED::/required: "
    )), "{github}");
    let annotation = github.lines().next().unwrap();
    assert!(
        annotation.ends_with(&format!("%0Awitness: {witness}")),
        "{annotation}"
    );

    // A reviewed exception excuses it.
    repo.write(
        "compat-exceptions.json",
        &json!({"exceptions": [{
            "message": "classified_task", "version": 3, "rule": "REQUIRED_ADDED", "pointer": "/required",
            "reason": "every producer sets language since the October release"
        }]}),
    );
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn editing_a_released_version_fails() {
    let repo = Repo::new();
    let mut v1 = repo.read("classified_task.v1.json");
    v1["properties"]["summary"]["maxLength"] = json!(600);
    repo.write("classified_task.v1.json", &v1);
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(
        "schemas/contact_center/classified_task.v1.json:1:1: error[RELEASED_VERSION_CHANGED] /: \
         a released version never changes; revert this file and add the change as a new version file"
    ), "{out}");

    // Committing the edit does not make it right: the base is the commit before.
    repo.commit("edit a released version");
    let (code, out, _) = repo.compat(&[]);
    assert_eq!(code, 1, "{out}");

    std::fs::remove_file(repo.path("human_escalation.v1.json")).unwrap();
    let (_, out, _) = repo.compat(&["--base", "HEAD~1"]);
    assert!(out.contains("error[RELEASED_VERSION_DELETED]"), "{out}");
}

#[test]
fn generated_code_breaks_warn_or_fail_as_asked() {
    let repo = Repo::new();
    repo.add_v3(|v3| {
        // Optional → required with a default keeps JSON compatible, but
        // `Option<f64>` becomes `f64` in Rust.
        v3["properties"]["sentiment"]["default"] = json!(0);
        v3["required"]
            .as_array_mut()
            .unwrap()
            .push(json!("sentiment"));
    });
    let (code, out, err) = repo.compat(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning[CODEGEN_FIELD_OPTIONALITY_CHANGED] /properties/sentiment: field `sentiment` changes from Option<T> to T"), "{out}");
    let (code, out, _) = repo.compat(&["--codegen", "fail"]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn usage_errors_exit_with_2() {
    let repo = Repo::new();
    assert_eq!(repo.compat(&["--format", "yaml"]).0, 2);
    assert_eq!(repo.compat(&["--base"]).0, 2);
    assert_eq!(repo.compat(&["--base", "no-such-revision"]).0, 2);
}
