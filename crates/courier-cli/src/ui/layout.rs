//! The page shell every page shares, the stylesheet, error pages, and the
//! small renderers and helpers the pages use.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::auth::Session;
use super::Ui;

/// Longest filter or form value accepted, in bytes.
pub const MAX_INPUT: usize = 200;

/// The page around `body`, with the navigation and who is logged in.
pub fn page(ui: &Ui, session: Option<&Session>, title: &str, body: Markup) -> Markup {
    shell(ui, session, title, body, None)
}

/// [`page`], reloading itself every `refresh` seconds when given.
pub fn shell(
    ui: &Ui,
    session: Option<&Session>,
    title: &str,
    body: Markup,
    refresh: Option<u64>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = refresh {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (title) " · courier" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "courier" }
                        a href="/" { "Channels" }
                        a href="/contracts" { "Contracts" }
                        span.mode {
                            @if ui.read_only { "read-only" }
                            @else if ui.token.is_none() { "read-only (no login token)" }
                            @else if let Some(session) = session {
                                (session.who) " "
                                form.inline method="post" action="/logout" {
                                    (csrf_field(session))
                                    button type="submit" { "Log out" }
                                }
                            } @else {
                                a href="/login" { "Log in" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An error answered as a page that says what went wrong.
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    /// An error page with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }

    /// 404 for a channel no contract declares.
    pub fn unknown_channel(name: &str) -> UiError {
        UiError::new(
            StatusCode::NOT_FOUND,
            format!("no channel {name:?}: the contracts declare no such channel"),
        )
    }

    /// 400 for a request whose input does not make sense.
    pub fn bad_input(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 502 for Redis failing to answer.
    pub fn redis(error: impl std::fmt::Display) -> UiError {
        UiError::new(StatusCode::BAD_GATEWAY, format!("Redis: {error}"))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "Error · courier" }
                    link rel="stylesheet" href="/style.css";
                }
                body {
                    main {
                        h1 { (self.status.as_u16()) " " (self.status.canonical_reason().unwrap_or("")) }
                        p.error { (self.message) }
                        p { a href="/" { "Back to the channels" } }
                    }
                }
            }
        };
        (self.status, body).into_response()
    }
}

/// The fallback route.
pub async fn not_found() -> UiError {
    UiError::new(StatusCode::NOT_FOUND, "no such page")
}

/// `GET /style.css`: the one stylesheet, embedded.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

/// A form's fields, each name with every value given, refusing values
/// longer than [`MAX_INPUT`].
pub fn form(body: &[u8]) -> Result<HashMap<String, Vec<String>>, UiError> {
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if value.len() > MAX_INPUT || name.len() > MAX_INPUT {
            return Err(UiError::bad_input(format!(
                "the field {name:?} is longer than {MAX_INPUT} bytes"
            )));
        }
        fields
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    Ok(fields)
}

/// The first value of `name` in `fields`, if given and not empty.
pub fn field<'a>(fields: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(|v| v.first())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Logs an action on stderr and counts it in `courier_ui_actions_total`.
pub fn record(who: &str, action: &'static str, channel: &str, count: usize) {
    eprintln!("courier ui: {who} {action} {channel}: {count} message(s)");
    metrics::counter!("courier_ui_actions_total", "action" => action, "channel" => channel.to_owned())
        .increment(1);
}

/// An age or duration as people read it: `950 ms`, `42 s`, `7 min`, `3 h`.
pub fn age(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=119_999 => format!("{} s", ms / 1_000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// A figure that may have no meaning on a transport: `–` then.
pub fn figure(value: Option<u64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

/// A sparkline of `values` (oldest first) as inline SVG.
pub fn sparkline(values: &[u64]) -> Markup {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if values.len() < 2 {
        return html! { span.muted { "…" } };
    }
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = W / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                H - (*v as f64 / max) * (H - 2.0) - 1.0
            )
        })
        .collect();
    let svg = format!(
        r#"<svg class="spark" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="backlog over the last minutes"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>"#,
        points.join(" ")
    );
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(Duration::from_millis(950)), "950 ms");
        assert_eq!(age(Duration::from_secs(42)), "42 s");
        assert_eq!(age(Duration::from_secs(420)), "7 min");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 5)), "3 h");
    }

    #[test]
    fn forms_keep_repeated_fields_and_refuse_long_ones() {
        let fields = form(b"ids=a&ids=b&reason=").unwrap();
        assert_eq!(fields["ids"], ["a", "b"]);
        assert_eq!(field(&fields, "reason"), None);
        let long = format!("text={}", "x".repeat(MAX_INPUT + 1));
        assert!(form(long.as_bytes()).is_err());
    }

    #[test]
    fn a_sparkline_scales_to_its_maximum() {
        let svg = sparkline(&[0, 5, 10]).into_string();
        assert!(
            svg.contains("points=\"0.0,23.0 60.0,12.0 120.0,1.0\""),
            "{svg}"
        );
        assert!(sparkline(&[3]).into_string().contains('…'));
    }
}
