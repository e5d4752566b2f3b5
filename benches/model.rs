//! The model's hot paths: frame decode/encode, event payload parsing per content kind (from the
//! protocol fixtures) and `format::split_text`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use trueconf_bot::format::split_text;
use trueconf_bot::protocol::Frame;
use trueconf_bot::types::{Event, ParseMode};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `event.*` fixture, minified as it comes off the wire.
fn event_fixtures() -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("event.") && n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let v: serde_json::Value = serde_json::from_str(&fixture(&n)).expect("fixture JSON");
            let label = n.trim_start_matches("event.").trim_end_matches(".json");
            (label.to_owned(), v.to_string())
        })
        .collect()
}

fn frames(c: &mut Criterion) {
    let text: serde_json::Value =
        serde_json::from_str(&fixture("event.sendMessage.plain.json")).expect("fixture");
    let text = text.to_string();
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("decode_sendMessage", |b| {
        b.iter(|| Frame::decode(black_box(&text)).expect("frame"))
    });
    let frame = Frame::decode(&text).expect("frame");
    g.bench_function("encode_sendMessage", |b| {
        b.iter(|| black_box(&frame).encode())
    });
    let ack = Frame::ack(1042);
    g.bench_function("encode_ack", |b| b.iter(|| black_box(&ack).encode()));
    g.finish();
}

fn events(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_decode");
    for (label, text) in event_fixtures() {
        let Ok(Frame::Request {
            method, payload, ..
        }) = Frame::decode(&text)
        else {
            continue;
        };
        g.throughput(Throughput::Bytes(payload.get().len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), &payload, |b, p| {
            b.iter(|| Event::decode(black_box(&method), black_box(p)))
        });
    }
    g.finish();
}

fn split(c: &mut Criterion) {
    let words = "lorem ipsum dolor sit amet, consectetur adipiscing elit ";
    let plain = words.repeat(200); // ~11 KB
    let html = format!("<b>{}</b> <i>{}</i>", words.repeat(100), words.repeat(100));
    let markdown = format!("**{}** _{}_", words.repeat(100), words.repeat(100));
    let mut g = c.benchmark_group("split_text");
    for (name, text, mode) in [
        ("text_11k", &plain, ParseMode::Text),
        ("html_11k", &html, ParseMode::Html),
        ("markdown_11k", &markdown, ParseMode::Markdown),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| split_text(black_box(text), &mode, 4096))
        });
    }
    g.finish();
}

criterion_group!(benches, frames, events, split);
criterion_main!(benches);
