//! Files: file info (§8.3), previews, upload limits, WebP detection.

use serde::{Deserialize, Serialize};

use super::enums::{ExtensionsMode, ReadyState};
use super::macros::double_option;
use crate::error::{Error, Result};

/// `getFileInfo` response. `Debug` shows the download URLs without their query: they
/// authorise themselves (`?token=…`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// File id (some servers send `infoHash` instead; see [`FileInfo::id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// File id under its older name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_hash: Option<String>,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime_type: String,
    /// Whether the file can be downloaded yet.
    pub ready_state: ReadyState,
    /// Absolute, self-authorising download URL (absent, `null` or a URL, kept as received).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub download_url: Option<Option<String>>,
    /// Previews (absent, `null` or a list, kept as received).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previews: Option<Option<Vec<FilePreview>>>,
}

impl FileInfo {
    /// The file id, from `fileId` or else `infoHash`.
    pub fn id(&self) -> Option<&str> {
        self.file_id.as_deref().or(self.info_hash.as_deref())
    }

    /// The download URL, if any.
    pub fn download_url(&self) -> Option<&str> {
        self.download_url.as_ref().and_then(|u| u.as_deref())
    }

    /// The previews (empty when there are none).
    pub fn previews(&self) -> &[FilePreview] {
        self.previews
            .as_ref()
            .and_then(|p| p.as_deref())
            .unwrap_or_default()
    }

    /// Whether the file can be downloaded now.
    pub fn is_ready(&self) -> bool {
        self.ready_state == ReadyState::Ready
    }
}

/// A self-authorising URL for `Debug`: scheme, host and path; the query and fragment (the
/// token) and any user info are left out.
struct Redacted<'a>(&'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let mut shown = &url[..end];
        let mut scheme = "";
        if let Some(i) = shown.find("://") {
            scheme = &shown[..i + 3];
            let rest = &shown[i + 3..];
            let authority = rest.find('/').unwrap_or(rest.len());
            shown = match rest[..authority].rfind('@') {
                Some(at) => &rest[at + 1..],
                None => rest,
            };
        }
        let hidden = if end < url.len() { "?…" } else { "" };
        write!(f, "\"{scheme}{shown}{hidden}\"")
    }
}

impl std::fmt::Debug for FileInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileInfo")
            .field("file_id", &self.file_id)
            .field("info_hash", &self.info_hash)
            .field("name", &self.name)
            .field("size", &self.size)
            .field("mime_type", &self.mime_type)
            .field("ready_state", &self.ready_state)
            .field(
                "download_url",
                &self
                    .download_url
                    .as_ref()
                    .map(|u| u.as_deref().map(Redacted)),
            )
            .field("previews", &self.previews)
            .finish()
    }
}

/// One preview of a file. `Debug` shows the download URL without its query.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilePreview {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime_type: String,
    /// Absolute download URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

impl std::fmt::Debug for FilePreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePreview")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("mime_type", &self.mime_type)
            .field("download_url", &self.download_url.as_deref().map(Redacted))
            .finish()
    }
}

/// Upload limits (`getFileUploadLimits` response and event).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLimits {
    /// Maximum bytes per file; `None` (`null`) = unlimited.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Extension filter; `None` (`null`) = no filter.
    #[serde(default)]
    pub extensions: Option<ExtensionFilter>,
}

/// An allow- or block-list of file extensions (without dot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionFilter {
    /// Whitelist or blacklist.
    pub mode: ExtensionsMode,
    /// Extensions without the dot.
    #[serde(default)]
    pub list: Vec<String>,
}

impl UploadLimits {
    /// Checks a file against the limits as the official client does before uploading:
    /// size against `max_size`, extension (after the last dot, case-insensitive) against
    /// the filter.
    pub fn check(&self, file_name: &str, size: u64) -> Result<()> {
        if let Some(max) = self.max_size
            && size > max
        {
            {
                return Err(Error::invalid(
                    "file",
                    format!("{file_name:?} is {size} bytes; the server allows at most {max}"),
                ));
            }
        }
        if let Some(filter) = &self.extensions {
            let ext = file_name
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            let listed = filter
                .list
                .iter()
                .any(|e| e.trim_start_matches('.').eq_ignore_ascii_case(&ext));
            let allowed = match filter.mode {
                ExtensionsMode::Allow => listed,
                ExtensionsMode::Block => !listed,
                ExtensionsMode::Unknown(_) => true,
            };
            if !allowed {
                return Err(Error::invalid(
                    "file",
                    format!("extension {ext:?} of {file_name:?} is not allowed by the server"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `bytes` start like a WebP image (`RIFF` + 4 size bytes + `WEBP`). Stickers must be
/// WebP.
pub fn is_webp(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
}

/// Rejects sticker data that is not WebP, naming the argument.
pub fn check_sticker(bytes: &[u8]) -> Result<()> {
    if is_webp(bytes) {
        Ok(())
    } else {
        let head: Vec<String> = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Err(Error::invalid(
            "sticker",
            format!(
                "must be a WebP image (RIFF….WEBP); starts with {}",
                head.join(" ")
            ),
        ))
    }
}

/// Body of the HTTP upload response: `{"temporalFileId": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadResponse {
    /// Id to use in `sendFile` or `editChatAvatar`.
    pub temporal_file_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_download_tokens() {
        let info: FileInfo = serde_json::from_value(serde_json::json!({
            "fileId": "f1", "name": "a.pdf", "size": 3, "mimeType": "application/pdf",
            "readyState": 2,
            "downloadUrl": "https://u:pw@video.example.com/files/f1/download?token=s3cret",
            "previews": [{"name": "a.png", "size": 1, "mimeType": "image/png",
                          "downloadUrl": "https://video.example.com/files/f1/preview?token=s3cret#x"}],
        }))
        .unwrap();
        let debug = format!("{info:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("pw"),
            "{debug}"
        );
        assert!(
            debug.contains("\"https://video.example.com/files/f1/download?…\""),
            "{debug}"
        );
        assert!(debug.contains("/files/f1/preview?…"), "{debug}");
        assert_eq!(
            format!("{:?}", Redacted("https://h.example/x")),
            "\"https://h.example/x\""
        );
    }
}
