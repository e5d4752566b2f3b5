//! Settings of file transfers.

use std::time::Duration;

/// Settings of file transfers ([`Bot::configure_transfers`](crate::bot::Bot::configure_transfers)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferConfig {
    /// Uploads and downloads running at once; more wait their turn. Default 4.
    pub max_concurrent: usize,
    /// A transfer that moves no byte for this long fails with [`Error::Timeout`](crate::Error::Timeout). Default 60 s.
    pub stall_timeout: Duration,
    /// How long a download waits for a file someone is still uploading, counted from the
    /// last progress event. Default 60 s.
    pub ready_timeout: Duration,
    /// Largest file [`DownloadCall::to_bytes`](super::DownloadCall::to_bytes) accepts by default. Default 100 MiB, as the
    /// official client.
    pub max_in_memory: u64,
    /// How often a download is resumed after a transport error. Default 3.
    pub download_retries: usize,
    /// Largest file a download accepts, whatever its target: a larger declared size is
    /// refused before any byte is fetched, and a server sending more bytes than this is cut
    /// off. `None` (the default) accepts any size; set it where someone else decides what
    /// gets downloaded, so they cannot fill the disk.
    pub max_download_size: Option<u64>,
    /// Origins (`https://host[:port]`) downloads may come from besides the bot's own server.
    /// A `downloadUrl` elsewhere is refused (it carries a token, and a compromised server
    /// could point it anywhere); add the server's public name here when the bot connects to
    /// it by another name or address. Default: none.
    pub download_origins: Vec<String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            max_concurrent: 4,
            stall_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(60),
            max_in_memory: 100 * 1024 * 1024,
            download_retries: 3,
            max_download_size: None,
            download_origins: Vec::new(),
        }
    }
}

impl TransferConfig {
    /// Adds an origin to [`TransferConfig::download_origins`].
    pub fn allow_download_origin(mut self, origin: impl Into<String>) -> Self {
        self.download_origins.push(origin.into());
        self
    }

    /// Sets [`TransferConfig::max_concurrent`] (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets [`TransferConfig::stall_timeout`].
    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// Sets [`TransferConfig::ready_timeout`].
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }

    /// Sets [`TransferConfig::max_in_memory`].
    pub fn max_in_memory(mut self, bytes: u64) -> Self {
        self.max_in_memory = bytes;
        self
    }

    /// Sets [`TransferConfig::download_retries`].
    pub fn download_retries(mut self, n: usize) -> Self {
        self.download_retries = n;
        self
    }

    /// Sets [`TransferConfig::max_download_size`].
    pub fn max_download_size(mut self, bytes: Option<u64>) -> Self {
        self.max_download_size = bytes;
        self
    }
}
