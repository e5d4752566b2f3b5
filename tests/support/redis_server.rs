//! A `redis-server` for the tests that need one (shared with `#[path]`): the one CI started
//! (`TRUECONF_TEST_REDIS_URL`) or a child process of the test, killed on drop.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn unique_prefix() -> String {
    format!("test:{:016x}:", rand::random::<u64>())
}

/// A Redis server for one test: `TRUECONF_TEST_REDIS_URL`, or a `redis-server` child process
/// killed on drop.
pub struct RedisServer {
    url: String,
    child: Option<Child>,
}

impl RedisServer {
    pub fn shared_or_own() -> Self {
        match std::env::var("TRUECONF_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Self { url, child: None },
            _ => Self::own(),
        }
    }

    pub fn own() -> Self {
        for _ in 0..5 {
            if let Some(server) = Self::try_start() {
                return server;
            }
        }
        panic!("could not start a redis-server for the tests");
    }

    fn try_start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the Redis storage tests need `redis-server` ({e}); install it \
                     (apt-get install -y redis-server) or set TRUECONF_TEST_REDIS_URL"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return None; // lost the port to someone else; try another
            }
            // Another test may have taken the port in between: make sure the server that
            // answers is ours.
            if server_pid(port) == Some(child.id()) {
                return Some(Self {
                    url: format!("redis://127.0.0.1:{port}/"),
                    child: Some(child),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id, when it is this test's own child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn server_pid(port: u16) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(rest) = text.split("process_id:").nth(1)
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.trim().parse().ok();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
