//! The generator over fixture schemas: snapshots of its output (insta), a
//! compile check of that output (trybuild), its report on a broken domain,
//! and the freshness of the committed contract crates.

use std::path::{Path, PathBuf};

use courier_schema::Registry;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workspace_root() -> PathBuf {
    manifest_dir().join("../..").canonicalize().unwrap()
}

fn load_fixture(name: &str) -> Result<Registry, courier_schema::Problems> {
    let root = Path::new("tests/fixtures").join(name);
    let courier = workspace_root().join("schemas/courier");
    Registry::load_with_courier(&root, &courier)
}

#[test]
fn fixture_output_matches_snapshots_and_compiles() {
    let registry = load_fixture("valid").unwrap_or_else(|problems| panic!("{problems}"));
    assert_eq!(
        registry.domains.keys().collect::<Vec<_>>(),
        ["formats", "nested", "shared", "variants"]
    );
    let files = courier_codegen::generate(&registry, &workspace_root()).unwrap();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codegen-fixtures");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cases = trybuild::TestCases::new();
    for file in &files {
        let domain = file
            .path
            .components()
            .nth(2)
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let kind = file
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "_");
        insta::assert_snapshot!(format!("{domain}_{kind}"), file.contents);
        if file.path.ends_with("src/lib.rs") {
            // The crate root becomes a binary's root: `crate::` paths in the
            // generated code still resolve.
            let program = out_dir.join(format!("{domain}.rs"));
            let main = if domain == "shared" {
                SHARED_MAIN
            } else {
                "fn main() {}"
            };
            std::fs::write(&program, format!("{}\n{main}\n", file.contents)).unwrap();
            cases.pass(program);
        }
    }
}

/// Runs against the `shared` fixture's crate: one type where versions and
/// messages repeat a schema, `From` where a later version adds values, and
/// checked constructors whose errors name the field and the rule.
const SHARED_MAIN: &str = r#"
fn main() {
    // A domain with a message named `shared` keeps its shared types in
    // `shared_types`; the crate root re-exports them.
    // `Size` is one type in ticket v1, ticket v2 and note v1 (there an
    // inline property of the same schema); `Code` likewise.
    let size: crate::Size = crate::ticket::v1::Size::Small;
    let _: crate::shared_types::Size = crate::ticket::v2::Size::Large;
    let code = crate::Code::new("AB-12").unwrap();
    // `Color` is shared by v2 and v3, the first schema two files repeat;
    // v1's narrower `Color` is its own and converts into it.
    let old = crate::TicketV1 {
        id: ::uuid::Uuid::nil(),
        code: code.clone(),
        color: crate::ticket::v1::Color::Green,
        size,
    };
    let new = crate::TicketV2 {
        id: old.id,
        code: old.code.clone(),
        color: old.color.into(),
        size: old.size,
    };
    assert_eq!(new.color, crate::Color::Green);
    // v3 adds a size: its `Size` is its own, and the shared one converts
    // into it; the shared `Size` did not change.
    let newest = crate::TicketV3 {
        id: new.id,
        code: new.code.clone(),
        color: new.color,
        size: new.size.into(),
        label: Some("checked".to_string().try_into().unwrap()),
        text: crate::ticket::v3::TicketV3Text::new("a note").unwrap(),
    };
    assert_eq!(newest.size, crate::ticket::v3::Size::Small);
    // A titled property keeps typify's name for it.
    let _: Option<crate::ticket::v3::TicketLabel> = newest.label;
    let note = crate::NoteV1 {
        id: new.id,
        code: new.code,
        size: new.size,
        text: crate::note::v1::NoteV1Text::new("checked").unwrap(),
    };
    assert_eq!(note.size, crate::Size::Small);
    let error = crate::Code::new("ab").unwrap_err();
    assert_eq!(error.field, "code");
    assert_eq!(
        error.to_string(),
        "field `code`: doesn't match pattern \"^[A-Z]{2}-[0-9]+$\""
    );
    let error = crate::note::v1::NoteV1Text::new("").unwrap_err();
    assert_eq!(error.to_string(), "field `text`: shorter than 1 characters");
    // A channel named `message` gets a marker that does not clash with
    // its module's `Message` alias.
    let _ = crate::channels::message::MessageChannel;
}
"#;

#[test]
fn broken_domain_reports_every_problem_and_generates_nothing() {
    let problems = load_fixture("broken").unwrap_err();
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("broken_problems", lines.join("\n"));
    assert!(lines.len() >= 6, "{lines:#?}");
}

#[test]
fn generated_code_is_fresh() {
    let root = workspace_root();
    let registry =
        Registry::load(&root.join("schemas")).unwrap_or_else(|problems| panic!("{problems}"));
    let files = courier_codegen::generate(&registry, &root).unwrap();
    let drift = courier_codegen::check(&files, &root).unwrap();
    let report: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        report.is_empty(),
        "generated code is stale; run `cargo xtask codegen`:\n{}",
        report.join("\n")
    );
}

#[test]
fn one_call_generates_crates_and_docs_for_every_domain() {
    let registry = load_fixture("valid").unwrap_or_else(|problems| panic!("{problems}"));
    let files = courier_codegen::generate_all(&registry, &workspace_root()).unwrap();
    for domain in registry.domains.keys() {
        for expected in [
            format!("crates/contracts/{domain}/src/lib.rs"),
            format!("docs/contracts/{domain}.md"),
        ] {
            assert!(
                files.iter().any(|f| f.path == Path::new(&expected)),
                "{expected} is not generated"
            );
        }
    }
}

#[test]
fn contract_docs_are_fresh() {
    let root = workspace_root();
    let registry =
        Registry::load(&root.join("schemas")).unwrap_or_else(|problems| panic!("{problems}"));
    let files = courier_codegen::docs::generate(&registry);
    let drift = courier_codegen::check(&files, &root).unwrap();
    let report: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        report.is_empty(),
        "docs/contracts is stale; run `cargo xtask docs`:\n{}",
        report.join("\n")
    );
    let page = &files
        .iter()
        .find(|f| f.path.ends_with("contact_center.md"))
        .unwrap()
        .contents;
    for expected in [
        "role_telephony -->|interaction| channel_intake",
        "| `sentiment` | number | no | ≥ -1; ≤ 1 |",
        "- added optional `sentiment`",
        "- v2 readers accept v1 messages (backward): yes",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} missing from the catalog"
        );
    }
}
