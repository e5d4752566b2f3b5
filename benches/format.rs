//! `format` on hostile texts next to plain text of the same size (security review, issue 21
//! item 4): every function must stay linear, so a chat user cannot stall a runtime worker.
//!
//! `cargo bench --bench format -- --warm-up-time 1 --measurement-time 3`; add a filter such as
//! `'/64KiB'` or `'^mentions/'` to run a subset. Goals: a 64 KiB hostile text within 3× of
//! 64 KiB plain text, and 1 MiB about 16× 64 KiB.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use std::hint::black_box;
use trueconf_bot::format::{html, markdown, mentions, split_text, visible_len};
use trueconf_bot::types::ParseMode;

const SIZES: [(usize, &str); 2] = [(64 << 10, "64KiB"), (1 << 20, "1MiB")];

/// `unit` repeated up to `n` bytes (whole units only).
fn fill(unit: &str, n: usize) -> String {
    unit.repeat(n / unit.len())
}

/// Inputs of about `n` bytes: plain prose, then texts built to defeat a scanner.
fn inputs(n: usize) -> Vec<(&'static str, String)> {
    let mut close = fill("[", n - 1);
    close.push(']');
    let mention = format!("<a {}", fill("href=\"trueconf:x ", n - 3));
    vec![
        (
            "plain",
            fill(
                "lorem ipsum dolor sit amet, consectetur adipiscing elit ",
                n,
            ),
        ),
        ("lbracket", fill("[", n)),
        // One `]` at the very end: every `[` finds it, none is a link.
        ("lbracket_close", close),
        ("star", fill("*", n)),
        ("lt", fill("<", n)),
        ("link_open", fill("[a](", n)),
        ("word", fill("x", n)),
        // Each `href="trueconf:` is inside the one unclosed `<a` tag.
        ("href", mention),
        // Tags that stay open: every part of a split re-opens them.
        ("nested_b", fill("<b>x ", n)),
    ]
}

type Run = fn(&str) -> usize;

fn functions() -> [(&'static str, Run); 8] {
    [
        ("mentions", |t| usize::from(mentions(t, "bot@srv.example"))),
        ("visible_len_md", |t| visible_len(t, &ParseMode::Markdown)),
        ("visible_len_html", |t| visible_len(t, &ParseMode::Html)),
        ("split_text", |t| {
            split_text(t, &ParseMode::Text, 4096).len()
        }),
        ("split_md", |t| {
            split_text(t, &ParseMode::Markdown, 4096).len()
        }),
        ("split_html", |t| {
            split_text(t, &ParseMode::Html, 4096).len()
        }),
        ("escape_md", |t| markdown::escape(t).len()),
        ("escape_html", |t| html::escape(t).len()),
    ]
}

fn hostile(c: &mut Criterion) {
    let texts: Vec<_> = SIZES
        .iter()
        .flat_map(|(n, size)| inputs(*n).into_iter().map(move |(k, t)| (*size, k, t)))
        .collect();
    for (name, run) in functions() {
        let mut g = c.benchmark_group(name);
        // Quadratic code takes seconds per call here; flat sampling keeps that run finite.
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
        for (size, kind, text) in &texts {
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_with_input(BenchmarkId::new(*kind, size), text, |b, t| {
                b.iter(|| run(black_box(t)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, hostile);
criterion_main!(benches);
