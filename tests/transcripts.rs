//! One recorded transcript per example (`tests/transcripts/NAME.jsonl`, made with
//! `cargo run --example NAME -- --record tests/transcripts/NAME.jsonl`), replayed against the
//! example's bot: the test fails when an example's bot no longer answers as recorded.
//!
//! `cargo test --all-features` builds the examples next to this test's binary (a lone
//! `cargo test --test transcripts` does not: build them first with
//! `cargo build --all-features --examples`); each one runs in emulator mode with `--replay`,
//! which exits non-zero and prints the differences when there are any.
//!
//! A bot reply that varies from run to run (the middleware example's counters, report_bot's
//! random ticket numbers, the clock in filters) carries a hand-added `"contains"` in its transcript line.
//!
//! Bots that act on their own (`webhook` posts when its HTTP endpoint is called,
//! `add_big_list_users_to_channel` creates a channel and adds 150 users, `multi_bot`'s HR bot
//! creates its inbox and opens a chat) have transcripts whose bot entries come with no user
//! entry before them; the example's driver (what makes the bot act) runs during the replay
//! too, and the replay checks that the bot does what was recorded (see
//! `trueconf_bot::testkit::Transcript`, "The bot acting on its own").
//!
//! Every example is either in [`EXAMPLES`] or in [`NOT_REPLAYED`] with the reason;
//! `every_example_has_a_transcript_or_a_reason` fails for a new example in neither.

use std::path::PathBuf;
use std::process::Command;

const EXAMPLES: &[&str] = &[
    "quickstart",
    "commands",
    "echo",
    "admin",
    "middleware",
    "multi_chat",
    "survey",
    "filters",
    "buttons_bot",
    "contacts",
    "report_bot",
    "fsm_form",
    "file_bot",
    "update_token",
    "webhook",
    "multi_bot",
    "add_big_list_users_to_channel",
];

/// Examples without a transcript, and why. Each is a measurement tool, not a conversation: it
/// runs the emulator's load generator (tens of thousands of generated events, which the
/// emulator does not record: `Sim::run_load` switches recording off) and reports numbers that
/// vary from run to run.
const NOT_REPLAYED: &[(&str, &str)] = &[
    ("metrics_plot", "load run drawn as a PNG; no conversation"),
    (
        "raw_echo",
        "throughput baseline on raw tungstenite; load run only",
    ),
    ("runtime_echo", "throughput of the runtime; load run only"),
];

fn example_binary(name: &str) -> PathBuf {
    // target/debug/deps/transcripts-HASH → target/debug/examples/NAME
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory");
    debug.join("examples").join(name)
}

#[test]
fn every_example_answers_its_recorded_transcript() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for name in EXAMPLES {
        let binary = example_binary(name);
        assert!(
            binary.exists(),
            "{} is missing: run `cargo test --all-features` (it builds the examples)",
            binary.display()
        );
        let transcript = root.join("tests/transcripts").join(format!("{name}.jsonl"));
        let output = Command::new(&binary)
            .arg("--replay")
            .arg(&transcript)
            .env_remove("TRUECONF_SERVER")
            .env("RUST_LOG", "error")
            .output()
            .expect("the example runs");
        if !output.status.success() {
            failures.push(format!(
                "{name}: {}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_example_has_a_transcript_or_a_reason() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<String> = std::fs::read_dir(root.join("examples"))
        .expect("the examples directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            // examples/common is the shared runner (a module, not an example).
            (path.extension()? == "rs").then_some(stem)
        })
        .collect();
    examples.sort();
    let mut missing = Vec::new();
    for name in &examples {
        let replayed = EXAMPLES.contains(&name.as_str());
        let excused = NOT_REPLAYED.iter().any(|(n, _)| n == name);
        assert!(
            !(replayed && excused),
            "{name} is both replayed and excluded"
        );
        if !replayed && !excused {
            missing.push(name.clone());
        }
        if replayed {
            let transcript = root.join("tests/transcripts").join(format!("{name}.jsonl"));
            assert!(transcript.exists(), "{} is missing", transcript.display());
        }
    }
    assert!(
        missing.is_empty(),
        "examples with neither a transcript (tests/transcripts/NAME.jsonl, listed in EXAMPLES) \
         nor a reason in NOT_REPLAYED: {missing:?}"
    );
    for name in EXAMPLES.iter().chain(NOT_REPLAYED.iter().map(|(n, _)| n)) {
        assert!(
            examples.iter().any(|e| e == name),
            "{name} is listed but examples/{name}.rs does not exist"
        );
    }
}
