//! Project automation, the cargo-xtask way: `cargo xtask <task>`.
//!
//! Each task is a thin shell over a library crate that holds its logic.
//!
//! - `cargo xtask codegen`: regenerate everything derived from `schemas/`:
//!   `crates/contracts/*` and the contract catalog in `docs/contracts/`.
//! - `cargo xtask codegen --check`: fail, naming each file, when anything
//!   committed differs from what the schemas generate.
//! - `cargo xtask lint [DIR]`: check a schemas folder (default `schemas/`)
//!   and print every problem as `file:pointer: message`.
//! - `cargo xtask docs [--check]`: the contract catalog alone.
//! - `cargo xtask compat`: refuse schema changes that break a reader or a
//!   writer of another version, each with a witness message, or edit a
//!   released version (see [`compat`]).
//! - `cargo xtask bench [ARGS]`: courier against two hand-written Redis
//!   baselines, in release mode (the `courier-bench` crate; `--help` lists
//!   its options); `--peers` adds BullMQ when `node` is on PATH.
//! - `cargo xtask soak [--minutes N] [ARGS]`: the contact-center pipeline
//!   with random faults, then checks for losses and leaks (the
//!   `contact-center-soak` binary; `--help` lists its options).

mod compat;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use courier_schema::Registry;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  codegen           regenerate everything derived from schemas/: crates/contracts/<domain>
                    and the contract catalog in docs/contracts/
  codegen --check   fail when any committed generated file is stale
  docs              regenerate the contract catalog alone
  docs --check      fail when the committed catalog is stale
  lint [DIR]        check a schemas folder (default schemas/), print every problem
  compat [--base REV] [--format text|json|github] [--codegen warn|fail] [--schemas DIR]
                    check every message version pair in its channels' compatibility
                    modes (each break shown with a witness: a message the writer's
                    version accepts and the reader's rejects), generated-code breaks,
                    and that released versions are unchanged since REV;
                    exit 0 compatible, 1 not, 2 cannot check
  bench [--rounds N] [--quick] [--only NAME] [--json FILE] [--redis URL] [--peers]
                    benchmark courier against two hand-written Redis queues (same-work:
                    courier's Redis work by hand; pipelined: the fastest plain stream
                    queue), on an ephemeral redis-server; prints medians, ratios and
                    client CPU per message. --peers also runs a pinned BullMQ from npm
                    when node is on PATH (not for CI)
  soak [--minutes N] [--release] [--seed S] [--json FILE] [--interactions N]
                    run the contact-center pipeline day after day for N minutes (default 2)
                    with random faults (consumer kills, Redis restarts, network cuts), then
                    check: lost 0, resolved twice 0, no key without TTL, no leaked lease,
                    consumer groups bounded, Redis memory back to its start once TTLs pass,
                    resident memory growth under 10 %, file descriptors flat";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        ["docs"] => docs(false),
        ["docs", "--check"] => docs(true),
        ["lint"] => lint(&workspace_root().join("schemas")),
        ["lint", dir] => lint(Path::new(dir)),
        ["compat", rest @ ..] => match compat::parse(rest) {
            Ok(options) => Ok(compat::run(&workspace_root(), &options)),
            Err(e) => {
                eprintln!("error: {e:#}\n\n{USAGE}");
                Ok(ExitCode::from(2))
            }
        },
        ["bench", rest @ ..] => bench(rest),
        ["soak", rest @ ..] => soak(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("unknown arguments {args:?}\n\n{USAGE}"),
    }
}

/// Runs the benchmark harness in release mode, passing the arguments on.
fn bench(args: &[&str]) -> Result<ExitCode> {
    cargo_run(&["--release", "-p", "courier-bench"], args)
}

/// Runs the soak binary, in release mode with `--release`, passing the
/// other arguments on.
fn soak(args: &[&str]) -> Result<ExitCode> {
    let release = args.contains(&"--release");
    let rest: Vec<&str> = args.iter().copied().filter(|a| *a != "--release").collect();
    let mut target = vec!["-p", "contact-center", "--bin", "contact-center-soak"];
    if release {
        target.insert(0, "--release");
    }
    cargo_run(&target, &rest)
}

/// `cargo run --quiet <target> -- <args>` in the workspace root; fails when
/// the program does.
fn cargo_run(target: &[&str], args: &[&str]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "--quiet"])
        .args(target)
        .arg("--")
        .args(args)
        .status()
        .context("cannot run cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads a schemas folder; a folder without its own `courier/` (a fixture)
/// is checked against the workspace's envelope and meta-schema.
pub(crate) fn load(schemas: &Path) -> Result<Registry, ExitCode> {
    let own = schemas.join("courier");
    let courier = if own.is_dir() {
        own
    } else {
        workspace_root().join("schemas/courier")
    };
    Registry::load_with_courier(schemas, &courier).map_err(|problems| {
        for problem in problems.iter() {
            eprintln!("{problem}");
        }
        eprintln!(
            "error: {} problem(s) in {}",
            problems.len(),
            schemas.display()
        );
        ExitCode::FAILURE
    })
}

fn lint(schemas: &Path) -> Result<ExitCode> {
    Ok(match load(schemas) {
        Ok(registry) => {
            let messages: usize = registry.domains.values().map(|d| d.messages.len()).sum();
            let channels: usize = registry.domains.values().map(|d| d.channels.len()).sum();
            println!(
                "{}: {} domain(s), {messages} message(s), {channels} channel(s), no problems",
                schemas.display(),
                registry.domains.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

fn codegen(check: bool) -> Result<ExitCode> {
    let root = workspace_root();
    let registry = match load(&root.join("schemas")) {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let files = courier_codegen::generate_all(&registry, &root)
        .context("generating contract crates and docs")?;
    sync(&root, &files, check, "cargo xtask codegen")
}

fn docs(check: bool) -> Result<ExitCode> {
    let root = workspace_root();
    let registry = match load(&root.join("schemas")) {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let files = courier_codegen::docs::generate(&registry);
    sync(&root, &files, check, "cargo xtask docs")
}

/// Compares (`check`) or writes generated files, naming each that differs.
fn sync(
    root: &Path,
    files: &[courier_codegen::GeneratedFile],
    check: bool,
    fix: &str,
) -> Result<ExitCode> {
    if check {
        let drift = courier_codegen::check(files, root)?;
        if drift.is_empty() {
            println!("generated files are up to date ({} files)", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for d in &drift {
            eprintln!("{d}");
        }
        eprintln!("error: generated files are stale; run `{fix}` and commit the result");
        return Ok(ExitCode::FAILURE);
    }
    let changed = courier_codegen::write(files, root)?;
    for d in &changed {
        println!("updated {d}");
    }
    println!("{} generated files, {} changed", files.len(), changed.len());
    Ok(ExitCode::SUCCESS)
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
