//! Keeps web pages out of a development server.
//!
//! The emulator listens on loopback only, but a page in the developer's browser can still
//! reach it: through DNS rebinding (a hostile name that resolves to 127.0.0.1, so the
//! request carries that name as its `Host`), or with a cross-site "simple" request (a form
//! or `fetch` with a `text/plain` body needs no CORS preflight). A real bot client sends a
//! loopback `Host`, no foreign `Origin`, and JSON bodies, so the guard refuses the rest:
//! a foreign `Host` or `Origin` (403) and a token request whose body is not JSON (415).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::testkit::shared::Shared;

/// Whether `authority` (a `Host` value or an origin's host part) names this machine.
#[cfg(test)]
fn is_loopback(authority: &str) -> bool {
    names_this_server(authority, None)
}

/// Whether `authority` is a loopback name, or `bound` (the explicitly chosen listening
/// address, when it is not loopback; bound to every address, any IP literal: DNS rebinding
/// needs a host *name*, so refusing names still keeps it out).
fn names_this_server(authority: &str, bound: Option<IpAddr>) -> bool {
    let host = match authority.strip_prefix('[') {
        // `[::1]:port`
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| {
            ip.is_loopback() || bound.is_some_and(|b| b == ip || b.is_unspecified())
        })
}

/// Why a request is refused, if it is.
fn refusal(
    method: &Method,
    path: &str,
    authority: Option<&str>,
    headers: &HeaderMap,
    bound: Option<IpAddr>,
) -> Option<(StatusCode, String)> {
    let is_loopback = |authority: &str| names_this_server(authority, bound);
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    // HTTP/1 names the host in `Host`, HTTP/2 in the `:authority` of the URI.
    match text(header::HOST).or(authority) {
        Some(host) if is_loopback(host) => {}
        Some(host) => {
            return Some((
                StatusCode::FORBIDDEN,
                format!("Host {host:?} is not this machine (DNS rebinding?)"),
            ));
        }
        None => return Some((StatusCode::FORBIDDEN, "no Host header".into())),
    }
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin.split("://").nth(1).unwrap_or(origin);
        if !is_loopback(authority) {
            return Some((
                StatusCode::FORBIDDEN,
                format!("cross-site request from origin {origin:?}"),
            ));
        }
    }
    let json =
        text(header::CONTENT_TYPE).is_some_and(|t| t.trim_start().starts_with("application/json"));
    if method == Method::POST && path.contains("token") && !json {
        return Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "token requests take an application/json body".into(),
        ));
    }
    None
}

/// The axum middleware.
pub(super) async fn guard(
    State(shared): State<Arc<Shared>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let uri = request.uri();
    let authority = uri.authority().map(|a| a.as_str());
    let bound = Some(shared.cfg.bind).filter(|ip| !ip.is_loopback());
    match refusal(
        request.method(),
        uri.path(),
        authority,
        request.headers(),
        bound,
    ) {
        Some((status, why)) => {
            tracing::warn!(%why, "emulator refused a request");
            (status, why).into_response()
        }
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_only() {
        for ok in [
            "127.0.0.1:4309",
            "localhost",
            "localhost:1",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:4309",
            "127.0.0.1.evil",
            "[::2]:1",
        ] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn an_explicit_address_adds_only_itself_and_never_names() {
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        assert!(names_this_server("192.168.1.5:4309", Some(lan)));
        assert!(!names_this_server("192.168.1.6:4309", Some(lan)));
        assert!(!names_this_server("attacker.example:4309", Some(lan)));
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(names_this_server("10.0.0.7:4309", Some(any)));
        assert!(!names_this_server("attacker.example", Some(any)));
    }
}
