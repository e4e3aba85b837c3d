//! `GET /metrics` over HTTP/1.1 on `[metrics] listen`. Anything else is 404; request
//! bodies are never read. Connections are bounded in number and time, so a stuck scraper
//! cannot pile up tasks.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Semaphore};
use tracing::{debug, warn};

use crate::approval::{Approvals, store::State};

/// Scrapes served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;

/// The content type of prometheus-client's text encoding (OpenMetrics 1.0).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until the task is dropped. `approvals` (when configured) is counted at each
/// scrape, so the gauge is never stale.
pub async fn serve(listener: TcpListener, approvals: Option<Arc<Approvals>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "metrics listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let approvals = approvals.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request| {
                let approvals = approvals.clone();
                async move { Ok::<_, Infallible>(respond(&request, approvals.as_deref()).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(super::SCRAPE_TIMEOUT, connection).await {
                Ok(Err(err)) => debug!(error = %err, "metrics connection ended"),
                Err(_) => debug!("metrics connection timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
}

async fn respond(
    request: &Request<Incoming>,
    approvals: Option<&Approvals>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics\n".into(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    if let Some(approvals) = approvals {
        let pending = approvals
            .list()
            .await
            .iter()
            .filter(|approval| approval.state == State::Pending)
            .count();
        super::get().set_approvals_pending(pending);
    }
    text(StatusCode::OK, CONTENT_TYPE, super::get().render())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
