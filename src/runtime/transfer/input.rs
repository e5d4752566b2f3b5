//! Where an upload's bytes come from.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use super::url::{DEFAULT_MAX_URL_SIZE, UrlSource};
use crate::error::{Error, Result};

/// Size of the chunks read from files and readers.
pub(crate) const CHUNK: usize = 64 * 1024;

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

enum Source {
    Path(PathBuf),
    Bytes(Bytes),
    Stream { size: u64, stream: ByteStream },
    Url(UrlSource),
}

/// The contents of a file to send: a path, bytes in memory, or any reader or stream of known
/// size. Files and readers are streamed in chunks, never read into memory whole.
///
/// ```
/// use trueconf_bot::transfer::InputFile;
/// let report = InputFile::path("report.pdf");
/// let note = InputFile::bytes("note.txt", "hello").mime("text/plain; charset=utf-8");
/// let piped = InputFile::reader("data.bin", 3, &b"abc"[..]);
/// # let _ = (report, note, piped);
/// ```
pub struct InputFile {
    name: Option<String>,
    mime: Option<String>,
    source: Source,
}

impl std::fmt::Debug for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Path(p) => format!("path {}", p.display()),
            Source::Bytes(b) => format!("{} bytes", b.len()),
            Source::Stream { size, .. } => format!("stream of {size} bytes"),
            Source::Url(u) => format!("{u:?}"),
        };
        f.debug_struct("InputFile")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("source", &source)
            .finish()
    }
}

impl InputFile {
    /// A file on disk, sent under its own file name.
    pub fn path(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        InputFile {
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            mime: None,
            source: Source::Path(path),
        }
    }

    /// Bytes in memory, sent as `name`.
    pub fn bytes(name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        InputFile {
            name: Some(name.into()),
            mime: None,
            source: Source::Bytes(data.into()),
        }
    }

    /// `size` bytes from a reader, sent as `name`. The server wants the size before the
    /// upload; a reader that ends early or goes on longer fails the upload.
    pub fn reader(
        name: impl Into<String>,
        size: u64,
        reader: impl AsyncRead + Send + 'static,
    ) -> Self {
        InputFile::stream(name, size, ReaderStream::with_capacity(reader, CHUNK))
    }

    /// `size` bytes from a stream of chunks, sent as `name` (same rules as
    /// [`InputFile::reader`]).
    pub fn stream(
        name: impl Into<String>,
        size: u64,
        stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    ) -> Self {
        InputFile {
            name: Some(name.into()),
            mime: None,
            source: Source::Stream {
                size,
                stream: Box::pin(stream),
            },
        }
    }

    /// A file fetched from `url` when the call runs (the official client's `URLInputFile`).
    ///
    /// The body is downloaded first and its real size declared to the server, so it is held
    /// in memory: at most 64 MiB unless [`InputFile::max_url_size`] says otherwise (a larger
    /// body is refused without reading on). The name comes from `Content-Disposition`, else
    /// the URL's last path segment (or [`InputFile::file_name`]); the MIME type from
    /// `Content-Type` (or [`InputFile::mime`]). Up to 5 redirects are followed, never from
    /// `https` to `http`; no credentials of the bot are sent; errors show the URL without its
    /// query. TLS is checked against the system roots whatever the bot's own TLS settings
    /// (a private CA or `verify_ssl(false)` apply to the TrueConf server only). The URL is
    /// fetched by the bot: do not pass URLs from chat users unchecked (the
    /// bot could be made to fetch internal addresses).
    pub fn url(url: impl Into<String>) -> Self {
        InputFile {
            name: None,
            mime: None,
            source: Source::Url(UrlSource {
                url: url.into(),
                max_size: DEFAULT_MAX_URL_SIZE,
                timeout: std::time::Duration::from_secs(30),
            }),
        }
    }

    /// The largest body [`InputFile::url`] accepts (no effect on other sources).
    pub fn max_url_size(mut self, bytes: u64) -> Self {
        if let Source::Url(u) = &mut self.source {
            u.max_size = bytes;
        }
        self
    }

    /// Sends it under another file name.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the MIME type instead of guessing it from the file name's extension.
    pub fn mime(mut self, mime: impl Into<String>) -> Self {
        self.mime = Some(mime.into());
        self
    }

    /// The file name it will be sent under.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Downloads a URL source into memory (see [`InputFile::url`]); other sources are
    /// returned as they are.
    pub(crate) async fn fetch_url(self) -> Result<InputFile> {
        let Source::Url(src) = &self.source else {
            return Ok(self);
        };
        let fetched = super::url::fetch(src).await?;
        let name = self.name.or(fetched.name).ok_or_else(|| {
            Error::invalid("file", "the URL names no file (use `InputFile::file_name`)")
        })?;
        Ok(InputFile {
            name: Some(name),
            mime: self.mime.or(fetched.mime),
            source: Source::Bytes(fetched.body),
        })
    }

    /// Opens the source: its name, size, MIME type and a stream of its bytes.
    pub(crate) async fn open(self) -> Result<Opened> {
        let name = match self.name {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                return Err(Error::invalid(
                    "file",
                    "the file needs a name (use `InputFile::file_name`)",
                ));
            }
        };
        let mime = self.mime.unwrap_or_else(|| mime_for(&name).to_owned());
        let (size, body): (u64, ByteStream) = match self.source {
            Source::Path(path) => {
                let file = tokio::fs::File::open(&path).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                })?;
                let size = file.metadata().await?.len();
                (size, Box::pin(ReaderStream::with_capacity(file, CHUNK)))
            }
            Source::Bytes(b) => {
                let size = b.len() as u64;
                let chunks: Vec<io::Result<Bytes>> = (0..b.len())
                    .step_by(CHUNK)
                    .map(|at| Ok(b.slice(at..(at + CHUNK).min(b.len()))))
                    .collect();
                (size, Box::pin(futures_util::stream::iter(chunks)))
            }
            Source::Stream { size, stream } => (size, stream),
            Source::Url(_) => {
                return Err(Error::invalid(
                    "file",
                    "a URL file is fetched before it is opened (a bug in this crate)",
                ));
            }
        };
        Ok(Opened {
            name,
            mime,
            size,
            body,
        })
    }
}

impl From<PathBuf> for InputFile {
    fn from(p: PathBuf) -> Self {
        InputFile::path(p)
    }
}

impl From<&Path> for InputFile {
    fn from(p: &Path) -> Self {
        InputFile::path(p)
    }
}

pub(crate) struct Opened {
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub body: ByteStream,
}

impl Opened {
    /// Reads the whole source into memory, refusing more than `max` bytes.
    pub(crate) async fn into_bytes(mut self, max: u64, what: &'static str) -> Result<Bytes> {
        if self.size > max {
            return Err(Error::invalid(
                what,
                format!(
                    "{:?} is {} bytes; at most {max} are accepted",
                    self.name, self.size
                ),
            ));
        }
        let mut buf = BytesMut::with_capacity(self.size as usize);
        while let Some(chunk) = self.body.next().await {
            buf.extend_from_slice(&chunk?);
            if buf.len() as u64 > self.size {
                break;
            }
        }
        check_size(&self.name, self.size, buf.len() as u64)?;
        Ok(buf.freeze())
    }
}

/// The source must produce exactly the size announced to the server.
pub(crate) fn check_size(name: &str, declared: u64, actual: u64) -> Result<()> {
    if declared == actual {
        return Ok(());
    }
    let rule = if actual > declared {
        format!("{name:?} produced more than its declared {declared} bytes")
    } else {
        format!(
            "{name:?} ended after {actual} of its declared {declared} bytes (fewer bytes than announced)"
        )
    };
    Err(Error::invalid("file", rule))
}

/// MIME type by file extension; `application/octet-stream` when unknown.
pub(crate) fn mime_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "7z" => "application/x-7z-compressed",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_follows_the_extension() {
        assert_eq!(mime_for("a.PDF"), "application/pdf");
        assert_eq!(mime_for("photo.jpeg"), "image/jpeg");
        assert_eq!(mime_for("noext"), "application/octet-stream");
        assert_eq!(mime_for("archive.tar.gz"), "application/gzip");
    }

    #[tokio::test]
    async fn bytes_are_chunked_and_sized() {
        let data = vec![7u8; CHUNK * 2 + 3];
        let opened = InputFile::bytes("x.bin", data.clone())
            .open()
            .await
            .unwrap();
        assert_eq!(opened.size, data.len() as u64);
        assert_eq!(opened.mime, "application/octet-stream");
        let chunks: Vec<_> = opened.body.collect().await;
        assert_eq!(chunks.len(), 3);
        let back = InputFile::bytes("x.bin", data.clone())
            .open()
            .await
            .unwrap();
        assert_eq!(back.into_bytes(u64::MAX, "file").await.unwrap(), data);
    }

    #[tokio::test]
    async fn nameless_and_short_sources_are_rejected() {
        let Err(e) = InputFile::bytes(" ", "x").open().await else {
            panic!("a blank name was accepted");
        };
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    argument: "file",
                    ..
                }
            ),
            "{e}"
        );
        let short = InputFile::reader("r.bin", 10, &b"abc"[..])
            .open()
            .await
            .unwrap();
        let e = short.into_bytes(100, "file").await.unwrap_err();
        assert!(e.to_string().contains("fewer"), "{e}");
        let big = InputFile::bytes("b.bin", vec![0u8; 10])
            .open()
            .await
            .unwrap();
        let e = big.into_bytes(5, "sticker").await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    argument: "sticker",
                    ..
                }
            ),
            "{e}"
        );
    }
}
