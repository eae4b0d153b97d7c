//! Trace context across Redis: the consumer's `courier.handle` span is a
//! child of the producer's `courier.publish` span, in the same trace, and a
//! follow-up publish from the handler continues it. Spans are captured by a
//! small `tracing` layer; the messages go through a real `redis-server`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{ChannelSpec, Delivery, Outcome, Producer, PublishOptions};
use courier_suites::{client, interaction, quick, task_for, RedisServer, Running};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Every span created: its name and fields.
type Spans = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

struct Capture(Spans, Mutex<HashMap<u64, usize>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().unwrap();
        self.1.lock().unwrap().insert(id.into_u64(), spans.len());
        spans.push((attrs.metadata().name().to_string(), fields));
    }

    // courier records the trace fields right after creating a span.
    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, _ctx: Context<'_, S>) {
        if let Some(index) = self.1.lock().unwrap().get(&id.into_u64()) {
            values.record(&mut Fields(&mut self.0.lock().unwrap()[*index].1));
        }
    }
}

static TRACED: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("traced"),
    partitions: None,
    max_depth: None,
    ..channels::intake::SPEC
};

static NEXT: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("traced_next"),
    ..channels::billing::SPEC
};

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_span_continues_the_producer_trace() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone(), Mutex::default()));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = RedisServer::must_start();
    let client = client(&server).await;
    let options = PublishOptions {
        correlation_id: Some("call-42".into()),
        ..PublishOptions::default()
    };
    let published = Producer::untyped(&client, &TRACED)
        .publish_with(&interaction(1), &options)
        .await
        .unwrap();
    let next = Producer::untyped(&client, &NEXT);
    let running = Running::start(
        courier::Consumer::<Interaction>::untyped(&client, &TRACED, "g").with_options(quick()),
        move |d: Delivery<Interaction>| {
            let next = next.clone();
            async move {
                // What this message causes carries the trace on.
                next.publish_with(&task_for(1), &d.follow_up())
                    .await
                    .unwrap();
                Outcome::Done
            }
        },
    );
    assert!(running.wait(Duration::from_secs(5), |r| r.done >= 1).await);
    running.stop().await;

    let spans = spans.lock().unwrap().clone();
    let find = |name: &str, channel: &str| {
        spans
            .iter()
            .find(|(n, f)| n == name && f.get("channel").map(String::as_str) == Some(channel))
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("no {name} span on {channel}: {spans:#?}"))
    };
    let publish = find("courier.publish", "contact_center.traced");
    let handle = find("courier.handle", "contact_center.traced");
    let follow_up = find("courier.publish", "contact_center.traced_next");

    assert_eq!(publish["message_id"], published.id);
    assert_eq!(handle["message_id"], published.id);
    assert_eq!(handle["trace_id"], publish["trace_id"], "same trace");
    assert_eq!(
        handle["parent_span_id"], publish["span_id"],
        "the handling is a child of the publish"
    );
    assert_ne!(handle["span_id"], publish["span_id"]);
    assert_eq!(handle["correlation_id"], "call-42");
    assert_eq!(handle["attempt"], "1");
    assert_eq!(follow_up["trace_id"], publish["trace_id"]);
    assert_eq!(
        follow_up["parent_span_id"], handle["span_id"],
        "the follow-up is a child of the handling"
    );
    assert_eq!(follow_up["correlation_id"], "call-42");
}
