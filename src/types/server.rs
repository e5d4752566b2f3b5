//! Server information (`GET /api/v4/server`, §3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The oldest server version chat bots work with.
pub const MIN_SERVER_VERSION: ServerVersion = ServerVersion::new(5, 5, 0);

/// Body of `GET /api/v4/server` (only the fields the client uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Product information.
    pub product: Product,
}

/// `product` of [`ServerInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The server's domain name, used to complete bare user ids.
    pub display_name: String,
    /// Dotted version string, e.g. `"5.5.3.1234"`.
    pub version: String,
}

impl ServerInfo {
    /// The server domain.
    pub fn domain(&self) -> &str {
        &self.product.display_name
    }

    /// The parsed version.
    pub fn version(&self) -> Result<ServerVersion> {
        self.product.version.parse()
    }

    /// Whether the server is new enough for chat bots (`>= 5.5.0`).
    pub fn supports_bots(&self) -> Result<bool> {
        Ok(self.version()? >= MIN_SERVER_VERSION)
    }
}

/// A server version `major.minor.patch[.build]`; ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
    /// Build (0 when absent).
    pub build: u32,
}

impl ServerVersion {
    /// `major.minor.patch` with build 0.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ServerVersion {
            major,
            minor,
            patch,
            build: 0,
        }
    }

    /// Whether chat bots work with this version (`>= 5.5.0`).
    pub fn supports_bots(self) -> bool {
        self >= MIN_SERVER_VERSION
    }
}

impl FromStr for ServerVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::protocol(format!("unparsable server version {s:?}"));
        // Servers may append a suffix ("5.5.3.1234-beta"); only leading digits count.
        let mut nums = s.trim().split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>()
        });
        let mut next = |required: bool| match nums.next() {
            Some(Ok(n)) => Ok(n),
            Some(Err(_)) if !required => Ok(0),
            None if !required => Ok(0),
            _ => Err(bad()),
        };
        Ok(ServerVersion {
            major: next(true)?,
            minor: next(true)?,
            patch: next(false)?,
            build: next(false)?,
        })
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.patch, self.build
        )
    }
}
