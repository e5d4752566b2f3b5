//! A bot author's own `reqwest` next to this crate's. Cargo unifies features, so the user's
//! reqwest gets this crate's `rustls-no-provider`; without a process-wide rustls provider,
//! `reqwest::Client::new()` in the user's code would panic. A test binary of its own: the
//! provider is process-wide state, and nothing else may install it first.

use trueconf_bot::bot::Bot;
use trueconf_bot::testkit::{Sim, SimConfig};

#[tokio::test]
async fn users_reqwest_client_works_next_to_a_bot() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    // What a new user writes: a bot, then their own HTTP client (an axum webhook's test, a
    // call to another service).
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let info = client
        .get(format!("{}/api/v4/server", sim.url()))
        .send()
        .await
        .expect("the user's client can make requests")
        .status();
    assert!(info.is_success(), "{info}");
    // An https client builds too (it needs the provider; no request is made).
    reqwest::Client::builder()
        .https_only(true)
        .build()
        .expect("a TLS client builds");
    // A second call finds the provider installed and leaves it alone.
    assert!(!trueconf_bot::connection::install_crypto_provider());
    drop(bot);
}
