//! OpenTelemetry wiring (feature `otel`): courier's `courier.publish` and
//! `courier.handle` spans become OpenTelemetry spans of one trace across
//! Redis, through `tracing-opentelemetry`. Install its layer with your
//! exporter; courier sets the parents.
//!
//! - A publish inside a traced span is that span's child; its context is
//!   what the envelope's `traceparent` carries.
//! - A handled message's span has the envelope's context as remote parent.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::envelope::TraceContext;

/// The context a publish span gets: a child of the current span when there
/// is one, else of the caller's `traceparent`, else a new trace; `None` when
/// no OpenTelemetry layer is installed (courier then uses its own ids).
pub(crate) fn publish(span: &tracing::Span, parent: Option<TraceContext>) -> Option<TraceContext> {
    let current = tracing::Span::current().context();
    if !current.span().span_context().is_valid() {
        if let Some(parent) = parent {
            let _ = span.set_parent(remote(parent));
        }
    }
    own(span)
}

/// Makes the envelope's context the remote parent of a handling span; returns
/// the span's own context, when an OpenTelemetry layer is installed.
pub(crate) fn handle(span: &tracing::Span, parent: Option<TraceContext>) -> Option<TraceContext> {
    if let Some(parent) = parent {
        let _ = span.set_parent(remote(parent));
    }
    own(span)
}

fn remote(parent: TraceContext) -> opentelemetry::Context {
    let context = SpanContext::new(
        TraceId::from(parent.trace_id),
        SpanId::from(parent.span_id),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(context)
}

fn own(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let own = context.span().span_context().clone();
    own.is_valid().then(|| TraceContext {
        trace_id: u128::from_be_bytes(own.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(own.span_id().to_bytes()),
    })
}
