//! The web chat client in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, Debian packages `chromium` and `chromium-driver`).
//!
//! Two example bots run in emulator mode with `--web` (the `commands` and `survey` routers,
//! each with its own emulator). In the `commands` page the test opens a chat with the bot,
//! sends `/start` and sees the help, uploads a file and sees the bot's reply; in the `survey`
//! page it starts a poll, presses a button and sees the tally edited live. Any error in the
//! browser console fails the test. It saves a screenshot in the target directory, or with
//! `TRUECONF_UPDATE_SCREENSHOT=1` to `docs/web-chat.png` (the README's picture).
//!
//! Without `chromedriver` on `PATH` (or at `$CHROMEDRIVER`) the test is skipped with a message;
//! with `TRUECONF_REQUIRE_BROWSER=1` (CI) a skip is a failure. The examples must be built
//! (`cargo test --all-features` builds them).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory");
    debug.join("examples").join(name)
}

/// Starts an example with `--web` and returns it with the page's URL (printed once its
/// scripted user is done).
fn start_example(name: &str) -> (Killed, String) {
    let binary = example_binary(name);
    assert!(
        binary.exists(),
        "{} is missing: build the examples (`cargo build --all-features --examples`)",
        binary.display()
    );
    let mut child = Command::new(binary)
        .args(["--web", "--for-seconds", "300"])
        .env_remove("TRUECONF_SERVER")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("-- web chat: ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name} --web printed no URL within 60 s"));
    (Killed(child), url)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver's (non-W3C) endpoint for the browser console.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("the browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if let Ok(client) = ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot start a browser session through chromedriver at {url}");
}

/// Waits until the page shows a bot message containing `needle`.
async fn bot_says(client: &Client, needle: &str) -> fantoccini::elements::Element {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for message in client
            .find_all(Locator::Css("#messages .msg.bot"))
            .await
            .unwrap_or_default()
        {
            if message.text().await.unwrap_or_default().contains(needle) {
                return message;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never showed a bot message containing {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` selects, again if the page re-rendered it in between (the page
/// redraws the chat on every change, so a found element can go stale before the click).
async fn click_retrying(client: &Client, css: &str) {
    let mut last = None;
    for _ in 0..50 {
        match client.find(Locator::Css(css)).await {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot click {css}: {last:?}");
}

async fn say(client: &Client, text: &str) {
    let input = client
        .wait()
        .for_element(Locator::Id("composer-text"))
        .await
        .unwrap();
    input.send_keys(text).await.unwrap();
    click_retrying(client, "#send").await;
}

async fn open_bot_chat(client: &Client, url: &str) {
    client.goto(url).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("#status"))
        .await
        .unwrap();
    click_retrying(client, "#start-bot").await;
    client
        .wait()
        .for_element(Locator::Css("#chats li.active"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_works_in_headless_chromium() {
    let Some(driver) = chromedriver() else {
        let why = "browser test skipped: no chromedriver on PATH or at $CHROMEDRIVER \
                   (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var_os("TRUECONF_REQUIRE_BROWSER").is_none(),
            "{why}, but TRUECONF_REQUIRE_BROWSER is set"
        );
        eprintln!("{why}");
        return;
    };
    let port = free_port();
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let client = browser(port, profile.path()).await;

    // The commands example: /start answers with the help, a file gets an answer too.
    let (_commands, url) = start_example("commands");
    open_bot_chat(&client, &url).await;
    say(&client, "/start").await;
    bot_says(&client, "/add <a> <b>").await;
    let answers = client
        .find_all(Locator::Css("#messages .msg.bot"))
        .await
        .unwrap()
        .len();
    let upload = profile.path().join("notes.txt");
    std::fs::write(&upload, "a file from the browser").unwrap();
    client
        .find(Locator::Id("file-input"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::XPath(
            "//div[contains(@class,'msg') and contains(@class,'mine')]//a[text()='notes.txt']",
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while client
        .find_all(Locator::Css("#messages .msg.bot"))
        .await
        .unwrap()
        .len()
        <= answers
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot did not answer the file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "browser console errors: {errors:?}");

    // The survey example: a poll with buttons; pressing one edits the tally live.
    let (_survey, url) = start_example("survey");
    open_bot_chat(&client, &url).await;
    say(&client, "/poll Where do we eat? | Pizza | Sushi").await;
    bot_says(&client, "Where do we eat?").await;
    click_retrying(&client, "#messages .msg.bot button.kbd[data-command$=':0']").await;
    bot_says(&client, "Pizza: 1").await;
    click_retrying(&client, "#toggle-inspector").await;
    client
        .wait()
        .for_element(Locator::Css("#frames li[data-method='sendMessage']"))
        .await
        .unwrap();
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "browser console errors: {errors:?}");

    let png = client.screenshot().await.unwrap();
    let shot = match std::env::var_os("TRUECONF_UPDATE_SCREENSHOT") {
        Some(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/web-chat.png"),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-chat.png"),
    };
    std::fs::write(&shot, png).unwrap();
    eprintln!("screenshot: {}", shot.display());
    client.close().await.unwrap();
}
