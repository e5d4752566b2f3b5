//! Secrets stay secret: every log line (TRACE, every crate) of a full session and every `Debug`
//! and `Display` of the public handles is searched for the password and the tokens; TLS
//! verification is on by default and turning it off is logged once.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use trueconf_bot::bot::{Bot, ReconnectPolicy};
use trueconf_bot::connection::{ConnectionState, FailureKind, TlsOptions};
use trueconf_bot::testkit::{Account, Sim, SimConfig};
use trueconf_bot::transfer::TransferConfig;

const PASSWORD: &str = "Pw-7f3a9c1e5b";
const TLS_OFF_WARNING: &str = "TLS certificate verification is disabled";
const PLAIN_WARNING: &str = "TLS is off";

/// The global TRACE log of this test binary (the runtime logs from its own tasks).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(buf))
            .init();
        buf
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

struct Writer(&'static Mutex<Vec<u8>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The forms a secret could leak in: whole, and the claims and signature parts of a JWT (the
/// header part is the same for every token and secret in none).
fn needles(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    out.extend(
        secret
            .split('.')
            .skip(1)
            .filter(|p| p.len() >= 8)
            .map(str::to_owned),
    );
    out
}

fn assert_absent(haystack: &str, secrets: &[String], context: &str) {
    for s in secrets {
        for n in needles(s) {
            if let Some(at) = haystack.find(&n) {
                let line_start = haystack[..at].rfind('\n').map_or(0, |i| i + 1);
                panic!(
                    "{context} contains a secret ({}…) in: {}",
                    &n[..n.len().min(6)],
                    &haystack[line_start..at]
                        .chars()
                        .take(300)
                        .collect::<String>()
                );
            }
        }
    }
}

fn sim_config(tls: bool) -> SimConfig {
    SimConfig {
        tls,
        bot: Account::new("bot", PASSWORD),
        // Short-lived tokens: the reconnect after the restart needs a fresh login.
        token_ttl: Duration::from_secs(3),
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_or_debug_output_during_a_full_session() {
    let _ = logs();
    let sim = Sim::start(sim_config(true)).await.unwrap();
    let builder = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .https(true)
        .verify_ssl(false)
        .credentials("bot", PASSWORD)
        .receive_unread(true)
        .request_timeout(Duration::from_secs(3))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(50))
                .max_delay(Duration::from_millis(200))
                .max_retries(None),
        );
    let builder_debug = format!("{builder:?}");
    let bot = builder.build().unwrap();
    let mut events = bot.events().unwrap();
    bot.start().await.unwrap();
    let mut tokens = vec![bot.token().unwrap().expose().to_owned()];

    // Requests and events.
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "hello").await.unwrap();
    let mut got = 0;
    while got < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        ev.ack.ack();
        got += 1;
    }
    bot.send_message(&chat, "hi alice").await.unwrap();
    bot.get_chats(10, 1).await.unwrap();
    let failed = bot.get_chat_by_id("no-such-chat").await.unwrap_err();

    // The token expires; the server restarts; the bot logs in again with the password.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut st = bot.state();
    sim.faults().restart(Duration::from_millis(100));
    st.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .await
        .unwrap();
    st.wait_for(|s| matches!(s, ConnectionState::Ready))
        .await
        .unwrap();
    bot.get_chats(10, 1).await.unwrap();
    let second = bot.token().unwrap().expose().to_owned();
    assert_ne!(second, tokens[0], "a new token was fetched");
    tokens.push(second);
    assert!(
        sim.stats().auths >= 2,
        "re-authorised after the restart: {:?}",
        sim.stats()
    );
    bot.shutdown().await.unwrap();

    let debug = format!(
        "{bot:?} {builder_debug} {:?} {} {failed:?} {failed} {:?}",
        bot.token(),
        bot.token().unwrap(),
        *st.borrow()
    );
    let mut secrets = tokens.clone();
    secrets.push(PASSWORD.to_owned());
    assert_absent(&debug, &secrets, "Debug/Display output");
    let text = logged();
    assert!(text.contains("TRACE"), "the capture works at TRACE level");
    assert!(text.contains("authorised"), "the session was logged");
    assert_absent(&text, &secrets, "the TRACE log");
    eprintln!(
        "SECRETS log bytes searched: {}, secrets: {}",
        text.len(),
        secrets.len()
    );
    // verify_ssl(false) warned once, not once per connection.
    assert_eq!(
        text.matches(TLS_OFF_WARNING).count(),
        1,
        "{TLS_OFF_WARNING}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_is_on_by_default() {
    let _ = logs();
    let sim = Sim::start(sim_config(true)).await.unwrap();
    let b = || {
        Bot::builder("127.0.0.1")
            .port(sim.addr().port())
            .token(sim.bot_token())
            .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(10)))
    };
    // The emulator's self-signed certificate is refused, for good and at once.
    let bot = b().build().unwrap();
    let err = bot.start().await.unwrap_err();
    let state = bot.state().borrow().clone();
    match state {
        ConnectionState::Failed(f) => assert_eq!(f.kind, FailureKind::Tls, "{f}"),
        other => panic!("expected a TLS failure, got {other:?} ({err})"),
    }
    assert_eq!(sim.stats().connections, 0);
    // Trusting its certificate explicitly works.
    let pem = sim.cert_pem().unwrap().as_bytes().to_vec();
    let bot = b().ca_certificate_pem(pem).build().unwrap();
    bot.start().await.unwrap();
    bot.shutdown().await.unwrap();
}

#[test]
fn tls_options_verify_by_default() {
    assert!(TlsOptions::default().verify, "{:?}", TlsOptions::default());
}

#[tokio::test]
async fn plain_http_is_warned_about_at_build() {
    let _ = logs();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let _bot = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .https(false)
        .token(sim.bot_token())
        .build()
        .unwrap();
    assert!(
        logged().contains(PLAIN_WARNING),
        "no {PLAIN_WARNING:?} warning"
    );
}

/// The self-authorising `downloadUrl` (its `token` query) is a secret too: not in
/// `FileInfo`'s `Debug`, not in the warning of a resumed download, not in the error of a
/// failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_download_token_in_logs_errors_or_debug_output() {
    let _ = logs();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .https(false)
        .token(sim.bot_token())
        .build()
        .unwrap();
    bot.start().await.unwrap();
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let sent = alice
        .upload_pattern_file(&chat, "movie.mp4", 3 << 20)
        .await
        .unwrap();
    let info = bot
        .download_file_by_id(&sent.file_id)
        .wait_ready()
        .await
        .unwrap();
    let url = info.download_url().expect("a ready file has a URL");
    let token = url
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .expect("the emulator's URL carries a token");
    let debug = format!("{info:?}");
    assert!(
        debug.contains("/download"),
        "the URL's path still shows: {debug}"
    );

    // Broken off before the answer arrived (so the HTTP client's error is about the request
    // and its URL), then retried: logged as a warning.
    sim.faults().cut_next_download_after(0);
    let bytes = bot
        .download_file_by_id(&sent.file_id)
        .to_bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 3 << 20);
    // Broken off with no retry left: an error.
    bot.configure_transfers(TransferConfig::default().download_retries(0));
    sim.faults().cut_next_download_after(0);
    let failed = bot
        .download_file_by_id(&sent.file_id)
        .to_bytes()
        .await
        .unwrap_err();
    bot.shutdown().await.unwrap();

    let secrets = [token];
    assert_absent(
        &format!("{debug} {failed} {failed:?}"),
        &secrets,
        "Debug/Display output",
    );
    let text = logged();
    assert!(
        text.contains("download interrupted"),
        "the resumed download was logged"
    );
    assert_absent(&text, &secrets, "the TRACE log");
}
