//! Micro-benchmarks of what courier does to every message outside Redis:
//! payload validation, envelope encoding on publish, and decoding with
//! validation on delivery. `cargo bench -p courier-bench --bench codec`.

use contact_center_contracts::{Interaction, InteractionV1};
use courier::contract::{self, Readable};
use courier::Envelope;
use divan::black_box;

fn main() {
    divan::main();
}

fn message() -> InteractionV1 {
    courier_bench::scenarios::interactions(1, 7).remove(0)
}

fn envelope_text() -> String {
    let payload = contract::encode(&message()).unwrap();
    let envelope = serde_json::json!({
        "schema": "contact_center.interaction", "version": 1,
        "id": "5b0e6f0e-8f43-4f36-a4a2-0d5f8f1a9c11", "key": "k",
        "created_at": "2026-11-28T09:30:00.000Z", "expires_at": "2099-11-28T10:30:00.000Z",
        "attempt": 1, "producer": "bench",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "payload": payload
    });
    envelope.to_string()
}

/// The payload against its schema, already a JSON value.
#[divan::bench]
fn validate_payload(bencher: divan::Bencher<'_, '_>) {
    let payload = serde_json::to_value(message()).unwrap();
    bencher.bench(|| contract::validate::<InteractionV1>(black_box(&payload)).unwrap());
}

/// Typed message → validated JSON value (publish).
#[divan::bench]
fn encode_payload(bencher: divan::Bencher<'_, '_>) {
    let message = message();
    bencher.bench(|| contract::encode(black_box(&message)).unwrap());
}

/// Envelope → text (publish).
#[divan::bench]
fn envelope_to_json(bencher: divan::Bencher<'_, '_>) {
    let envelope = Envelope::from_json(&envelope_text()).unwrap();
    bencher.bench(|| black_box(&envelope).to_json().unwrap());
}

/// Envelope → text without copying the payload (what publishing does).
#[divan::bench]
fn envelope_into_json(bencher: divan::Bencher<'_, '_>) {
    let envelope = Envelope::from_json(&envelope_text()).unwrap();
    bencher
        .with_inputs(|| envelope.clone())
        .bench_values(|envelope| envelope.into_json().unwrap());
}

/// The baseline: serde alone writes the envelope, no validation.
#[divan::bench]
fn serde_only_encode(bencher: divan::Bencher<'_, '_>) {
    let envelope = Envelope::from_json(&envelope_text()).unwrap();
    bencher.bench(|| serde_json::to_string(black_box(&envelope)).unwrap());
}

/// Text → envelope (delivery).
#[divan::bench]
fn envelope_from_json(bencher: divan::Bencher<'_, '_>) {
    let text = envelope_text();
    bencher.bench(|| Envelope::from_json(black_box(&text)).unwrap());
}

/// Text → envelope → validated typed message (delivery, all of it).
#[divan::bench]
fn decode_delivery(bencher: divan::Bencher<'_, '_>) {
    let text = envelope_text();
    bencher.bench(|| {
        let envelope = Envelope::from_json(black_box(&text)).unwrap();
        Interaction::decode(envelope.version, &envelope.payload).unwrap()
    });
}

/// The baseline: text → typed message with serde alone, no validation.
#[divan::bench]
fn serde_only_decode(bencher: divan::Bencher<'_, '_>) {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[allow(dead_code)]
        payload: InteractionV1,
    }
    let text = envelope_text();
    bencher.bench(|| serde_json::from_str::<Raw>(black_box(&text)).unwrap());
}
