//! The optional HTTP admin endpoint (`[approval] http_listen`): the same operations as the
//! Unix socket for approvers who are not on this host, each request carrying an OIDC access
//! token validated by the identity module (the `[[identity.issuer]]`s). The approver is the
//! token's subject, e-mail and groups (the issuer's `groups_claim`); `approvers.users` may
//! name a subject or an e-mail, `approvers.groups` a token group.
//!
//! Plain HTTP: bind it to loopback (or a private interface) and put TLS in front for
//! anything else, as the token is a bearer credential.
//!
//! - `GET /approvals` — list
//! - `GET /approvals/ID` — show
//! - `POST /approvals/ID/approve` — body `{"reason": "…"}` optional
//! - `POST /approvals/ID/deny` — body `{"reason": "…"}` required
//!
//! Answers are the socket's JSON (`{"ok": …}`): 200 when ok, 403 when refused, 401 without
//! a valid token, 503 before the issuers were discovered.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::{
    Approvals,
    admin::{self, MAX_REQUEST},
    decide::Peer,
};
use crate::identity::Authenticator;

/// Serves the endpoint until the task is dropped.
pub async fn serve(
    approvals: Arc<Approvals>,
    listener: TcpListener,
    authenticator: Arc<OnceLock<Arc<Authenticator>>>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "approval HTTP endpoint accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let approvals = Arc::clone(&approvals);
        let authenticator = Arc::clone(&authenticator);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let approvals = Arc::clone(&approvals);
                let authenticator = Arc::clone(&authenticator);
                async move {
                    let (status, body) = respond(&approvals, &authenticator, request).await;
                    Ok::<_, Infallible>(json_response(status, &body))
                }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %err, "approval HTTP connection ended");
            }
        });
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn refusal(status: StatusCode, error: &str) -> (StatusCode, Value) {
    (status, json!({ "ok": false, "error": error }))
}

async fn respond(
    approvals: &Approvals,
    authenticator: &OnceLock<Arc<Authenticator>>,
    request: Request<Incoming>,
) -> (StatusCode, Value) {
    let Some(authenticator) = authenticator.get() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "token validation is not available yet (identity issuers not discovered)",
        );
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let claims = match authenticator.authenticate(token, &[]).await {
        Ok(claims) => claims,
        Err(err) => return refusal(StatusCode::UNAUTHORIZED, &format!("invalid token: {err}")),
    };
    let peer = Peer {
        subject: Some(claims.subject),
        email: claims.email,
        groups: claims.groups,
        ..Peer::default()
    };
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    let operation = match (&method, segments.as_slice()) {
        (&Method::GET, ["approvals"]) => admin::Request::List,
        (&Method::GET, ["approvals", id]) => admin::Request::Show {
            id: (*id).to_owned(),
        },
        (&Method::POST, ["approvals", id, verb @ ("approve" | "deny")]) => {
            let id = (*id).to_owned();
            let reason = match reason(request.into_body()).await {
                Ok(reason) => reason,
                Err(problem) => return refusal(StatusCode::BAD_REQUEST, &problem),
            };
            if *verb == "approve" {
                admin::Request::Approve { id, reason }
            } else {
                admin::Request::Deny { id, reason }
            }
        }
        _ => return refusal(StatusCode::NOT_FOUND, "no such operation"),
    };
    let answer = admin::handle(approvals, &peer, operation).await;
    let status = if answer["ok"] == true {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    (status, answer)
}

/// `{"reason": "…"}` from a bounded body; an empty body is no reason.
async fn reason(body: Incoming) -> Result<Option<String>, String> {
    let limit = usize::try_from(MAX_REQUEST).unwrap_or(usize::MAX);
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|err| format!("reading the body: {err}"))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|err| format!("the body is not JSON: {err}"))?;
    Ok(value
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned))
}
