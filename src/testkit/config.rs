//! What a test decides before the emulator starts: the accounts, the OAuth applications, the
//! server's name and version, and the upload limits it enforces.
//!
//! These are plain values a test builds and hands over; the emulator reads them but never
//! depends on how a test made them, which is why they live apart from the running server.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};

/// An account known to the emulator.
#[derive(Clone)]
pub struct Account {
    /// Login without the domain.
    pub login: String,
    /// Password for the token endpoint.
    pub password: String,
    /// Display name; defaults to the login with a capital first letter.
    pub display_name: Option<String>,
}

impl Account {
    /// An account with a login and password.
    pub fn new(login: impl Into<String>, password: impl Into<String>) -> Self {
        Account {
            login: login.into(),
            password: password.into(),
            display_name: None,
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// An OAuth application for the token flow of PROTOCOL.md §2.1.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// The application's `client_id`.
    pub client_id: String,
    /// Its scopes; an empty list makes step 1 fail with `invalidScope`.
    pub scopes: Vec<String>,
}

/// Emulator configuration. The defaults: domain `sim.example`, server version `5.5.6.0`, a
/// free port on 127.0.0.1, plain HTTP/WS, bot account `bot` (password `bot-password`, so
/// the bot's id is `bot@sim.example`), password login on, one OAuth application `sim-app`,
/// tokens valid 30 days, `expect_*` timeout 5 s, no web page.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Server domain, reported as `product.display_name` and used in every user id.
    pub domain: String,
    /// Server version reported by `/api/v4/server`.
    pub version: String,
    /// TCP port; `0` picks a free one.
    pub port: u16,
    /// Address to listen on: 127.0.0.1 by default. The emulator has no real authentication
    /// (anyone who reaches it can get tokens and act as any user), so another address should
    /// be a deliberate choice; requests must then name this address or a loopback one as
    /// their `Host`.
    pub bind: IpAddr,
    /// Serve the web chat client at the base URL (`/`) and its endpoints under `/sim/api/`.
    pub web: bool,
    /// Serve HTTPS/WSS with a fresh self-signed certificate (see [`Sim::cert_pem`]).
    ///
    /// [`Sim::cert_pem`]: crate::testkit::Sim::cert_pem
    pub tls: bool,
    /// The bot account.
    pub bot: Account,
    /// Further accounts (scripted users are also created on demand by [`Sim::user`]).
    ///
    /// [`Sim::user`]: crate::testkit::Sim::user
    pub users: Vec<Account>,
    /// Whether the password grant of the token endpoint is enabled (else 403).
    pub password_login: bool,
    /// OAuth applications for the §2.1 flow.
    pub oauth_apps: Vec<OAuthApp>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Default timeout of the `expect_*` assertions.
    pub expect_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            domain: "sim.example".into(),
            version: "5.5.6.0".into(),
            port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            web: false,
            tls: false,
            bot: Account::new("bot", "bot-password"),
            users: Vec::new(),
            password_login: true,
            oauth_apps: vec![OAuthApp {
                client_id: "sim-app".into(),
                scopes: vec!["version:read".into()],
            }],
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            expect_timeout: Duration::from_secs(5),
        }
    }
}

/// Upload limits (`getFileUploadLimits`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadLimits {
    /// Maximum bytes per file; `None` = unlimited.
    pub max_size: Option<u64>,
    /// Extension filter; `None` = no filter.
    pub extensions: Option<ExtensionFilter>,
}

/// An extension allow- or block-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFilter {
    /// `true` = only these extensions are allowed; `false` = these are blocked.
    pub allow: bool,
    /// Extensions without the dot.
    pub list: Vec<String>,
}

impl UploadLimits {
    /// The limits as the `getFileUploadLimits` answer and event carry them.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "maxSize": self.max_size,
            "extensions": self.extensions.as_ref().map(|filter| json!({
                "mode": if filter.allow { "allow" } else { "block" },
                "list": filter.list,
            })),
        })
    }

    /// Whether a file called `name` of `size` bytes may be uploaded.
    pub(crate) fn allows(&self, name: &str, size: u64) -> bool {
        if self.max_size.is_some_and(|max| size > max) {
            return false;
        }
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        self.extensions.as_ref().is_none_or(|filter| {
            filter
                .list
                .iter()
                .any(|listed| listed.eq_ignore_ascii_case(&extension))
                == filter.allow
        })
    }
}
