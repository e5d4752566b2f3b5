//! Traces exported through OpenTelemetry (feature `otel`): one trace per event, with the
//! handler and every request it made inside it, across the hop into the conversation actor.
//!
//! Run: `cargo test --features testkit,otel --test otel`. The exporter is a test double that
//! keeps the finished spans in memory (what an OTLP collector would receive).

#![cfg(feature = "otel")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::SpanData;
use tracing_subscriber::prelude::*;
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::ops::otel::{self, SpanExporter};
use trueconf_bot::testkit::{Sim, SimConfig};

/// An exporter that records every span it is given.
#[derive(Debug, Clone, Default)]
struct Recorded(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Recorded {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    attr(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_a_trace_with_its_handler_and_requests_inside() {
    let recorded = Recorded::default();
    let provider = otel::tracer_provider("ops-test", recorded.clone());
    tracing_subscriber::registry()
        .with(otel::layer(&provider))
        .init();

    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap();
    let router = Router::new().message(|msg: MessageContext| async move {
        // Two requests from one handler: both must land in this event's trace.
        msg.answer("one").await?;
        msg.answer("two").await?;
        HandlerResult::Ok(())
    });
    let dispatcher = Dispatcher::builder(bot, router).build().unwrap();
    let handle = dispatcher.handle();
    let run = tokio::spawn(dispatcher.run());
    sim.wait_for_bot(Duration::from_secs(30)).await.unwrap();
    let mut sent = Vec::new();
    for login in ["ann", "bob"] {
        let user = sim.user(login);
        let chat = user.create_p2p_with_bot().await.unwrap();
        let message = user.send_text(&chat, "hello").await.unwrap();
        sim.expect_messages(&chat, 2).await.unwrap();
        sent.push((chat, message));
    }
    handle.shutdown();
    run.await.unwrap().unwrap();
    provider.force_flush().unwrap();

    let spans = recorded.0.lock().unwrap().clone();
    for (chat, message) in &sent {
        let event = spans
            .iter()
            .find(|s| s.name == "event" && text(s, "message") == *message)
            .unwrap_or_else(|| panic!("no event span for message {message}"));
        assert_eq!(text(event, "chat"), *chat);
        assert_eq!(text(event, "kind"), "Message");
        assert_eq!(text(event, "method"), "sendMessage");
        assert_eq!(text(event, "ack"), "on_receive");
        assert_eq!(text(event, "outcome"), "handled");
        assert!(
            event.parent_span_id == opentelemetry::trace::SpanId::INVALID,
            "an event starts its own trace"
        );
        let trace = event.span_context.trace_id();
        let handler = spans
            .iter()
            .find(|s| s.name == "handler" && s.parent_span_id == event.span_context.span_id())
            .expect("the handler span is a child of the event span");
        assert_eq!(handler.span_context.trace_id(), trace);
        let requests: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "request" && s.parent_span_id == handler.span_context.span_id())
            .collect();
        assert_eq!(
            requests.len(),
            2,
            "both sendMessage calls inside the handler"
        );
        for r in requests {
            assert_eq!(r.span_context.trace_id(), trace);
            assert_eq!(text(r, "method"), "sendMessage");
            assert!(attr(r, "id").is_some(), "the request id is recorded");
        }
    }
    let _ = provider.shutdown();
}
