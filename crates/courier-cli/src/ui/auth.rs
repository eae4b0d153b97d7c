//! Who may act: a login with the console's token opens a session (a random
//! id in an `HttpOnly`, `SameSite=Strict` cookie), and each session has a
//! random CSRF token that every action's form must carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{page, UiError};
use super::Ui;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "courier_ui_session";

/// How long a session lasts.
const SESSION_LIFE: Duration = Duration::from_secs(8 * 3600);

/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 1000;

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Names the session in logs: the first 8 characters of its id.
    pub who: String,
    /// The token its forms carry.
    pub csrf: String,
    started: Instant,
}

/// Every logged-in session, by id.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn open(&self) -> (String, Session) {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let session = Session {
            who: format!("session-{}", &id[..8]),
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            started: Instant::now(),
        };
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, s| s.started.elapsed() < SESSION_LIFE);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(id.clone(), session.clone());
        (id, session)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.get(id)
            .filter(|s| s.started.elapsed() < SESSION_LIFE)
            .cloned()
    }

    fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// The session id of a request's cookie.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// The request's session, if it is logged in.
pub fn session(ui: &Ui, headers: &HeaderMap) -> Option<Session> {
    session_id(headers).and_then(|id| ui.sessions.get(&id))
}

/// Whether this request may act, with `csrf` from its form: the session
/// acting, or the error page to answer with.
pub fn authorize(ui: &Ui, headers: &HeaderMap, csrf: Option<&str>) -> Result<Session, UiError> {
    if !ui.writable() {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            "this console is read-only: actions are refused",
        ));
    }
    let Some(session) = session(ui, headers) else {
        return Err(UiError::new(
            StatusCode::UNAUTHORIZED,
            "log in first: actions need the console's token",
        ));
    };
    if csrf.is_none_or(|given| !constant_time_eq(given.as_bytes(), session.csrf.as_bytes())) {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and try again",
        ));
    }
    Ok(session)
}

/// Compares without stopping at the first difference, so the time taken
/// says nothing about how much of a secret was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /login`.
pub async fn login_page(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = session(&ui, &headers);
    let body = if !ui.writable() {
        html! { p { "This console is read-only; there is nothing to log in for." } }
    } else {
        html! {
            form method="post" action="/login" class="login" {
                label { "Token " input type="password" name="token" autofocus required; }
                " " button type="submit" { "Log in" }
            }
        }
    };
    page(&ui, session.as_ref(), "Log in", body).into_response()
}

/// `POST /login`: the token opens a session.
pub async fn login(State(ui): State<Arc<Ui>>, body: axum::body::Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let right = ui
        .token
        .as_deref()
        .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
    if !ui.writable() || !right {
        eprintln!("courier ui: a login was refused");
        return UiError::new(StatusCode::UNAUTHORIZED, "wrong token").into_response();
    }
    let (id, session) = ui.sessions.open();
    eprintln!("courier ui: {} logged in", session.who);
    let cookie = format!("{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/");
    ([(SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// `POST /logout`.
pub async fn logout(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let csrf = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    match authorize(&ui, &headers, csrf.as_deref()) {
        Ok(session) => {
            if let Some(id) = session_id(&headers) {
                ui.sessions.close(&id);
            }
            eprintln!("courier ui: {} logged out", session.who);
            let cookie = format!("{COOKIE_NAME}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/");
            ([(SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
