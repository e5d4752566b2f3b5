//! Downloading files (§11.2): wait until the file is ready, then stream it, resuming with
//! `Range` after a transport error.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use super::progress::{Direction, Progress, ProgressStream};
use super::state::Transfers;
use super::upload::{Activity, Reporter, stall_guard};
use crate::error::{DisconnectKind, Error, Result};
use crate::methods::GetFileInfo;
use crate::runtime::connection::tls::{http_error, redact_url};
use crate::types::{FileInfo, ReadyState};
use std::sync::Arc;

/// A download being prepared: pick where the bytes go with [`to_path`](Self::to_path),
/// [`to_bytes`](Self::to_bytes), [`to_writer`](Self::to_writer) or [`stream`](Self::stream).
///
/// A file someone is still uploading is waited for (progress events, no polling); a dropped
/// connection is resumed where it stopped. Dropping the future cancels the download.
///
/// ```no_run
/// # async fn demo(bot: trueconf_bot::bot::Bot, file_id: String) -> trueconf_bot::Result<()> {
/// let info = bot.download_file_by_id(&file_id).to_path("downloads/report.pdf").await?;
/// println!("saved {} ({} bytes)", info.name, info.size);
/// # Ok(()) }
/// ```
#[must_use = "nothing is downloaded until a target is chosen and awaited"]
pub struct DownloadCall {
    transfers: Arc<Transfers>,
    file_id: String,
    ready_timeout: Option<Duration>,
    max_size: Option<u64>,
    progress: Option<watch::Sender<Option<Progress>>>,
}

impl std::fmt::Debug for DownloadCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadCall")
            .field("file_id", &self.file_id)
            .field("ready_timeout", &self.ready_timeout)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl DownloadCall {
    pub(crate) fn new(transfers: Arc<Transfers>, file_id: String) -> Self {
        DownloadCall {
            transfers,
            file_id,
            ready_timeout: None,
            max_size: None,
            progress: None,
        }
    }

    /// How long to wait for a file that is still being uploaded, counted from the last
    /// progress event (default [`TransferConfig::ready_timeout`](super::TransferConfig)).
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = Some(d);
        self
    }

    /// The largest file [`to_bytes`](Self::to_bytes) accepts (default
    /// [`TransferConfig::max_in_memory`](super::TransferConfig), 100 MiB).
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Also returns a stream of the download's progress (bytes received).
    pub fn with_progress(mut self) -> (Self, ProgressStream) {
        let (tx, stream) = ProgressStream::channel();
        self.progress = Some(tx);
        (self, stream)
    }

    /// Waits until the file can be downloaded and returns its info, without downloading it.
    pub async fn wait_ready(self) -> Result<FileInfo> {
        let timeout = self
            .ready_timeout
            .unwrap_or_else(|| self.transfers.config().ready_timeout);
        ready_info(&self.transfers, &self.file_id, timeout).await
    }

    /// Saves the file at `path`. The bytes go to a new temporary file in the same directory
    /// (created exclusively, under a random name) that is renamed at the end, so a failed or
    /// cancelled download never leaves a partial file under `path`. An existing file at
    /// `path` is replaced; a symbolic link or a directory there is refused
    /// ([`Error::InvalidArgument`] naming `path`). See also
    /// [`TransferConfig::max_download_size`](super::TransferConfig::max_download_size).
    pub async fn to_path(self, path: impl AsRef<Path>) -> Result<FileInfo> {
        let path = path.as_ref().to_path_buf();
        let base = path
            .file_name()
            .ok_or_else(|| Error::invalid("path", format!("{} names no file", path.display())))?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        check_target(&path).await?;
        let (info, mut fetch) = self.open().await?;
        let (tmp, file) = create_part(&dir, &base).await?;
        let mut guard = TempPath(Some(tmp.clone()));
        // Fewer, larger writes: each one is a trip to the blocking pool.
        let mut file = tokio::io::BufWriter::with_capacity(4 * super::input::CHUNK, file);
        while let Some(chunk) = fetch.next_chunk().await? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        // Again at the end: the download may have taken long enough for a link to appear.
        check_target(&path).await?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot move the download to {}: {e}", path.display()),
            )
        })?;
        guard.0 = None;
        Ok(info)
    }

    /// Writes the file into `writer` (not flushed or closed).
    pub async fn to_writer<W: AsyncWrite + Unpin + Send>(self, mut writer: W) -> Result<FileInfo> {
        let (info, mut fetch) = self.open().await?;
        while let Some(chunk) = fetch.next_chunk().await? {
            writer.write_all(&chunk).await?;
        }
        Ok(info)
    }

    /// The whole file in memory; a file larger than [`max_size`](Self::max_size) is refused
    /// before any byte is fetched.
    pub async fn to_bytes(self) -> Result<Bytes> {
        let max = self
            .max_size
            .unwrap_or_else(|| self.transfers.config().max_in_memory);
        let (info, mut fetch) = self.open().await?;
        if info.size > max {
            return Err(Error::invalid(
                "max_size",
                format!(
                    "{:?} is {} bytes, more than the in-memory limit of {max}; use to_path or stream",
                    info.name, info.size
                ),
            ));
        }
        let mut buf = BytesMut::with_capacity(info.size as usize);
        while let Some(chunk) = fetch.next_chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The file as a stream of chunks. Nothing happens until it is polled.
    pub fn stream(self) -> DownloadStream {
        enum Step {
            Start(DownloadCall),
            Running(Box<Fetch>),
        }
        let inner = futures_util::stream::try_unfold(Step::Start(self), |step| async move {
            let mut fetch = match step {
                Step::Start(call) => Box::new(call.open().await?.1),
                Step::Running(f) => f,
            };
            Ok(fetch.next_chunk().await?.map(|c| (c, Step::Running(fetch))))
        });
        DownloadStream {
            inner: Box::pin(inner),
        }
    }

    /// Waits until the file is ready and takes a transfer slot.
    async fn open(self) -> Result<(FileInfo, Fetch)> {
        let transfers = self.transfers.clone();
        let config = transfers.config();
        let timeout = self.ready_timeout.unwrap_or(config.ready_timeout);
        let info = ready_info(&self.transfers, &self.file_id, timeout).await?;
        // The bytes received are held to the declared size (`Fetch::next_chunk`), so checking
        // the declared size bounds both.
        if let Some(max) = config.max_download_size
            && info.size > max
        {
            return Err(Error::invalid(
                "max_download_size",
                format!(
                    "{:?} is {} bytes, more than max_download_size ({max}); not downloaded",
                    info.name, info.size
                ),
            ));
        }
        let url = info
            .download_url()
            .ok_or_else(|| {
                Error::protocol(format!(
                    "file {} is ready but has no downloadUrl",
                    self.file_id
                ))
            })?
            .to_owned();
        check_origin(&url, &transfers.http_base(), &config.download_origins)?;
        let permit = transfers.permit().await?;
        tracing::debug!(file_id = %self.file_id, size = info.size, "downloading");
        let fetch = Fetch {
            client: transfers.http()?,
            url,
            total: info.size,
            received: 0,
            skip: 0,
            resp: None,
            retries: config.download_retries,
            backoff: backoff(config.download_retries),
            activity: Activity::new(),
            stall: config.stall_timeout,
            reporter: Reporter::new(
                transfers,
                Direction::Download,
                Some(self.file_id),
                Some(info.size),
                self.progress,
            ),
            _permit: permit,
        };
        Ok((info, fetch))
    }
}

/// A file's bytes as a [`Stream`] of chunks ([`DownloadCall::stream`]).
#[must_use = "streams do nothing unless polled"]
pub struct DownloadStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl std::fmt::Debug for DownloadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DownloadStream")
    }
}

impl Stream for DownloadStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Refuses a target that is a symbolic link or a directory. `rename` would replace a link
/// rather than write through it, but a link where a download is headed is more likely planted
/// than meant, and replacing it silently hides that.
async fn check_target(path: &Path) -> Result<()> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.file_type().is_symlink() => Err(Error::invalid(
            "path",
            format!(
                "{} is a symbolic link; a download does not replace it",
                path.display()
            ),
        )),
        Ok(m) if m.is_dir() => Err(Error::invalid(
            "path",
            format!("{} is a directory", path.display()),
        )),
        // Missing (the usual case) or not inspectable: the rename decides.
        _ => Ok(()),
    }
}

/// Creates the temporary file next to the target: a random name, created exclusively
/// (`O_CREAT | O_EXCL`), so it can be neither an existing file nor a symbolic link someone
/// placed there to redirect the write.
async fn create_part(dir: &Path, base: &str) -> Result<(PathBuf, tokio::fs::File)> {
    // Room for the prefix and suffix within the usual 255-byte name limit.
    let mut end = base.len().min(200);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    let mut attempts = 0;
    loop {
        let tmp = dir.join(format!(
            ".{}.{:016x}.part",
            &base[..end],
            rand::random::<u64>()
        ));
        match open_new(&tmp).await {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 3 => {
                attempts += 1;
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", tmp.display()),
                )
                .into());
            }
        }
    }
}

/// Opens a new file for writing; fails if anything, a symbolic link included, is at `path`.
async fn open_new(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
}

/// Removes the temporary file unless the download completed.
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = std::fs::remove_file(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove a partial download");
        }
    }
}

fn backoff(times: usize) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(times)
        .with_jitter()
        .build()
}

/// `getFileInfo` until the file is READY: a file still UPLOADING is waited for through
/// progress events, re-checked when the sender reports completion and after every
/// reconnect (its progress subscription restored first).
async fn ready_info(
    transfers: &Arc<Transfers>,
    file_id: &str,
    timeout: Duration,
) -> Result<FileInfo> {
    let info = transfers.execute(GetFileInfo::new(file_id)).await?;
    if ready(file_id, &info)? {
        return Ok(info);
    }
    let mut watcher = transfers.watch(file_id);
    let mut online = transfers.online();
    match watcher.subscribed().await {
        Err(e @ Error::Api { .. }) => return Err(e),
        // Restored with the next socket; the re-check after it covers the gap.
        Err(e) => tracing::debug!(file_id, error = %e, "progress subscription pending"),
        Ok(()) => {}
    }
    tracing::debug!(file_id, "waiting for the sender to finish uploading");
    let mut deadline = Instant::now() + timeout;
    // Re-checks after a completion report, backing off: the server may mark the file ready a
    // moment after the last byte arrived.
    let mut settling: u32 = 0;
    let mut recheck = true;
    loop {
        if recheck {
            // Also the first check after subscribing: the upload may have finished between
            // the first `getFileInfo` and the subscription.
            let info = transfers.execute(GetFileInfo::new(file_id)).await?;
            if ready(file_id, &info)? {
                return Ok(info);
            }
            transfers.learn(&info, file_id);
        }
        recheck = true;
        let wake = if settling > 0 {
            (Instant::now() + Duration::from_millis(100 << settling.min(4))).min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        what: format!("file {file_id} to finish uploading"),
                        after: timeout,
                    });
                }
            }
            changed = watcher.rx.changed() => {
                if changed.is_err() {
                    return Err(Error::disconnected(
                        DisconnectKind::Internal,
                        "progress subscription closed",
                    ));
                }
                deadline = Instant::now() + timeout;
                let complete = watcher
                    .rx
                    .borrow_and_update()
                    .as_ref()
                    .is_some_and(|p| p.is_done() || p.total.is_none());
                if complete {
                    settling += 1;
                } else {
                    recheck = false;
                }
            }
            _ = online.changed() => tracing::debug!(file_id, "reconnected; re-checking the file"),
        }
    }
}

fn ready(file_id: &str, info: &FileInfo) -> Result<bool> {
    match info.ready_state {
        ReadyState::Ready => Ok(true),
        ReadyState::Uploading => Ok(false),
        ReadyState::NotAvailable => Err(Error::invalid(
            "file_id",
            format!(
                "file {file_id} ({:?}) is not available for download (readyState 0)",
                info.name
            ),
        )),
        other => Err(Error::protocol(format!(
            "file {file_id}: unknown readyState {other:?}"
        ))),
    }
}

/// The HTTP side of one download: resumable, stall-guarded, one chunk at a time.
struct Fetch {
    client: reqwest::Client,
    url: String,
    total: u64,
    received: u64,
    /// Bytes to drop from the current response (a server that ignored `Range`).
    skip: u64,
    resp: Option<reqwest::Response>,
    retries: usize,
    backoff: ExponentialBackoff,
    activity: Activity,
    stall: Duration,
    reporter: Reporter,
    _permit: OwnedSemaphorePermit,
}

impl Fetch {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(resp) = self.resp.as_mut() else {
                if self.received >= self.total {
                    return Ok(None);
                }
                match self.request().await {
                    Ok(r) => self.resp = Some(r),
                    Err(e) if e.is_transient() => self.retry(e).await?,
                    Err(e) => return Err(e),
                }
                continue;
            };
            let next = stall_guard(resp.chunk(), &self.activity, self.stall, "file download").await;
            let error = match next {
                Ok(Ok(Some(mut chunk))) => {
                    if self.skip > 0 {
                        let n = self.skip.min(chunk.len() as u64);
                        self.skip -= n;
                        chunk = chunk.slice(n as usize..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    let received = self.received + chunk.len() as u64;
                    if received > self.total {
                        return Err(Error::protocol(format!(
                            "the server sent more than the file's {} bytes",
                            self.total
                        )));
                    }
                    self.received = received;
                    crate::runtime::telemetry::downloaded(chunk.len());
                    self.activity.touch();
                    self.reporter.report(received);
                    if self.retries > 0 {
                        // Progress earns the retry budget back.
                        self.backoff = backoff(self.retries);
                    }
                    return Ok(Some(chunk));
                }
                Ok(Ok(None)) if self.received >= self.total => {
                    self.resp = None;
                    return Ok(None);
                }
                Ok(Ok(None)) => Error::http(
                    None,
                    format!(
                        "the download ended after {} of {} bytes",
                        self.received, self.total
                    ),
                ),
                Ok(Err(e)) => http_error("file download", e),
                Err(timeout) => timeout,
            };
            self.resp = None;
            self.retry(error).await?;
        }
    }

    async fn retry(&mut self, error: Error) -> Result<()> {
        match self.backoff.next() {
            Some(delay) => {
                tracing::warn!(error = %error, at = self.received, ?delay, "download interrupted; resuming");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(error),
        }
    }

    async fn request(&mut self) -> Result<reqwest::Response> {
        let mut req = self.client.get(&self.url);
        if self.received > 0 {
            req = req.header(RANGE, format!("bytes={}-", self.received));
        }
        let resp = stall_guard(req.send(), &self.activity, self.stall, "file download")
            .await?
            .map_err(|e| http_error("file download", e))?;
        let status = resp.status();
        match status {
            StatusCode::OK => {
                // No range support: read it again from the start, dropping what we have.
                self.skip = self.received;
                Ok(resp)
            }
            StatusCode::PARTIAL_CONTENT => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                match start {
                    Some(s) if s <= self.received => {
                        self.skip = self.received - s;
                        Ok(resp)
                    }
                    _ => Err(Error::protocol(format!(
                        "download resumed at {} but the server answered Content-Range {:?}",
                        self.received,
                        resp.headers().get(CONTENT_RANGE)
                    ))),
                }
            }
            s if s.is_redirection() => {
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(|l| format!(" to {}", redact_url(l)))
                    .unwrap_or_default();
                Err(Error::http(
                    Some(s.as_u16()),
                    format!(
                        "file download: the server answered a redirect{to}; a download URL \
                         authorises itself, so redirects are not followed"
                    ),
                ))
            }
            s => Err(Error::http(Some(s.as_u16()), "file download refused")),
        }
    }
}

/// A download URL authorises itself, so it is only fetched from the server the bot is
/// configured for: same scheme, host and port. Anything else (another host, an internal
/// address, `http` where the bot uses `https`) is what a compromised or spoofed server would
/// hand out.
fn check_origin(url: &str, base: &str, extra: &[String]) -> Result<()> {
    let shown = redact_url(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::protocol(format!("downloadUrl {shown:?} is not a URL: {e}")))?;
    let expected = reqwest::Url::parse(base)
        .map_err(|e| Error::protocol(format!("the server address {base:?} is not a URL: {e}")))?;
    let allowed =
        |origin: &str| reqwest::Url::parse(origin).is_ok_and(|o| o.origin() == parsed.origin());
    if parsed.origin() != expected.origin() && !extra.iter().any(|o| allowed(o)) {
        return Err(Error::protocol(format!(
            "downloadUrl {shown} is not on the bot's server {base} (scheme, host and port \
             must match); not fetched"
        )));
    }
    Ok(())
}

/// The first byte of a `Content-Range: bytes a-b/len` header.
fn range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split_once('-')?
        .0
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_download_origins_are_accepted_and_nothing_else() {
        let base = "https://10.0.0.5:443";
        let public = ["https://video.example.com".to_owned()];
        let url = "https://video.example.com/bridge/api/client/v1/files/1/download?token=t";
        assert!(check_origin(url, base, &[]).is_err());
        assert!(check_origin(url, base, &public).is_ok());
        let other = "https://video.example.com:8443/f?token=t";
        assert!(
            check_origin(other, base, &public).is_err(),
            "the port is part of it"
        );
    }

    #[test]
    fn download_urls_stay_on_the_configured_origin() {
        let base = "https://video.example.com:443";
        for ok in [
            "https://video.example.com/bridge/api/client/v1/files/1/download?token=t",
            "https://VIDEO.example.com:443/f?token=t",
        ] {
            assert!(check_origin(ok, base, &[]).is_ok(), "{ok}");
        }
        for bad in [
            // A downgrade to plain HTTP, another port, another host, an internal address.
            "http://video.example.com:443/f?token=secret",
            "https://video.example.com:8443/f?token=secret",
            "https://evil.example/f?token=secret",
            "https://video.example.com@10.0.0.1/f?token=secret",
            "file:///etc/passwd?token=secret",
            "/relative?token=secret",
        ] {
            let e = check_origin(bad, base, &[]).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{bad}: {e:?}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn temporary_files_are_new_files_never_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join("planted.part");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = open_new(&planted).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        let (tmp, _file) = create_part(dir.path(), &"n".repeat(300)).await.unwrap();
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".nnn") && name.ends_with(".part") && name.len() < 255);
    }

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
