//! `cargo xtask compat`: the CI review of a schema change, a thin shell
//! over `courier_schema::review` plus the git plumbing that finds the
//! released version files at the base revision. Each compatibility break
//! is printed with its witness, a message the writer's version accepts and
//! the reader's rejects, which the review verified with the validator.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use courier_schema::review::{self, Format, Severity};

/// Parsed `compat` arguments.
#[derive(Debug)]
pub struct Options {
    /// The revision whose version files are released; default: the merge
    /// base with `main`, or the previous commit when on `main`.
    pub base: Option<String>,
    /// Report format.
    pub format: Format,
    /// Whether generated-code breaks fail the check.
    pub codegen_errors: bool,
    /// The schemas folder.
    pub schemas: Option<PathBuf>,
}

/// Parses `--base REV`, `--format text|json|github`, `--codegen warn|fail`,
/// `--schemas DIR`.
pub fn parse(args: &[&str]) -> Result<Options> {
    let mut options = Options {
        base: None,
        format: Format::Text,
        codegen_errors: false,
        schemas: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(|v| v.to_string())
                .with_context(|| format!("{name} needs a value"))
        };
        match *arg {
            "--base" => options.base = Some(value("--base")?),
            "--format" => {
                options.format = match value("--format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "github" => Format::Github,
                    other => bail!("unknown format {other:?}; use text, json or github"),
                }
            }
            "--codegen" => {
                options.codegen_errors = match value("--codegen")?.as_str() {
                    "warn" => false,
                    "fail" => true,
                    other => bail!("unknown --codegen {other:?}; use warn or fail"),
                }
            }
            "--schemas" => options.schemas = Some(PathBuf::from(value("--schemas")?)),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(options)
}

/// Runs the review; exit 0 when compatible, 1 when not, 2 when it cannot
/// check (bad arguments, unreadable schemas, git errors).
pub fn run(root: &Path, options: &Options) -> ExitCode {
    match review_all(root, options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn review_all(root: &Path, options: &Options) -> Result<bool> {
    let schemas = options
        .schemas
        .clone()
        .unwrap_or_else(|| root.join("schemas"));
    let schemas = schemas
        .canonicalize()
        .with_context(|| format!("cannot read {}", schemas.display()))?;
    let repo = git_text(&schemas, &["rev-parse", "--show-toplevel"])?
        .map(PathBuf::from)
        .with_context(|| format!("{} is not in a git repository", schemas.display()))?;
    let repo = repo.canonicalize().unwrap_or(repo);

    // Immutability first: it needs no loadable registry, and a deleted
    // released file often leaves the registry unloadable.
    let base = match &options.base {
        Some(base) => Some(base.clone()),
        None => default_base(&repo)?,
    };
    let mut immutability = Vec::new();
    match &base {
        Some(base) => {
            let prefix = schemas.strip_prefix(&repo).unwrap_or(Path::new("schemas"));
            let released = released_files(&repo, base, prefix)?;
            immutability = review::immutability(&repo, &released);
        }
        None => eprintln!("note: no base revision; released-version immutability not checked"),
    }

    let Ok(registry) = crate::load(&schemas) else {
        print!("{}", review::render(&immutability, options.format));
        if immutability.is_empty() {
            bail!("the schemas have problems; fix them first (cargo xtask lint)");
        }
        return Ok(false);
    };
    let mut review = review::review(&registry, options.codegen_errors);
    review.violations.extend(immutability);
    // Report paths relative to the repository, as editors and CI expect.
    for violation in &mut review.violations {
        if let Ok(relative) = violation.file.strip_prefix(&repo) {
            violation.file = relative.to_path_buf();
        }
    }
    review.violations.sort();

    print!("{}", review::render(&review.violations, options.format));
    for exception in &review.unused_exceptions {
        eprintln!(
            "warning: exception {} {} v{} {} matched nothing; remove it",
            exception.rule, exception.message, exception.version, exception.pointer
        );
    }
    let errors = review
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .count();
    let warnings = review.violations.len() - errors;
    eprintln!(
        "compat: {} version pair(s) checked, {errors} error(s), {warnings} warning(s){}",
        review.pairs_checked,
        base.map(|b| format!(", released versions as of {b}"))
            .unwrap_or_default()
    );
    Ok(errors == 0)
}

fn git(root: &Path, args: &[&str]) -> Result<Option<Vec<u8>>> {
    // Read-only queries; `safe.directory` keeps them working when CI runs
    // as a different user than the one that cloned the repository.
    let output = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(root)
        .output()
        .context("running git")?;
    Ok(output.status.success().then_some(output.stdout))
}

fn git_text(root: &Path, args: &[&str]) -> Result<Option<String>> {
    Ok(git(root, args)?.map(|out| String::from_utf8_lossy(&out).trim().to_string()))
}

/// The merge base with `origin/main` or `main`; on `main` itself (the merge
/// base is HEAD), the previous commit, or HEAD in a one-commit repository
/// (then only uncommitted edits are caught).
fn default_base(root: &Path) -> Result<Option<String>> {
    let head =
        git_text(root, &["rev-parse", "HEAD"])?.context("not a git repository with commits")?;
    for main in ["origin/main", "main"] {
        if let Some(base) = git_text(root, &["merge-base", "HEAD", main])? {
            if base != head {
                return Ok(Some(base));
            }
            break;
        }
    }
    match git_text(root, &["rev-parse", "--verify", "--quiet", "HEAD~1"])? {
        Some(previous) => Ok(Some(previous)),
        None => Ok(Some(head)),
    }
}

/// Every message version file under `prefix` (the schemas folder, relative
/// to the repository) at `base`, with its bytes.
fn released_files(root: &Path, base: &str, prefix: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let prefix = prefix.to_string_lossy();
    let listing = git_text(root, &["ls-tree", "-r", "--name-only", base, "--", &prefix])?
        .with_context(|| format!("cannot list {prefix} at {base}"))?;
    let mut files = Vec::new();
    for path in listing.lines().filter(|p| p.ends_with(".json")) {
        let file_name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if courier_schema::registry::parse_version_file_name(file_name).is_none() {
            continue;
        }
        let bytes = git(root, &["show", &format!("{base}:{path}")])?
            .with_context(|| format!("cannot read {path} at {base}"))?;
        files.push((PathBuf::from(path), bytes));
    }
    Ok(files)
}
