//! `format` on hostile texts next to plain text of the same size (security review, issue 21
//! item 4): every function must stay linear, so a chat user cannot stall a runtime worker.
//!
//! `cargo bench --bench format -- --warm-up-time 1 --measurement-time 3`; add a filter such as
//! `'/64KiB'` or `'^mentions/'` to run a subset. Goals: a 64 KiB hostile text within 3× of
//! 64 KiB plain text, and 1 MiB about 16× 64 KiB.
//!
//! `cargo bench --bench format -- --ratios` checks the first goal and exits non-zero when a
//! case misses it. It times each case as the fastest of many runs (the least disturbed by
//! whatever else the machine does) and compares cost per byte of *work*: the larger of the
//! bytes read and the bytes written. Escaping `<` writes four bytes for one, and a split of
//! a text of open tags closes and re-opens them in every part: such a function is as fast as
//! it can be when it costs what its output costs to write, and a quadratic one still fails,
//! since its time grows faster than any output it writes.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
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

/// Runs a function on a text; returns the bytes it wrote (0 for those that only read).
type Run = fn(&str) -> usize;

fn split_bytes(t: &str, mode: &ParseMode) -> usize {
    split_text(t, mode, 4096).iter().map(String::len).sum()
}

fn functions() -> [(&'static str, Run); 8] {
    [
        ("mentions", |t| usize::from(mentions(t, "bot@srv.example"))),
        ("visible_len_md", |t| {
            black_box(visible_len(t, &ParseMode::Markdown));
            0
        }),
        ("visible_len_html", |t| {
            black_box(visible_len(t, &ParseMode::Html));
            0
        }),
        ("split_text", |t| split_bytes(t, &ParseMode::Text)),
        ("split_md", |t| split_bytes(t, &ParseMode::Markdown)),
        ("split_html", |t| split_bytes(t, &ParseMode::Html)),
        ("escape_md", |t| markdown::escape(t).len()),
        ("escape_html", |t| html::escape(t).len()),
    ]
}

/// The goal the `--ratios` check holds every 64 KiB case to.
const MAX_RATIO: f64 = 3.0;

/// Fastest of `runs` calls of `run` on `text`, in seconds, and the bytes it wrote.
fn fastest(run: Run, text: &str, runs: usize) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut wrote = 0;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        wrote = run(black_box(text));
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, wrote)
}

/// `--ratios`: each 64 KiB hostile case's cost per byte of work over plain text's; false
/// when one is above [`MAX_RATIO`].
fn ratios() -> bool {
    let texts = inputs(64 << 10);
    let mut ok = true;
    println!(
        "{:<18} {:<16} {:>10} {:>10} {:>7}",
        "function", "input", "µs", "work KiB", "ratio"
    );
    for (name, run) in functions() {
        let mut plain_cost = None;
        for (kind, text) in &texts {
            let (secs, wrote) = fastest(run, text, 200);
            let work = text.len().max(wrote);
            let cost = secs / work as f64;
            let ratio = cost / *plain_cost.get_or_insert(cost);
            let verdict = if ratio > MAX_RATIO { "  > goal" } else { "" };
            ok &= ratio <= MAX_RATIO;
            println!(
                "{name:<18} {kind:<16} {:>10.1} {:>10.1} {ratio:>7.2}{verdict}",
                secs * 1e6,
                work as f64 / 1024.0
            );
        }
    }
    ok
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

fn main() {
    if std::env::args().any(|a| a == "--ratios") {
        if !ratios() {
            eprintln!("a hostile 64 KiB text costs more than {MAX_RATIO}× plain text per byte");
            std::process::exit(1);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
