//! `GET /`: every channel of every domain at a glance, refreshing itself.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use courier::{BreakerState, ChannelState};
use maud::{html, Markup};

use super::history::rate;
use super::layout::{age, figure, shell, sparkline, UiError};
use super::{auth, Ui};

/// The overview page.
pub async fn show(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = auth::session(&ui, &headers);
    match states(&ui).await {
        Ok(states) => shell(
            &ui,
            session.as_ref(),
            "Channels",
            table(&ui, &states),
            Some(ui.refresh),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every channel's state, read concurrently.
pub async fn states(ui: &Ui) -> Result<Vec<ChannelState>, UiError> {
    let reads = ui
        .channels
        .iter()
        .map(|spec| ui.client.channel_state(spec, None));
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(UiError::redis)
}

/// The table of channels, one section per domain.
pub fn table(ui: &Ui, states: &[ChannelState]) -> Markup {
    let every = Duration::from_secs(ui.refresh);
    html! {
        table.overview {
            thead {
                tr {
                    th { "channel" } th { "transport" }
                    th.num { "waiting" } th.num { "held" } th.num { "lag" } th.num { "oldest" }
                    th.num { "delayed" } th.num { "dead" } th.num { "consumers" }
                    th { "state" } th.num { "SLA breaches" } th { "backlog, last minutes" }
                }
            }
            tbody {
                @for (i, (spec, state)) in ui.channels.iter().zip(states).enumerate() {
                    @if i == 0 || ui.channels[i - 1].domain != spec.domain {
                        tr.domain { th colspan="12" { (spec.domain) } }
                    }
                    @let name = spec.qualified_name();
                    @let f = &state.total;
                    @let series = ui.history.series(&name);
                    tr data-channel=(name) {
                        td { a href={ "/channels/" (name) } { (spec.name) } }
                        td { (spec.transport.as_str()) }
                        td.num { (figure(f.waiting)) }
                        td.num { (figure(f.held)) }
                        td.num { (figure(f.lag)) }
                        td.num { (f.oldest.map_or_else(|| "–".to_owned(), age)) }
                        td.num { (f.delayed) }
                        td.num {
                            @if f.dead > 0 { a.bad href={ "/channels/" (name) "/dead" } { (f.dead) } }
                            @else { "0" }
                        }
                        td.num { (f.consumers) }
                        td { (condition(state)) }
                        td.num {
                            @match f.sla_breaches { Some(n) if n > 0 => span.bad { (n) }, other => (figure(other)) }
                        }
                        td {
                            (sparkline(&series))
                            @if let Some(r) = rate(&series, every) {
                                " " span.muted { (format!("{r:+.1}/s")) }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Refreshes every " (ui.refresh) " s. Figures per transport: see the README's “A channel's state”." }
    }
}

/// Paused by hand, or its dependency's breaker open: what stops consumers.
fn condition(state: &ChannelState) -> Markup {
    html! {
        @if state.paused { span.warn { "paused" } }
        @else if let Some(breaker) = &state.dependency {
            @match breaker {
                BreakerState::Closed => span.ok { "running" },
                BreakerState::Open { .. } => span.warn { "breaker open" },
                BreakerState::HalfOpen => span.warn { "breaker half-open" },
                BreakerState::Paused => span.warn { "breaker paused" },
            }
        } @else { span.ok { "running" } }
    }
}
