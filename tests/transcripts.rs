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
//! Not here: examples whose bot acts on its own rather than in answer to a user (`webhook`
//! posts when its HTTP endpoint is called, `add_big_list_users_to_channel` and `multi_bot`
//! create chats at start), which a replay of the users' side cannot drive, and `fsm_form`,
//! `file_bot` and `update_token`, whose scripts do not go through the shared runner that
//! records.

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
