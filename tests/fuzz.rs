//! Mutation fuzzing of everything that reads untrusted input: stored
//! records and envelopes, message payloads, schemas (compiled and used),
//! and the schema registry's loader. A million mutated inputs (set
//! `COURIER_FUZZ_CASES` to change it) go through the decoders; each must
//! return, never panic. An input that panics is saved under
//! `tests/fuzz-corpus/` and fails the test; every saved input is replayed
//! first on each run, as a regression test. The generator is seeded
//! (`COURIER_FUZZ_SEED`), so a run can be repeated exactly.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use contact_center_contracts::{ClassifiedTask, Interaction, InteractionV1};
use courier::contract::{self, Readable};
use courier::envelope::{parse_record, Envelope};
use courier_schema::{Registry, Validator};
use courier_suites::{interaction, schemas_dir, workspace_root};

/// Tokens worth splicing into JSON.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "-0",
    "1e999",
    "-1",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "{\"m\":",
    "\"payload\":",
    "\"version\":",
    "\"$ref\":\"#\"",
    "\"pattern\":\"(a*)*b\"",
    "\"type\":\"string\"",
    "\"format\":\"date-time\"",
    "[[[[[[[[",
];

/// Feeds one input to one reader of untrusted input.
type Target = fn(&[u8]);

fn envelope_target(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let record = parse_record(&text);
    for candidate in [text.as_ref(), record.envelope.as_str()] {
        if let Ok(envelope) = Envelope::from_json(candidate) {
            let _ = Interaction::decode(envelope.version, &envelope.payload);
            let _ = ClassifiedTask::decode(envelope.version, &envelope.payload);
            let _ = envelope.is_expired(chrono::Utc::now());
            let _ = envelope.to_json();
        }
    }
}

fn payload_target(input: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) {
        let _ = contract::validate::<InteractionV1>(&value);
        let _ = Interaction::decode(1, &value);
        let _ = ClassifiedTask::decode(2, &value);
        let _ = contract::idempotency_key::<InteractionV1>(&value);
    }
}

fn schema_target(input: &[u8]) {
    if let Ok(schema) = serde_json::from_slice::<serde_json::Value>(input) {
        if let Ok(validator) = Validator::compile(&schema) {
            let _ = validator.validate(&serde_json::to_value(interaction(1)).unwrap());
            let _ = validator.validate(&schema);
            let _ = validator.validate(&serde_json::json!([[[{"a": "2026-11-28T09:00:00Z"}]]]));
        }
    }
}

/// The registry loader on a copy of the contact-center domain whose
/// message file is replaced by the input.
fn registry_target(input: &[u8]) {
    let root = scratch_registry();
    std::fs::write(root.join("contact_center/interaction.v1.json"), input).unwrap();
    let _ = Registry::load_with_courier(&root, &schemas_dir().join("courier"));
}

/// A per-thread copy of `schemas/contact_center`, made once.
fn scratch_registry() -> PathBuf {
    thread_local! {
        static ROOT: PathBuf = {
            let root = std::env::temp_dir().join(format!(
                "courier-fuzz-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ))
            .join("schemas");
            let domain = root.join("contact_center");
            std::fs::create_dir_all(&domain).unwrap();
            for file in std::fs::read_dir(schemas_dir().join("contact_center")).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, domain.join(file.file_name().unwrap())).unwrap();
            }
            root
        };
    }
    ROOT.with(Clone::clone)
}

/// Mutates `seed` one to four times.
fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let at = rng.usize(..=out.len());
        match rng.u8(..7) {
            0 if !out.is_empty() => {
                let i = rng.usize(..out.len());
                out[i] ^= 1 << rng.u8(..8);
            }
            1 => out.insert(at, rng.u8(..)),
            2 => {
                let end = (at + rng.usize(..16)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 => {
                let token = TOKENS[rng.usize(..TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            5 if !out.is_empty() => {
                // Duplicate a slice: deep nesting, repeated keys.
                let start = rng.usize(..out.len());
                let end = (start + rng.usize(1..64)).min(out.len());
                let slice = out[start..end].to_vec();
                out.splice(at..at, slice);
            }
            _ => {
                let end = (at + rng.usize(..8)).min(out.len());
                for byte in &mut out[at..end] {
                    *byte = rng.u8(..);
                }
            }
        }
    }
    out
}

/// Valid inputs of one kind, to mutate.
type Seeds = Vec<Vec<u8>>;

/// Seeds: envelopes and records, payloads, schemas.
fn seeds() -> (Seeds, Seeds, Seeds) {
    let payload = serde_json::to_value(interaction(1)).unwrap();
    let envelope = serde_json::json!({
        "schema": "contact_center.interaction", "version": 1,
        "id": "5b0e6f0e-8f43-4f36-a4a2-0d5f8f1a9c11", "key": "k-1",
        "created_at": "2026-11-28T09:30:00.000Z", "expires_at": "2999-11-28T10:30:00.000Z",
        "attempt": 1, "producer": "fuzz",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "payload": payload
    })
    .to_string();
    let record = serde_json::json!({"m": envelope, "h": "[]", "r": 1}).to_string();
    let schemas: Vec<Vec<u8>> = std::fs::read_dir(schemas_dir().join("contact_center"))
        .unwrap()
        .map(|f| std::fs::read(f.unwrap().path()).unwrap())
        .collect();
    (
        vec![envelope.into_bytes(), record.into_bytes()],
        vec![payload.to_string().into_bytes()],
        schemas,
    )
}

fn corpus_dir() -> PathBuf {
    workspace_root().join("tests/fuzz-corpus")
}

/// Runs `target` on `input`; a panic is saved to the corpus and reported.
fn check(name: &str, target: Target, input: &[u8], save: bool) -> Option<String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| target(input)));
    let panic = outcome.err()?;
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    if save {
        let file = corpus_dir().join(format!("{name}-{:016x}.bin", fnv(input)));
        std::fs::create_dir_all(corpus_dir()).unwrap();
        std::fs::write(&file, input).unwrap();
        return Some(format!(
            "{name} panicked ({message}); input saved as {}",
            file.display()
        ));
    }
    Some(format!("{name} panicked ({message})"))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn target_of(name: &str) -> Option<Target> {
    match name {
        "envelope" => Some(envelope_target),
        "payload" => Some(payload_target),
        "schema" => Some(schema_target),
        "registry" => Some(registry_target),
        _ => None,
    }
}

#[test]
fn a_panicking_target_is_caught_and_reported() {
    fn fragile(input: &[u8]) {
        assert!(!input.starts_with(b"boom"), "fragile decoder met {input:?}");
    }
    assert_eq!(check("payload", fragile, b"fine", false), None);
    let report = check("payload", fragile, b"boom", false).unwrap();
    assert!(report.contains("fragile decoder met"), "{report}");
}

#[test]
fn the_corpus_of_past_crashes_still_decodes_without_a_panic() {
    let mut replayed = 0;
    for file in std::fs::read_dir(corpus_dir()).into_iter().flatten() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(target) = name.split('-').next().and_then(target_of) else {
            continue;
        };
        let input = std::fs::read(&path).unwrap();
        assert_eq!(
            check(&name, target, &input, false),
            None,
            "{}",
            path.display()
        );
        replayed += 1;
    }
    // The corpus holds at least the hand-made hard cases.
    assert!(
        replayed >= 3,
        "only {replayed} corpus inputs under {}",
        corpus_dir().display()
    );
}

#[test]
fn a_million_mutated_inputs_never_panic() {
    let cases: usize = std::env::var("COURIER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("COURIER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_ffee);
    let (envelopes, payloads, schemas) = seeds();
    // Shares of the cases; the registry loader reads files, so fewer.
    let plan: Vec<(&str, Target, Seeds, usize)> = vec![
        ("envelope", envelope_target, envelopes, cases / 2),
        ("payload", payload_target, payloads, cases * 3 / 10),
        ("schema", schema_target, schemas.clone(), cases / 5),
        ("registry", registry_target, schemas, (cases / 500).max(1)),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = plan
            .iter()
            .enumerate()
            .map(|(i, (name, target, seeds, count))| {
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed + i as u64);
                    let mut failures = Vec::new();
                    for _ in 0..*count {
                        let base = &seeds[rng.usize(..seeds.len())];
                        let input = mutate(&mut rng, base);
                        if let Some(failure) = check(name, *target, &input, true) {
                            failures.push(failure);
                            if failures.len() >= 5 {
                                break;
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let total: usize = plan.iter().map(|p| p.3).sum();
    let shares: Vec<String> = plan.iter().map(|p| format!("{} {}", p.0, p.3)).collect();
    println!("fuzzed {total} inputs (seed {seed}): {}", shares.join(", "));
    assert!(
        total >= cases.min(1_000_000) * 99 / 100,
        "ran {total} of {cases}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
