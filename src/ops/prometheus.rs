//! The `prometheus` feature: `GET /metrics`, `/health/live` and `/health/ready` on an
//! address the user picks, served by a small hyper server on the bot's own runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use crate::bot::{Bot, ConnectionState};
use crate::dispatch::DispatcherHandle;

/// Histogram buckets of the duration series, in seconds: from half a millisecond (a handler
/// that only answers) to ten seconds (the default request timeout is 30 s; slower is rare).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs a Prometheus recorder as the process's global [`metrics`] recorder,
/// once; later calls return the same handle. Fails if another global recorder is installed.
///
/// [`OpsServer`] calls it; call it yourself to render the metrics some other way.
pub fn install_recorder() -> crate::Result<PrometheusHandle> {
    static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = crate::sync::lock(&INSTALLED);
    if let Some(handle) = &*installed {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .map_err(|e| crate::Error::invalid("metrics buckets", e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).map_err(|_| {
        crate::Error::invalid(
            "metrics recorder",
            "another global metrics recorder is installed already; render it yourself instead \
             of starting an OpsServer",
        )
    })?;
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Configures an [`OpsServer`].
#[derive(Debug)]
pub struct OpsServerBuilder {
    state: watch::Receiver<ConnectionState>,
    dispatcher: Option<DispatcherHandle>,
}

impl OpsServerBuilder {
    /// Refreshes the dispatcher's gauges (conversations, queues) before every scrape.
    pub fn dispatcher(mut self, handle: DispatcherHandle) -> Self {
        self.dispatcher = Some(handle);
        self
    }

    /// Installs the Prometheus recorder ([`install_recorder`]), binds `addr` and serves until
    /// the returned server is dropped. Port 0 picks a free port
    /// ([`OpsServer::local_addr`] tells which).
    pub async fn serve(self, addr: SocketAddr) -> crate::Result<OpsServer> {
        let prometheus = install_recorder()?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for metrics on {addr}: {e}"),
            )
        })?;
        let local = listener.local_addr()?;
        let app = Arc::new(App {
            prometheus: prometheus.clone(),
            state: self.state,
            dispatcher: self.dispatcher,
        });
        let task = AbortOnDropHandle::new(tokio::spawn(accept(listener, app)));
        tracing::info!(addr = %local, "serving /metrics, /health/live, /health/ready");
        Ok(OpsServer {
            addr: local,
            prometheus,
            _task: task,
        })
    }
}

/// The operations endpoint: `GET /metrics` (Prometheus text format), `GET /health/live`
/// (200 while the process serves) and `GET /health/ready` (200 while the bot has an
/// authorised socket; 503 otherwise, with the connection state in the body). Dropping it
/// stops it.
///
/// ```no_run
/// # async fn demo(bot: trueconf_bot::bot::Bot, router: trueconf_bot::dispatch::Router)
/// # -> trueconf_bot::Result<()> {
/// use trueconf_bot::dispatch::Dispatcher;
/// use trueconf_bot::ops::OpsServer;
///
/// let dispatcher = Dispatcher::builder(bot.clone(), router).build()?;
/// let _ops = OpsServer::builder(&bot)
///     .dispatcher(dispatcher.handle())
///     .serve("0.0.0.0:9464".parse().unwrap())
///     .await?;
/// dispatcher.run_until_signal().await
/// # }
/// ```
#[derive(Debug)]
pub struct OpsServer {
    addr: SocketAddr,
    prometheus: PrometheusHandle,
    _task: AbortOnDropHandle<()>,
}

impl OpsServer {
    /// An endpoint whose readiness follows `bot`'s connection.
    pub fn builder(bot: &Bot) -> OpsServerBuilder {
        OpsServerBuilder {
            state: bot.state(),
            dispatcher: None,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `GET /metrics` returns now.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }
}

struct App {
    prometheus: PrometheusHandle,
    state: watch::Receiver<ConnectionState>,
    dispatcher: Option<DispatcherHandle>,
}

async fn accept(listener: TcpListener, app: Arc<App>) {
    let upkeep = app.prometheus.clone();
    let _upkeep = AbortOnDropHandle::new(tokio::spawn(async move {
        // Histogram samples wait in buckets until drained; without a scrape they would pile up.
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    }));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.respond(&req)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "metrics endpoint: connection ended");
            }
        });
    }
}

impl App {
    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        }
        match req.uri().path() {
            "/metrics" => {
                if let Some(d) = &self.dispatcher {
                    d.export_gauges();
                }
                let mut response = text(StatusCode::OK, self.prometheus.render());
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            "/health/live" => text(StatusCode::OK, "live\n".into()),
            "/health/ready" => {
                let state = self.state.borrow().clone();
                match state {
                    ConnectionState::Ready => text(StatusCode::OK, "ready\n".into()),
                    other => text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n{other:?}\n", other.metric_label()),
                    ),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /health/live or /health/ready\n".into(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
