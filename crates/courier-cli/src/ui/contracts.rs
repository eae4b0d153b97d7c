//! `GET /contracts`: every domain's channels (transport, message,
//! compatibility mode, producer and consumer roles) with its flow drawn as
//! the contract docs draw it, and its messages' versions; and
//! `GET /contracts/{message}/{version}`: one version's schema.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use courier_schema::Domain;
use maud::{html, Markup, PreEscaped};

use super::layout::{page, UiError};
use super::{auth, Ui};

/// `GET /contracts`.
pub async fn show(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = auth::session(&ui, &headers);
    let body = html! {
        @for domain in ui.registry.domains.values() {
            h2 { (domain.name) }
            p.muted { (domain.description) }
            (flow(domain))
            table {
                thead { tr { th { "channel" } th { "transport" } th { "message" } th { "compatibility" } th { "producers" } th { "consumers" } } }
                tbody {
                    @for spec in domain.channels.values() {
                        tr {
                            td { a href={ "/channels/" (spec.qualified_name()) } { (spec.name) } }
                            td { (spec.transport.as_str()) }
                            td { (spec.schema) }
                            td { (spec.compatibility.as_str()) }
                            td { (join(spec.producers.iter().map(|r| &**r))) }
                            td { (join(spec.consumers.iter().map(|r| &**r))) }
                        }
                    }
                }
            }
            h2 { "Messages of " (domain.name) }
            table {
                thead { tr { th { "message" } th { "versions" } } }
                tbody {
                    @for message in domain.messages.values() {
                        @let name = message.schema_name();
                        tr {
                            td { (name) }
                            td {
                                @for version in &message.versions {
                                    a href={ "/contracts/" (name) "/" (version.version) } { "v" (version.version) } " "
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&ui, session.as_ref(), "Contracts", body).into_response()
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// The domain's flow as SVG: producing roles on the left, channels in the
/// middle, consuming roles on the right, an arrow for each role's channel.
fn flow(domain: &Domain) -> Markup {
    let producers: BTreeSet<&str> = domain
        .channels
        .values()
        .flat_map(|s| s.producers.iter().map(|r| &**r))
        .collect();
    let consumers: BTreeSet<&str> = domain
        .channels
        .values()
        .flat_map(|s| s.consumers.iter().map(|r| &**r))
        .collect();
    let channels: Vec<_> = domain.channels.values().collect();
    const ROW: f64 = 34.0;
    const BOX_W: f64 = 170.0;
    let rows = channels.len().max(producers.len()).max(consumers.len()) as f64;
    let height = rows * ROW + 10.0;
    let y = |i: usize, n: usize| 5.0 + (rows - n as f64) * ROW / 2.0 + i as f64 * ROW + 12.0;
    let (left, middle, right) = (10.0, 290.0, 570.0);
    let mut svg = format!(
        r#"<svg class="flow" width="760" height="{height}" viewBox="0 0 760 {height}" role="img" aria-label="the flow of {}" font-size="12">"#,
        domain.name
    );
    let node = |svg: &mut String, x: f64, y: f64, label: &str, fill: &str| {
        svg.push_str(&format!(
            r##"<rect x="{x}" y="{}" width="{BOX_W}" height="24" rx="4" fill="{fill}" stroke="#9aa3b5"/><text x="{}" y="{}" text-anchor="middle">{}</text>"##,
            y - 12.0,
            x + BOX_W / 2.0,
            y + 4.0,
            maud::html! { (label) }.into_string()
        ));
    };
    let index = |set: &BTreeSet<&str>, r: &str| set.iter().position(|p| *p == r).unwrap_or(0);
    for (i, spec) in channels.iter().enumerate() {
        let cy = y(i, channels.len());
        for r in spec.producers.iter() {
            let py = y(index(&producers, r), producers.len());
            svg.push_str(&format!(
                r##"<line x1="{}" y1="{py}" x2="{middle}" y2="{cy}" stroke="#6b7385"/>"##,
                left + BOX_W
            ));
        }
        for r in spec.consumers.iter() {
            let ry = y(index(&consumers, r), consumers.len());
            svg.push_str(&format!(
                r##"<line x1="{}" y1="{cy}" x2="{right}" y2="{ry}" stroke="#6b7385"/>"##,
                middle + BOX_W
            ));
        }
    }
    for (i, p) in producers.iter().enumerate() {
        node(&mut svg, left, y(i, producers.len()), p, "#eef3ff");
    }
    for (i, spec) in channels.iter().enumerate() {
        let label = format!("{} ({})", spec.name, spec.transport.as_str());
        node(&mut svg, middle, y(i, channels.len()), &label, "#fff7e6");
    }
    for (i, c) in consumers.iter().enumerate() {
        node(&mut svg, right, y(i, consumers.len()), c, "#eefaf1");
    }
    svg.push_str("</svg>");
    PreEscaped(svg)
}

/// `GET /contracts/{message}/{version}`.
pub async fn schema(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path((message, version)): Path<(String, String)>,
) -> Response {
    let session = auth::session(&ui, &headers);
    let Ok(number) = version.trim_start_matches('v').parse::<u32>() else {
        return UiError::bad_input(format!("{version:?} is not a version number")).into_response();
    };
    let Some(released) = ui
        .registry
        .message(&message)
        .and_then(|m| m.version(number))
    else {
        return UiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no message {message:?} v{number} in the contracts"),
        )
        .into_response();
    };
    let carried: Vec<_> = ui.channels.iter().filter(|c| c.schema == message).collect();
    let body = html! {
        p { (released.description) }
        dl.fields {
            dt { "file" } dd { (released.file.display()) }
            dt { "idempotency key" } dd { (released.idempotency_key.join(", ")) }
            @for spec in &carried {
                dt { "on " (spec.qualified_name()) } dd { "compatibility " (spec.compatibility.as_str()) }
            }
        }
        pre { (serde_json::to_string_pretty(&released.schema).unwrap_or_default()) }
    };
    page(&ui, session.as_ref(), &format!("{message} v{number}"), body).into_response()
}
