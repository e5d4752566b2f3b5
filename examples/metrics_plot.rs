//! The dashboard's series (docs/grafana/trueconf-bot.json) from a real load run, as a PNG:
//! events/s, handler p50/p99, queued events and the deepest chat queue, requests by outcome,
//! reconnects.
//!
//! ```sh
//! cargo run --release --example metrics_plot -- docs/grafana/load-run.png
//! ```
//!
//! It starts the emulator, an echo bot (`Bot` + `Dispatcher`, handlers that take 0–2 ms) with
//! the `/metrics` endpoint, and scrapes it over HTTP every 250 ms, as Prometheus would, while
//! the emulator's load generator pushes two phases of events over loopback WebSocket with a
//! server restart in between. The PNG is drawn from the scraped text only, with the
//! dashboard's formulas (rates over 1 s, `histogram_quantile` over the buckets).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trueconf_bot::bot::ReconnectPolicy;
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::ops::OpsServer;
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One scrape: every series (name with its labels, as printed) and its value.
struct Sample {
    at: f64,
    series: BTreeMap<String, f64>,
}

impl Sample {
    fn get(&self, key: &str) -> f64 {
        self.series.get(key).copied().unwrap_or(0.0)
    }

    /// The sum of every series whose key starts with `prefix` and contains `part`.
    fn sum(&self, prefix: &str, part: &str) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.contains(part))
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(addr: SocketAddr) -> Result<String, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

fn parse(at: f64, page: &str) -> Sample {
    let series = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect();
    Sample { at, series }
}

/// `histogram_quantile(q, rate(trueconf_handler_duration_seconds_bucket[window]))`, in ms.
fn quantile(q: f64, now: &Sample, before: &Sample) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = now
        .series
        .iter()
        .filter_map(|(k, v)| {
            let le = k
                .strip_prefix("trueconf_handler_duration_seconds_bucket{le=\"")?
                .strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v - before.get(k)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower * 1000.0);
            }
            let within = (rank - below) / (count - below).max(f64::MIN_POSITIVE);
            return Some((lower + (le - lower) * within) * 1000.0);
        }
        (lower, below) = (le, count);
    }
    None
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "load-run.png".into());
    let sim = Arc::new(Sim::start(SimConfig::default()).await?);
    let bot = trueconf_bot::harness::bot_builder(&sim)
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(200))
                .max_delay(Duration::from_millis(500))
                .max_retries(None),
        )
        .build()?;
    let router = Router::new().message(|msg: MessageContext| async move {
        let work = rand::random_range(0..2000u64);
        tokio::time::sleep(Duration::from_micros(work)).await;
        msg.answer(msg.text().unwrap_or_default()).await?;
        HandlerResult::Ok(())
    });
    let dispatcher = Dispatcher::builder(bot.clone(), router)
        .queue_capacity(256)
        .build()?;
    let handle = dispatcher.handle();
    let ops = OpsServer::builder(&bot)
        .dispatcher(handle.clone())
        .serve("127.0.0.1:0".parse()?)
        .await?;
    let run = tokio::spawn(dispatcher.run());

    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let scraper = {
        let (samples, addr) = (samples.clone(), ops.local_addr());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                if let Ok(page) = scrape(addr).await {
                    let at = started.elapsed().as_secs_f64();
                    samples.lock().unwrap().push(parse(at, &page));
                }
            }
        })
    };
    let phase = |events, rate| LoadSpec {
        events,
        chats: 200,
        window: 2000,
        timeout: Duration::from_secs(120),
        connect_timeout: Duration::from_secs(30),
        rate: Some(rate),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = sim.run_load(phase(8_000, 1_500.0)).await?;
    println!("phase 1: {first:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.faults().restart(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = sim.run_load(phase(16_000, 4_000.0)).await?;
    println!("phase 2: {second:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    scraper.abort();
    handle.shutdown();
    run.await??;

    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let last = samples.last().ok_or("no scrape")?;
    println!(
        "scraped {} times; events received {}, handled {}, sendMessage ok {}, reconnects {}",
        samples.len(),
        last.sum("trueconf_events_received_total", ""),
        last.sum("trueconf_events_handled_total", "outcome=\"handled\""),
        last.get("trueconf_requests_total{method=\"sendMessage\",outcome=\"ok\"}"),
        last.get("trueconf_reconnects_total"),
    );
    plot(&samples, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Rates over a 1 s window (4 scrapes), like `rate(x[1s])`.
fn rate(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    samples
        .windows(5)
        .map(|w| {
            let (a, b) = (&w[0], &w[4]);
            (b.at, (value(b) - value(a)).max(0.0) / (b.at - a.at))
        })
        .collect()
}

fn plot(samples: &[Sample], png: &std::path::Path) -> Result<(), BoxError> {
    use plotters::prelude::*;

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("{FONT}: not a usable font"))?;

    let t_max = samples.last().map_or(1.0, |s| s.at);
    let events = rate(samples, |s| s.sum("trueconf_events_received_total", ""));
    let handled = rate(samples, |s| {
        s.sum("trueconf_events_handled_total", "outcome=\"handled\"")
    });
    let p99: Vec<(f64, f64)> = samples
        .windows(5)
        .filter_map(|w| Some((w[4].at, quantile(0.99, &w[4], &w[0])?)))
        .collect();
    let p50: Vec<(f64, f64)> = samples
        .windows(5)
        .filter_map(|w| Some((w[4].at, quantile(0.5, &w[4], &w[0])?)))
        .collect();
    let queued: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.at, s.get("trueconf_queued_events")))
        .collect();
    let deepest: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.at, s.get("trueconf_chat_queue_depth_max")))
        .collect();
    let ok = rate(samples, |s| {
        s.sum("trueconf_requests_total", "outcome=\"ok\"")
    });
    let failed = rate(samples, |s| {
        s.sum("trueconf_requests_total", "outcome=")
            - s.sum("trueconf_requests_total", "outcome=\"ok\"")
    });
    let reconnects: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.at, s.get("trueconf_reconnects_total")))
        .collect();
    let ready: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.at, s.get("trueconf_connection_state{state=\"ready\"}")))
        .collect();

    type Series<'a> = Vec<(&'a str, &'a [(f64, f64)], RGBColor)>;
    let (red, blue, green, grey) = (
        RGBColor(200, 60, 20),
        RGBColor(40, 90, 200),
        RGBColor(60, 150, 60),
        RGBColor(120, 120, 120),
    );
    let panels: [(&str, Series); 4] = [
        (
            "events/s (received, handled)",
            vec![("received", &events, blue), ("handled", &handled, red)],
        ),
        (
            "handler latency, ms (p50, p99)",
            vec![("p50", &p50, blue), ("p99", &p99, red)],
        ),
        (
            "queue depth (all chats, deepest chat)",
            vec![("queued", &queued, blue), ("deepest chat", &deepest, red)],
        ),
        (
            "requests/s by outcome; reconnects; ready",
            vec![
                ("ok /s", &ok, green),
                ("failed /s", &failed, red),
                ("reconnects ×500", &[], blue),
                ("ready ×1000", &[], grey),
            ],
        ),
    ];
    let scaled = |v: &[(f64, f64)], k: f64| -> Vec<(f64, f64)> {
        v.iter().map(|&(t, y)| (t, y * k)).collect()
    };
    let (reconnects, ready) = (scaled(&reconnects, 500.0), scaled(&ready, 1000.0));

    let root = BitMapBackend::new(png, (1400, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "trueconf-bot under an emulator load run (scraped from /metrics every 250 ms)",
        ("sans-serif", 22),
    )?;
    for (area, (title, series)) in root.split_evenly((2, 2)).into_iter().zip(panels) {
        let mut all: Vec<&[(f64, f64)]> = series.iter().map(|s| s.1).collect();
        if title.starts_with("requests") {
            all.push(&reconnects);
            all.push(&ready);
        }
        let y_max = all
            .iter()
            .flat_map(|s| s.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (name, points, colour) in series {
            let points: Vec<(f64, f64)> = match name {
                "reconnects ×500" => reconnects.clone(),
                "ready ×1000" => ready.clone(),
                _ => points.to_vec(),
            };
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
