//! `GET /channels/{channel}`: one channel's messages waiting, in flight,
//! scheduled and dead, with pause and resume; and
//! `GET /channels/{channel}/messages/{id}`: one message.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use courier::{ChannelSpec, DlqFilter};
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{age, csrf_field, field, figure, form, page, record, UiError};
use super::{auth, Ui};
use crate::entries::{self, Entry, Range};

/// Messages listed per section of the channel page.
const SHOWN: usize = 20;

/// Queue entries searched for a message page, per partition.
const SEARCHED: usize = 1000;

/// The channel `name`, or a 404 page.
pub fn channel_of(ui: &Ui, name: &str) -> Result<&'static ChannelSpec, UiError> {
    if name.len() > 200 {
        return Err(UiError::bad_input("the channel name is too long"));
    }
    ui.channel(name)
        .ok_or_else(|| UiError::unknown_channel(name))
}

/// The channel page.
pub async fn page_of(ui: &Ui, headers: &HeaderMap, name: &str) -> Result<Markup, UiError> {
    let spec = channel_of(ui, name)?;
    let session = auth::session(ui, headers);
    let state = ui
        .client
        .channel_state(spec, None)
        .await
        .map_err(UiError::redis)?;
    let f = &state.total;
    let mut waiting = Vec::new();
    let mut scheduled = Vec::new();
    if spec.transport != courier::Transport::Pubsub {
        for partition in courier::partition::all(spec) {
            let p = partition.as_deref();
            waiting.extend(
                entries::read(&ui.client, spec, p, Range::Head(SHOWN))
                    .await
                    .map_err(UiError::redis)?,
            );
            scheduled.extend(
                entries::read(&ui.client, spec, p, Range::DelayedHead(SHOWN))
                    .await
                    .map_err(UiError::redis)?,
            );
        }
    }
    let held = ui
        .client
        .in_flight(spec, SHOWN)
        .await
        .map_err(UiError::redis)?;
    let dead = ui
        .client
        .dlq(spec)
        .list(&DlqFilter {
            limit: Some(SHOWN),
            ..DlqFilter::default()
        })
        .await
        .map_err(UiError::redis)?;
    let body = html! {
        p.muted { (spec.description) }
        dl.fields {
            dt { "transport" } dd { (spec.transport.as_str()) }
            dt { "message" } dd { (spec.schema) }
            dt { "waiting / held / lag" } dd { (figure(f.waiting)) " / " (figure(f.held)) " / " (figure(f.lag)) }
            dt { "oldest waiting" } dd { (f.oldest.map_or_else(|| "–".to_owned(), age)) }
            dt { "delayed / dead" } dd { (f.delayed) " / " (f.dead) }
            dt { "consumers" } dd { (f.consumers) }
            dt { "state" } dd { @if state.paused { span.warn { "paused" } } @else { "running" } }
        }
        @if ui.writable() {
            @if let Some(session) = &session {
                form.actions method="post" action={ "/channels/" (name) (if state.paused { "/resume" } else { "/pause" }) } {
                    (csrf_field(session))
                    button type="submit" { (if state.paused { "Resume" } else { "Pause" }) }
                }
            } @else {
                p.muted { a href="/login" { "Log in" } " to pause, resume, replay or purge." }
            }
        }
        h2 { "Waiting (newest " (SHOWN) " per partition)" }
        (messages(name, &waiting))
        h2 { "In flight" }
        @if held.is_empty() { p.muted { "Nothing held." } } @else {
            table {
                thead { tr { th { "partition" } th { "group" } th { "consumer" } th { "id" } th.num { "idle" } th.num { "deliveries" } } }
                tbody {
                    @for h in &held {
                        tr {
                            td { (h.partition.as_deref().unwrap_or("–")) }
                            td { (h.group.as_deref().unwrap_or("–")) }
                            td { (h.consumer) }
                            td { code { (h.id) } }
                            td.num { (h.idle.map_or_else(|| "–".to_owned(), age)) }
                            td.num { (h.deliveries) }
                        }
                    }
                }
            }
        }
        h2 { "Scheduled (retries and delayed messages)" }
        (messages(name, &scheduled))
        h2 { "Dead letters" }
        @if dead.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th { "id" } th { "reason" } th { "error" } th { "dead at" } } }
                tbody {
                    @for letter in &dead {
                        tr {
                            td { a href={ "/channels/" (name) "/messages/" (letter.id) } { code { (letter.id) } } }
                            td { (letter.reason) }
                            td { (letter.error) }
                            td { (letter.dead_at) }
                        }
                    }
                }
            }
            p { a href={ "/channels/" (name) "/dead" } { "All dead letters, with filters, replay and purge" } }
        }
    };
    Ok(page(ui, session.as_ref(), &format!("Channel {name}"), body))
}

/// `GET /channels/{channel}`.
pub async fn show(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match page_of(&ui, &headers, &name).await {
        Ok(markup) => markup.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A table of queued messages (or entries that are not messages).
fn messages(channel: &str, entries: &[Entry]) -> Markup {
    html! {
        @if entries.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th { "id" } th { "key" } th.num { "version" } th { "created" } th.num { "attempt" } } }
                tbody {
                    @for entry in entries {
                        @match entry {
                            Entry::Message(envelope) => {
                                @let text = |name: &str| envelope.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
                                tr {
                                    td { a href={ "/channels/" (channel) "/messages/" (text("id")) } { code { (text("id")) } } }
                                    td { code { (text("key")) } }
                                    td.num { (envelope.get("version").map(Value::to_string).unwrap_or_default()) }
                                    td { (text("created_at")) }
                                    td.num { (envelope.get("attempt").map(Value::to_string).unwrap_or_default()) }
                                }
                            }
                            Entry::Flagged(flagged) => {
                                tr { td colspan="5" { span.bad { (flagged.marker()) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether `id` can name a message or a dead letter: a UUID, or
/// `[<partition>/]<stream entry id>`.
fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'))
}

/// `GET /channels/{channel}/messages/{id}`: a message waiting or scheduled
/// (by message id, among the newest entries), or a dead letter (by its id
/// or its message's).
pub async fn message(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    match message_page(&ui, &headers, &name, &id).await {
        Ok(markup) => markup.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn message_page(
    ui: &Ui,
    headers: &HeaderMap,
    name: &str,
    id: &str,
) -> Result<Markup, UiError> {
    let spec = channel_of(ui, name)?;
    if !plausible_id(id) {
        return Err(UiError::bad_input(format!(
            "{id:?} is not a message or dead-letter id"
        )));
    }
    let session = auth::session(ui, headers);
    // A dead letter first: by its own id (one read), else by the id of
    // the message it holds.
    let dlq = ui.client.dlq(spec);
    let by_own_id = if is_dead_letter_id(id) {
        match dlq.get(id).await {
            Ok(letter) => Some(letter),
            Err(courier::Error::DeadLetterNotFound { .. }) => None,
            Err(e) => return Err(UiError::redis(e)),
        }
    } else {
        None
    };
    let dead = match by_own_id {
        Some(letter) => Some(letter),
        None => dlq
            .list(&DlqFilter::default())
            .await
            .map_err(UiError::redis)?
            .into_iter()
            .find(|l| l.envelope.as_ref().and_then(|e| e.get("id")?.as_str()) == Some(id)),
    };
    let (envelope, letter) = match dead {
        Some(letter) => (letter.envelope.clone(), Some(letter)),
        None => {
            let mut found = None;
            if spec.transport != courier::Transport::Pubsub {
                for partition in courier::partition::all(spec) {
                    let p = partition.as_deref();
                    let mut read = entries::read(&ui.client, spec, p, Range::Head(SEARCHED))
                        .await
                        .map_err(UiError::redis)?;
                    read.extend(
                        entries::read(&ui.client, spec, p, Range::DelayedHead(SEARCHED))
                            .await
                            .map_err(UiError::redis)?,
                    );
                    found = read.into_iter().find_map(|e| match e {
                        Entry::Message(v) if v.get("id").and_then(Value::as_str) == Some(id) => {
                            Some(v)
                        }
                        _ => None,
                    });
                    if found.is_some() {
                        break;
                    }
                }
            }
            match found {
                Some(envelope) => (Some(envelope), None),
                None => {
                    return Err(UiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        format!(
                            "no message {id} among the newest {SEARCHED} waiting, the {SEARCHED} soonest scheduled or the dead letters of {name}"
                        ),
                    ))
                }
            }
        }
    };
    let text = |e: &Value, f: &str| e.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
    let body = html! {
        @if let Some(letter) = &letter {
            h2 { "Dead letter" }
            dl.fields {
                dt { "id" } dd { (letter.id) }
                dt { "reason" } dd { (letter.reason) }
                dt { "error" } dd { (letter.error) }
                dt { "dead at" } dd { (letter.dead_at) }
                dt { "by" } dd { (letter.group) " / " (letter.consumer) }
            }
            @if let Some(raw) = &letter.raw {
                h2 { "Stored content" @if letter.escaped { " (escaped)" } }
                pre { (raw) }
            }
        }
        @if let Some(envelope) = &envelope {
            h2 { "Envelope" }
            @let schema = text(envelope, "schema");
            @let version = envelope.get("version").and_then(Value::as_u64).unwrap_or(0);
            dl.fields {
                dt { "id" } dd { (text(envelope, "id")) }
                dt { "key" } dd { (text(envelope, "key")) }
                dt { "schema" } dd { a href={ "/contracts/" (schema) "/" (version) } { (schema) " v" (version) } }
                dt { "created / expires" } dd { (text(envelope, "created_at")) " / " (text(envelope, "expires_at")) }
                dt { "attempt" } dd { (envelope.get("attempt").map(Value::to_string).unwrap_or_default()) }
                dt { "producer" } dd { (text(envelope, "producer")) }
                dt { "trace id" } dd { (trace_id(&text(envelope, "traceparent"))) }
                dt { "correlation id" } dd { (text(envelope, "correlation_id")) }
                @if let Some(priority) = envelope.get("priority") { dt { "priority" } dd { (priority) } }
            }
            h2 { "Payload" }
            pre.payload { (serde_json::to_string_pretty(envelope.get("payload").unwrap_or(&Value::Null)).unwrap_or_default()) }
        }
        @if let Some(letter) = &letter {
            h2 { "Attempt history" }
            @if letter.history.is_empty() { p.muted { "No attempt recorded." } } @else {
                table {
                    thead { tr { th.num { "attempt" } th { "at" } th { "error" } } }
                    tbody {
                        @for a in &letter.history {
                            @let a = serde_json::to_value(a).unwrap_or_default();
                            tr {
                                td.num { (a.get("attempt").map(Value::to_string).unwrap_or_default()) }
                                td { (text(&a, "at")) }
                                td { (text(&a, "error")) }
                            }
                        }
                    }
                }
            }
            @if ui.writable() {
                @if let Some(session) = &session {
                    form.actions method="post" action={ "/channels/" (name) "/dead/replay" } {
                        (csrf_field(session))
                        input type="hidden" name="ids" value=(letter.id);
                        button type="submit" { "Replay" }
                    }
                }
            }
        }
    };
    Ok(page(ui, session.as_ref(), &format!("Message {id}"), body))
}

/// Whether `id` has the shape of a dead letter's own id,
/// `[<partition>/]<ms>-<seq>`, rather than a message id.
fn is_dead_letter_id(id: &str) -> bool {
    let entry = id.rsplit('/').next().unwrap_or(id);
    entry.split_once('-').is_some_and(|(ms, seq)| {
        [ms, seq]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The trace id of a W3C `traceparent`.
fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or("")
}

/// `POST /channels/{channel}/pause`.
pub async fn pause(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    switch(&ui, &headers, &name, &body, true)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /channels/{channel}/resume`.
pub async fn resume(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    switch(&ui, &headers, &name, &body, false)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn switch(
    ui: &Ui,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
    paused: bool,
) -> Result<Response, UiError> {
    let spec = channel_of(ui, name)?;
    let fields = form(body)?;
    let session = auth::authorize(ui, headers, field(&fields, "csrf"))?;
    if paused {
        ui.client.pause(spec).await.map_err(UiError::redis)?;
        record(&session.who, "pause", name, 0);
    } else {
        ui.client.resume(spec).await.map_err(UiError::redis)?;
        record(&session.who, "resume", name, 0);
    }
    Ok(Redirect::to(&format!("/channels/{name}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_read() {
        assert!(plausible_id("5b0e6f0e-8f43-4f36-a4a2-0d5f8f1a9c11"));
        assert!(plausible_id("emea/1732780800000-0"));
        assert!(!plausible_id(""));
        assert!(!plausible_id("<script>"));
        assert!(!plausible_id(&"1".repeat(101)));
        assert!(is_dead_letter_id("emea/1732780800000-0"));
        assert!(is_dead_letter_id("1732780800000-12"));
        assert!(!is_dead_letter_id("5b0e6f0e-8f43-4f36-a4a2-0d5f8f1a9c11"));
        assert_eq!(
            trace_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
}
