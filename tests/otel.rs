//! With the `otel` feature, courier's spans are OpenTelemetry spans of one
//! trace across Redis: request → courier.publish → (Redis) → courier.handle
//! → the follow-up courier.publish, each the parent of the next, exported
//! through tracing-opentelemetry to an in-memory exporter.

use std::borrow::Cow;
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{ChannelSpec, Delivery, Outcome, Producer};
use courier_suites::{client, interaction, quick, task_for, RedisServer, Running};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

static OTEL: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("otel"),
    partitions: None,
    max_depth: None,
    ..channels::intake::SPEC
};

static OTEL_NEXT: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("otel_next"),
    ..channels::billing::SPEC
};

#[tokio::test(flavor = "multi_thread")]
async fn spans_form_one_opentelemetry_trace_across_redis() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("courier-test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &OTEL);
    // The caller's own span: the publish becomes its child.
    async { producer.publish(&interaction(1)).await.unwrap() }
        .instrument(tracing::info_span!("request"))
        .await;
    let next = Producer::untyped(&client, &OTEL_NEXT);
    let running = Running::start(
        courier::Consumer::<Interaction>::untyped(&client, &OTEL, "g").with_options(quick()),
        move |d: Delivery<Interaction>| {
            let next = next.clone();
            async move {
                next.publish_with(&task_for(1), &d.follow_up())
                    .await
                    .unwrap();
                Outcome::Done
            }
        },
    );
    assert!(running.wait(Duration::from_secs(5), |r| r.done >= 1).await);
    running.stop().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let find = |name: &str, nth: usize| {
        spans
            .iter()
            .filter(|s| s.name == name)
            .nth(nth)
            .unwrap_or_else(|| {
                panic!(
                    "no span {name} #{nth} in {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let request = find("request", 0);
    let publish = find("courier.publish", 0);
    let handle = find("courier.handle", 0);
    let follow_up = find("courier.publish", 1);
    let trace = request.span_context.trace_id();
    for span in [publish, handle, follow_up] {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "{} is in the request's trace",
            span.name
        );
    }
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(
        handle.parent_span_id,
        publish.span_context.span_id(),
        "the handling continues the publish"
    );
    assert!(
        handle.parent_span_is_remote,
        "across Redis, the parent is remote"
    );
    assert_eq!(follow_up.parent_span_id, handle.span_context.span_id());
}
