//! The generated contact-center contracts: every message type round-trips
//! through serde, and payloads that break a schema are rejected with the
//! pointer of the offending field, by the generated types where they can
//! and by the runtime's validator where they cannot (numeric bounds).

use contact_center_contracts::{
    channels, ClassifiedTask, ClassifiedTaskV1, ClassifiedTaskV2, EvaluationResult,
    EvaluationResultV1, FeedbackEvent, FeedbackEventV1, HumanEscalation, HumanEscalationV1,
    Interaction, InteractionV1,
};
use courier::contract::{decode, encode, idempotency_key};
use courier::{Contract, Error, Readable};
use serde_json::{json, Value};

fn interaction() -> Value {
    json!({
        "interaction_id": "7d9f8a4e-1c2b-4d3e-9f00-0a1b2c3d4e5f",
        "customer_id": "C0012345",
        "region": "emea",
        "medium": "chat",
        "language": "de",
        "text": "My invoice is wrong.",
        "received_at": "2026-11-28T09:15:00Z"
    })
}

fn classified_task_v1() -> Value {
    json!({
        "task_id": "0b6c1f8e-6f0a-4d5c-8b7e-111111111111",
        "interaction_id": "7d9f8a4e-1c2b-4d3e-9f00-0a1b2c3d4e5f",
        "customer_id": "C0012345",
        "region": "emea",
        "intent": "billing",
        "confidence": 0.92,
        "summary": "Customer disputes the November invoice."
    })
}

fn classified_task_v2() -> Value {
    let mut task = classified_task_v1();
    task["sentiment"] = json!(-0.4);
    task
}

fn evaluation_result() -> Value {
    json!({
        "task_id": "0b6c1f8e-6f0a-4d5c-8b7e-111111111111",
        "specialist": "billing-3",
        "intent": "billing",
        "resolution": "Credited the duplicate charge.",
        "handling_ms": 240000,
        "tags": ["refund", "invoice"]
    })
}

fn human_escalation() -> Value {
    json!({
        "escalation_id": "5a5a5a5a-0000-4000-8000-000000000001",
        "task_id": "0b6c1f8e-6f0a-4d5c-8b7e-111111111111",
        "reason": "low_score",
        "priority": 7,
        "sla_deadline": "2026-11-28T09:30:00Z",
        "evaluation": { "score": 0.31, "notes": "Resolution does not address the charge." }
    })
}

fn feedback_event() -> Value {
    json!({
        "event_id": "9e9e9e9e-0000-4000-8000-000000000002",
        "task_id": "0b6c1f8e-6f0a-4d5c-8b7e-111111111111",
        "predicted_intent": "billing",
        "actual_intent": "retention",
        "outcome": "corrected",
        "source": "human"
    })
}

/// Decodes `payload` as `T` through the runtime, encodes it back, and
/// expects the same JSON.
fn round_trip<T: Contract + std::fmt::Debug + PartialEq>(payload: Value) -> T {
    let message: T = decode(&payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(encode(&message).unwrap(), payload, "{}", T::SCHEMA);
    let direct: T = serde_json::from_value(payload).unwrap();
    assert_eq!(direct, message);
    message
}

#[test]
fn every_message_version_round_trips() {
    round_trip::<InteractionV1>(interaction());
    round_trip::<ClassifiedTaskV1>(classified_task_v1());
    let v2 = round_trip::<ClassifiedTaskV2>(classified_task_v2());
    assert_eq!(v2.sentiment, Some(-0.4));
    round_trip::<EvaluationResultV1>(evaluation_result());
    round_trip::<HumanEscalationV1>(human_escalation());
    round_trip::<FeedbackEventV1>(feedback_event());
}

#[test]
fn readers_decode_every_released_version() {
    assert_eq!(ClassifiedTask::VERSIONS, [1, 2]);
    assert!(matches!(
        ClassifiedTask::decode(1, &classified_task_v1()).unwrap(),
        ClassifiedTask::V1(_)
    ));
    assert!(matches!(
        ClassifiedTask::decode(2, &classified_task_v2()).unwrap(),
        ClassifiedTask::V2(_)
    ));
    // v2 only added an optional field, so a v1 payload is also a valid v2.
    assert!(ClassifiedTask::decode(2, &classified_task_v1()).is_ok());
    let err = ClassifiedTask::decode(3, &classified_task_v2()).unwrap_err();
    assert!(
        matches!(err, Error::VersionUnsupported { version: 3, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "contact_center.classified_task v3 is not readable here; this consumer reads versions [1, 2]"
    );
    assert!(Interaction::decode(1, &interaction()).is_ok());
    assert!(EvaluationResult::decode(1, &evaluation_result()).is_ok());
    assert!(HumanEscalation::decode(1, &human_escalation()).is_ok());
    assert!(FeedbackEvent::decode(1, &feedback_event()).is_ok());
}

/// Expects `decode` to refuse `payload` with exactly `expected` violations,
/// and reports whether the generated type alone (serde) refuses it too.
fn check_rejected<T: Contract>(payload: Value, expected: &[&str]) -> bool {
    match decode::<T>(&payload) {
        Err(Error::InvalidPayload { errors, .. }) => {
            let actual: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(actual, expected);
        }
        other => panic!("expected an invalid payload, got {:?}", other.map(|_| ())),
    }
    serde_json::from_value::<T>(payload).is_err()
}

#[test]
fn payloads_that_break_the_schema_are_rejected() {
    let mut missing = interaction();
    missing.as_object_mut().unwrap().remove("region");
    assert!(check_rejected::<InteractionV1>(
        missing,
        &["/: missing required property \"region\""]
    ));

    let mut outside_enum = classified_task_v2();
    outside_enum["intent"] = json!("sales");
    assert!(check_rejected::<ClassifiedTaskV2>(
        outside_enum,
        &["/intent: \"sales\" is not one of \"billing\", \"technical_support\", \"retention\""]
    ));

    let mut too_long = classified_task_v2();
    too_long["summary"] = json!("x".repeat(501));
    assert!(check_rejected::<ClassifiedTaskV2>(
        too_long,
        &["/summary: string of 501 characters is longer than maxLength 500"]
    ));

    let mut unknown_field = feedback_event();
    unknown_field["mood"] = json!("sunny");
    assert!(check_rejected::<FeedbackEventV1>(
        unknown_field,
        &["/mood: property \"mood\" is not allowed (additionalProperties is false)"]
    ));
}

#[test]
fn numeric_bounds_are_enforced_by_the_runtime_not_the_types() {
    // typify does not check numeric bounds: the generated types accept these
    // values, and the runtime's schema validation refuses them on both sides.
    let mut over = classified_task_v2();
    over["confidence"] = json!(1.5);
    assert!(!check_rejected::<ClassifiedTaskV2>(
        over.clone(),
        &["/confidence: 1.5 is greater than the maximum 1"]
    ));
    let task: ClassifiedTaskV2 = serde_json::from_value(over).unwrap();
    assert!(matches!(encode(&task), Err(Error::InvalidPayload { .. })));

    let mut priority = human_escalation();
    priority["priority"] = json!(10);
    assert!(!check_rejected::<HumanEscalationV1>(
        priority,
        &["/priority: 10 is greater than the maximum 9"]
    ));
}

#[test]
fn idempotency_keys_come_from_the_schema() {
    let key = idempotency_key::<EvaluationResultV1>(&evaluation_result()).unwrap();
    assert_eq!(key, "0b6c1f8e-6f0a-4d5c-8b7e-111111111111:billing-3");
    let key = idempotency_key::<InteractionV1>(&interaction()).unwrap();
    assert_eq!(key, "7d9f8a4e-1c2b-4d3e-9f00-0a1b2c3d4e5f");
}

#[tokio::test]
async fn channel_specs_carry_channels_json() {
    let intake = &channels::intake::SPEC;
    assert_eq!(intake.schema, InteractionV1::SCHEMA);
    assert_eq!(intake.transport, courier::Transport::Stream);
    assert_eq!(intake.visibility_timeout.as_secs(), 30);
    let Some(courier::PartitionSpec::Values { field, values }) = &intake.partitions else {
        panic!("intake is partitioned by values: {:?}", intake.partitions);
    };
    assert_eq!(
        (&**field, &values[..]),
        (
            "/region",
            &["amer".into(), "emea".into(), "apac".into()][..]
        )
    );
    assert_eq!(
        channels::escalations::SPEC.sla.map(|d| d.as_secs()),
        Some(900)
    );
    assert_eq!(channels::billing::SPEC.schema, ClassifiedTaskV2::SCHEMA);
    // Consumers pick up the contract's breaker and rate limit by default.
    let crm = channels::billing::SPEC.dependency.unwrap();
    assert_eq!(
        (&*crm.name, crm.failure_threshold, crm.cool_down.as_secs()),
        ("crm", 500, 10)
    );
    let llm = channels::intake::SPEC.rate_limit.unwrap();
    assert_eq!(
        (llm.name.as_deref(), llm.per_second, llm.burst),
        (Some("llm"), 500.0, 50)
    );

    let server = courier_suites::RedisServer::must_start();
    let client = courier_suites::client(&server).await;
    let producer = channels::billing::producer(&client);
    assert_eq!(producer.spec().name, "billing");
    let consumer = channels::billing::consumer(&client, "billing-agents");
    assert_eq!(consumer.group(), "billing-agents");
    assert_eq!(
        format!("{consumer:?}"),
        "Consumer { channel: \"contact_center.billing\", group: \"billing-agents\", versions: [1, 2] }"
    );
}

/// The registry's channels are the runtime's specs (one struct), so what
/// the CLI reads from `schemas/` is compared with the constants field for
/// field, including the notice channel an SLA notice points at.
#[test]
fn the_registry_channels_equal_the_generated_constants() {
    let registry = courier_schema::Registry::load(&courier_suites::schemas_dir()).unwrap();
    let domain = &registry.domains["contact_center"];
    let generated = [
        &channels::billing::SPEC,
        &channels::escalations::SPEC,
        &channels::evaluations::SPEC,
        &channels::feedback::SPEC,
        &channels::intake::SPEC,
        &channels::retention::SPEC,
        &channels::sla_breaches::SPEC,
        &channels::technical_support::SPEC,
    ];
    assert_eq!(generated.len(), domain.channels.len());
    for spec in generated {
        assert_eq!(&domain.channels[&*spec.name], spec, "{}", spec.name);
    }
}

#[tokio::test]
async fn untyped_constructors_refuse_a_message_of_another_schema() {
    use courier::{testing::Harness, CancellationToken, Consumer, Delivery, Outcome, Producer};
    let harness = Harness::new();
    let producer = Producer::<InteractionV1>::untyped(harness.client(), &channels::billing::SPEC);
    let refused = producer
        .publish(&courier_suites::interaction(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::SchemaMismatch {
                expected: "contact_center.classified_task",
                ..
            }
        ),
        "{refused}"
    );
    assert!(harness.published().is_empty());

    let consumer =
        Consumer::<Interaction>::untyped(harness.client(), &channels::billing::SPEC, "group");
    let refused = consumer
        .run_until(
            |_: Delivery<Interaction>| async { Outcome::Done },
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::SchemaMismatch { .. }), "{refused}");

    let subscriber =
        courier::Subscriber::<Interaction>::untyped(harness.client(), &channels::feedback::SPEC);
    let refused = subscriber
        .run_until(
            |_: Delivery<Interaction>| async { Outcome::Done },
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::SchemaMismatch { .. }), "{refused}");
}

#[tokio::test]
async fn the_test_harness_records_what_producers_publish() {
    use courier::testing::Harness;
    use std::time::Duration;
    let harness = Harness::new();
    let intake = channels::intake::producer(harness.client());
    let first = intake
        .publish(&courier_suites::interaction(1))
        .await
        .unwrap();
    let again = intake
        .publish(&courier_suites::interaction(1))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(first.partition.as_deref(), Some("emea"));
    let later = intake
        .publish_in(&courier_suites::interaction(2), Duration::from_secs(30))
        .await
        .unwrap();
    let recorded = harness.published();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].envelope.id, later.id);
    assert_eq!(recorded[2].delay, Some(Duration::from_secs(30)));
    assert_eq!(
        recorded[0].message::<InteractionV1>().unwrap(),
        courier_suites::interaction(1)
    );

    let billing = channels::billing::producer(harness.client());
    billing.publish(&courier_suites::task_for(1)).await.unwrap();
    let task = harness.published().pop().unwrap();
    assert!(task.message::<ClassifiedTaskV2>().is_ok());
    assert!(matches!(
        task.message::<ClassifiedTaskV1>(),
        Err(Error::VersionUnsupported { version: 2, .. })
    ));
    // Nothing else of Redis is there.
    assert!(harness.client().info("server").await.is_err());
}
