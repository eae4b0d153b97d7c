//! `GET /channels/{channel}/dead`: a channel's dead letters, filtered by
//! reason, schema version, time and error text; replaying the selected
//! ones or every match (after a dry run that shows how many), and purging
//! them once the operator has typed the channel's name.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use courier::{DeadReason, DlqFilter};
use maud::{html, Markup};

use super::channel::channel_of;
use super::layout::{csrf_field, field, form, page, record, UiError, MAX_INPUT};
use super::{auth, Ui};

/// Dead letters listed on one page.
const SHOWN: usize = 200;

/// Every reason, for the filter's choices.
const REASONS: [DeadReason; 7] = [
    DeadReason::Expired,
    DeadReason::SchemaMismatch,
    DeadReason::VersionUnsupported,
    DeadReason::InvalidPayload,
    DeadReason::MaxAttempts,
    DeadReason::Fatal,
    DeadReason::Poison,
];

/// The filter of a query or form: `reason`, `version`, `since`, `until`
/// (RFC 3339) and `text`.
fn filter(fields: &HashMap<String, Vec<String>>) -> Result<DlqFilter, UiError> {
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, UiError> {
        field(fields, name)
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        UiError::bad_input(format!("{name} {t:?} is not an RFC 3339 time"))
                    })
            })
            .transpose()
    };
    Ok(DlqFilter {
        reason: field(fields, "reason")
            .map(|r| {
                REASONS
                    .into_iter()
                    .find(|reason| reason.as_str() == r)
                    .ok_or_else(|| UiError::bad_input(format!("no dead-letter reason {r:?}")))
            })
            .transpose()?,
        version: field(fields, "version")
            .map(|v| {
                v.parse()
                    .map_err(|_| UiError::bad_input(format!("version {v:?} is not a number")))
            })
            .transpose()?,
        since: time("since")?,
        until: time("until")?,
        text: field(fields, "text").map(str::to_owned),
        limit: None,
    })
}

/// The filter as hidden fields, so a confirmation repeats it.
fn filter_fields(fields: &HashMap<String, Vec<String>>) -> Markup {
    html! {
        @for name in ["reason", "version", "since", "until", "text"] {
            @if let Some(value) = field(fields, name) { input type="hidden" name=(name) value=(value); }
        }
    }
}

/// `GET /channels/{channel}/dead`.
pub async fn page_get(
    ui: &Ui,
    headers: &HeaderMap,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Markup, UiError> {
    let spec = channel_of(ui, name)?;
    if query
        .iter()
        .any(|(k, v)| k.len() > MAX_INPUT || v.len() > MAX_INPUT)
    {
        return Err(UiError::bad_input(format!(
            "a filter is longer than {MAX_INPUT} bytes"
        )));
    }
    let fields: HashMap<String, Vec<String>> = query
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect();
    let wanted = filter(&fields)?;
    let session = auth::session(ui, headers);
    let letters = ui
        .client
        .dlq(spec)
        .list(&wanted)
        .await
        .map_err(UiError::redis)?;
    let selected = |name: &str, value: &str| field(&fields, name) == Some(value);
    let body = html! {
        form.filters method="get" {
            label { "reason " select name="reason" {
                option value="" { "any" }
                @for r in REASONS { option value=(r.as_str()) selected[selected("reason", r.as_str())] { (r.as_str()) } }
            } }
            label { "version " input type="number" name="version" min="1" value=[field(&fields, "version")]; }
            label { "since " input type="text" name="since" placeholder="2026-12-01T00:00:00Z" value=[field(&fields, "since")]; }
            label { "until " input type="text" name="until" value=[field(&fields, "until")]; }
            label { "error contains " input type="text" name="text" value=[field(&fields, "text")]; }
            button type="submit" { "Filter" }
        }
        p { (letters.len()) " dead letter(s) match" @if letters.len() > SHOWN { "; the first " (SHOWN) " are listed" } "." }
        @let actions = ui.writable() && session.is_some();
        @let table = html! {
            table {
                thead { tr { @if actions { th { } } th { "id" } th { "reason" } th.num { "version" } th { "error" } th { "dead at" } } }
                tbody {
                    @for letter in letters.iter().take(SHOWN) {
                        tr {
                            @if actions { td { input type="checkbox" name="ids" value=(letter.id); } }
                            td { a href={ "/channels/" (name) "/messages/" (letter.id) } { code { (letter.id) } } }
                            td { (letter.reason) }
                            td.num { (letter.version().map(|v| v.to_string()).unwrap_or_default()) }
                            td { (letter.error) }
                            td { (letter.dead_at) }
                        }
                    }
                }
            }
        };
        @if let Some(session) = session.as_ref().filter(|_| actions) {
            form method="post" action={ "/channels/" (name) "/dead/replay" } {
                (csrf_field(session))
                (table)
                p { button type="submit" { "Replay selected" } }
            }
        } @else {
            (table)
        }
        @if let Some(session) = session.as_ref().filter(|_| actions) {
            form.actions method="post" action={ "/channels/" (name) "/dead/replay" } {
                (csrf_field(session)) (filter_fields(&fields))
                input type="hidden" name="all" value="1";
                button type="submit" { "Replay all that match…" }
            }
            form.actions method="post" action={ "/channels/" (name) "/dead/purge" } {
                (csrf_field(session)) (filter_fields(&fields))
                input type="hidden" name="all" value="1";
                button.danger type="submit" { "Purge all that match…" }
            }
        } @else if ui.writable() {
            p.muted { a href="/login" { "Log in" } " to replay or purge." }
        }
    };
    Ok(page(
        ui,
        session.as_ref(),
        &format!("Dead letters of {name}"),
        body,
    ))
}

/// `GET /channels/{channel}/dead`.
pub async fn show(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match page_get(&ui, &headers, &name, &query).await {
        Ok(markup) => markup.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /channels/{channel}/dead/replay`: the selected `ids`, or with
/// `all` every match of the filter once `confirm` says the count was seen.
pub async fn replay(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(&ui, &headers, &name, &body, Action::Replay)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /channels/{channel}/dead/purge`: as replay, confirmed by typing
/// the channel's name.
pub async fn purge(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    act(&ui, &headers, &name, &body, Action::Purge)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Replay,
    Purge,
}

async fn act(
    ui: &Ui,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
    action: Action,
) -> Result<Response, UiError> {
    let spec = channel_of(ui, name)?;
    let fields = form(body)?;
    let session = auth::authorize(ui, headers, field(&fields, "csrf"))?;
    let dlq = ui.client.dlq(spec);
    let ids: Vec<&str> = fields
        .get("ids")
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let all = field(&fields, "all") == Some("1");
    if ids.is_empty() && !all {
        return Err(UiError::bad_input(
            "nothing selected: choose dead letters, or all that match",
        ));
    }
    if ids.len() > SHOWN {
        return Err(UiError::bad_input(format!(
            "at most {SHOWN} dead letters at a time"
        )));
    }
    let confirmed = match action {
        Action::Replay => field(&fields, "confirm") == Some("1"),
        Action::Purge => field(&fields, "confirm_name") == Some(name),
    };
    let wanted = filter(&fields)?;
    // Selected letters replay at once; a purge, and anything "all that
    // match", shows its count first.
    if !confirmed && (all || action == Action::Purge) {
        let count = if all {
            dlq.list(&wanted).await.map_err(UiError::redis)?.len()
        } else {
            ids.len()
        };
        let verb = if action == Action::Replay {
            "Replay"
        } else {
            "Purge"
        };
        let target = if action == Action::Replay {
            "replay"
        } else {
            "purge"
        };
        let body = html! {
            p.confirm { "This would " (target) " " strong { (count) } " dead letter(s) of " code { (name) } "." }
            form.confirm method="post" action={ "/channels/" (name) "/dead/" (target) } {
                (csrf_field(&session)) (filter_fields(&fields))
                @if all { input type="hidden" name="all" value="1"; }
                @for id in &ids { input type="hidden" name="ids" value=(id); }
                @if action == Action::Purge {
                    label { "Type " code { (name) } " to confirm: " input type="text" name="confirm_name" autocomplete="off" required; }
                    button.danger type="submit" { (verb) " " (count) }
                } @else {
                    input type="hidden" name="confirm" value="1";
                    button type="submit" { (verb) " " (count) }
                }
            }
            p { a href={ "/channels/" (name) "/dead" } { "Cancel" } }
        };
        return Ok(page(
            ui,
            Some(&session),
            &format!("{verb} dead letters of {name}?"),
            body,
        )
        .into_response());
    }
    let done = match (action, all) {
        (Action::Replay, true) => dlq.replay_where(&wanted).await.map_err(UiError::redis)?,
        (Action::Purge, true) => dlq.purge_where(&wanted).await.map_err(UiError::redis)?,
        (Action::Replay, false) => {
            for id in &ids {
                dlq.replay(id).await.map_err(UiError::redis)?;
            }
            ids.len()
        }
        (Action::Purge, false) => {
            for id in &ids {
                dlq.purge(id).await.map_err(UiError::redis)?;
            }
            ids.len()
        }
    };
    let (verb, done_verb) = match action {
        Action::Replay => ("replay", "Replayed"),
        Action::Purge => ("purge", "Purged"),
    };
    record(&session.who, verb, name, done);
    let body = html! {
        p.ok.result { (done_verb) " " (done) " dead letter(s) of " code { (name) } "." }
        p { a href={ "/channels/" (name) "/dead" } { "Back to the dead letters" } " · " a href={ "/channels/" (name) } { "the channel" } }
    };
    Ok(page(ui, Some(&session), &format!("{done_verb} {done}"), body).into_response())
}
