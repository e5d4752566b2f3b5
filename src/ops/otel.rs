//! The `otel` feature: the bot's spans (see [the module docs](super#traces)) exported as
//! OpenTelemetry traces.
//!
//! Bring any [`SpanExporter`]: `opentelemetry-otlp`'s for an OTLP collector (Jaeger, Tempo,
//! an OpenTelemetry Collector), stdout's for a look, or your own. This crate does not pull in
//! an OTLP client itself, so the transport (gRPC or HTTP, and its TLS) stays your choice.
//!
//! ```no_run
//! # fn demo(exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static) {
//! use tracing_subscriber::prelude::*;
//! use trueconf_bot::ops::otel;
//!
//! let provider = otel::tracer_provider("helpdesk-bot", exporter);
//! tracing_subscriber::registry()
//!     .with(otel::layer(&provider))
//!     .init();
//! // … run the bot; before exiting, flush what is still batched:
//! let _ = provider.shutdown();
//! # }
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
pub use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter};
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

/// A tracer provider that sends spans to `exporter` in batches (on a thread of its own, so
/// exporting never blocks the bot's tasks), with `service.name` set to `service_name`.
pub fn tracer_provider<E: SpanExporter + 'static>(
    service_name: impl Into<String>,
    exporter: E,
) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.into())
                .build(),
        )
        .with_batch_exporter(exporter)
        .build()
}

/// The `tracing` layer that turns the bot's spans into OpenTelemetry spans of `provider`:
/// add it to your subscriber.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("trueconf-bot"))
}
