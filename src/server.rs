//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (a recent poll succeeded) and `/status` (JSON: what the exporter knows and did).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Prometheus text exposition format, version 0.0.4.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the exporter is ready: after its first successful poll, while the last one is
/// younger than `max_age`, and while no forge refuses its credential.
#[derive(Debug)]
pub struct Readiness {
    last_success: Mutex<Option<Timestamp>>,
    max_age: Mutex<Duration>,
    /// Per forge whose credential is refused, why (already redacted).
    refused_credentials: Mutex<Vec<(String, String)>>,
}

impl Readiness {
    /// Not ready until a poll succeeds; stale after `max_age`.
    pub fn new(max_age: Duration) -> Readiness {
        Readiness {
            last_success: Mutex::new(None),
            max_age: Mutex::new(max_age),
            refused_credentials: Mutex::new(Vec::new()),
        }
    }

    /// Records which forges refuse their credential (forge name, why), after each tick.
    pub fn set_refused_credentials(&self, refused: Vec<(String, String)>) {
        *self
            .refused_credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = refused;
    }

    /// Records a successful poll.
    pub fn poll_succeeded(&self, at: Timestamp) {
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    /// Changes the allowed age (on configuration reload).
    pub fn set_max_age(&self, max_age: Duration) {
        *self.max_age.lock().unwrap_or_else(|p| p.into_inner()) = max_age;
    }

    /// `Ok` when ready at `now`, else why not.
    pub fn check(&self, now: Timestamp) -> Result<(), String> {
        let last = *self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        let max_age = *self.max_age.lock().unwrap_or_else(|p| p.into_inner());
        match last {
            None => Err("no successful poll yet".to_string()),
            Some(t) => {
                let age = now.duration_since(t);
                let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
                if age > max_age {
                    // Rounded up: "2s ago, more than the allowed 2s" would read as a bug.
                    let shown = age.as_secs() + u64::from(age.subsec_nanos() > 0);
                    Err(format!(
                        "last successful poll was {shown}s ago, more than the allowed {}s",
                        max_age.as_secs()
                    ))
                } else {
                    self.check_credentials()
                }
            }
        }
    }

    /// A refused credential makes every status of its forge wait, so the pod says so where
    /// `kubectl get pods` and the probe's events show it.
    fn check_credentials(&self) -> Result<(), String> {
        let refused = self
            .refused_credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if refused.is_empty() {
            return Ok(());
        }
        let each: Vec<String> = refused
            .iter()
            .map(|(forge, why)| format!("forge {forge} refuses its credential: {why}"))
            .collect();
        Err(format!(
            "{}; its statuses wait until the credential is fixed",
            each.join("; ")
        ))
    }
}

/// What the endpoints serve.
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// The `/status` document, rebuilt after every poll.
    pub status: RwLock<Bytes>,
}

impl ServerState {
    /// State with an empty `/status` document.
    pub fn new(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> ServerState {
        ServerState {
            metrics,
            readiness,
            status: RwLock::new(Bytes::from_static(b"{}\n")),
        }
    }

    /// Replaces the `/status` document.
    pub fn set_status(&self, document: Bytes) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = document;
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct ServeError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Answers one request.
pub fn handle(
    state: &ServerState,
    method: &Method,
    path: &str,
    now: Timestamp,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => respond(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            state.metrics.render(now),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => match state.readiness.check(now) {
            Ok(()) => respond(StatusCode::OK, "text/plain", "ok\n"),
            Err(why) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        "/status" => {
            let body = state
                .status
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            respond(StatusCode::OK, "application/json", body)
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz or /status\n",
        ),
    }
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    state: Arc<ServerState>,
}

impl Server {
    /// Binds `address` (port 0 picks a free port).
    pub async fn bind(address: SocketAddr, state: Arc<ServerState>) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError { address, source })?;
        Ok(Server { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` turns true, then lets open requests finish (up to `grace`).
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors, say: retrying at once would spin a core
                            // and flood the log; give the process a moment to free some.
                            tracing::warn!("cannot accept a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let state = Arc::clone(&self.state);
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let response = handle(&state, request.method(), request.uri().path(), Timestamp::now());
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), service);
                    let watched = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = watched.await {
                            tracing::debug!("metrics connection ended: {e}");
                        }
                    });
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ServerState {
        let metrics = Arc::new(Metrics::new("prod", "0.1.0", "abc").unwrap());
        ServerState::new(metrics, Arc::new(Readiness::new(Duration::from_secs(180))))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn body(r: Response<Full<Bytes>>) -> (StatusCode, String) {
        let status = r.status();
        let bytes =
            futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(r.into_body()))
                .unwrap()
                .unwrap()
                .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn readiness_flips_after_the_first_successful_poll_and_back_when_it_gets_old() {
        let s = state();
        let now = at("2026-11-22T12:00:00Z");
        assert_eq!(
            body(handle(&s, &Method::GET, "/readyz", now)),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: no successful poll yet\n".into()
            )
        );
        s.readiness.poll_succeeded(now);
        assert_eq!(
            body(handle(
                &s,
                &Method::GET,
                "/readyz",
                at("2026-11-22T12:03:00Z")
            )),
            (StatusCode::OK, "ok\n".into())
        );
        assert_eq!(
            body(handle(
                &s,
                &Method::GET,
                "/readyz",
                at("2026-11-22T12:03:01Z")
            )),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: last successful poll was 181s ago, more than the allowed 180s\n".into()
            )
        );
        let just_over = at("2026-11-22T12:03:00.400Z");
        s.readiness.set_max_age(Duration::from_millis(180_300));
        assert_eq!(
            body(handle(&s, &Method::GET, "/readyz", just_over)),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: last successful poll was 181s ago, more than the allowed 180s\n".into()
            )
        );
        assert_eq!(
            body(handle(&s, &Method::GET, "/healthz", now)),
            (StatusCode::OK, "ok\n".into())
        );
    }

    #[test]
    fn metrics_are_served_in_the_text_format_and_status_as_json() {
        let s = state();
        let r = handle(&s, &Method::GET, "/metrics", at("2026-11-22T12:00:00Z"));
        assert_eq!(r.headers()[header::CONTENT_TYPE], METRICS_CONTENT_TYPE);
        assert!(body(r).1.contains("flux_status_build_info"));
        s.set_status(Bytes::from_static(b"{\"cluster\":\"prod\"}"));
        let r = handle(&s, &Method::GET, "/status", at("2026-11-22T12:00:00Z"));
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body(r).1, "{\"cluster\":\"prod\"}");
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        let s = state();
        assert_eq!(
            body(handle(&s, &Method::GET, "/", at("2026-11-22T12:00:00Z"))).0,
            StatusCode::NOT_FOUND
        );
        let r = handle(&s, &Method::POST, "/metrics", at("2026-11-22T12:00:00Z"));
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn the_server_answers_on_a_real_socket_and_stops_on_shutdown() {
        let s = Arc::new(state());
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), Arc::clone(&s))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server.serve(stopped, Duration::from_secs(1)));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nok\n"), "{reply}");
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }
}
