//! File transfer over HTTP: the multipart upload that turns an upload task into a temporal
//! file, and downloads with `Range` support and the download faults (cut, stall, ignore
//! ranges).
//!
//! Content that is the testkit pattern is stored as its length only, in both directions, so
//! tests can move gigabytes through the emulator without holding them in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use crate::sync::lock;
use crate::testkit::pattern::{self, Blob};
use crate::testkit::shared::Shared;
use crate::testkit::wire::FILE_READY;

/// `POST /bridge/api/client/v1/files` with an `Upload-Task-Id` header: a `file` part and an
/// optional `preview` part.
pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let bad = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": message })),
        )
            .into_response()
    };
    let Some(task) = headers
        .get("Upload-Task-Id")
        .and_then(|value| value.to_str().ok())
    else {
        return bad("missing Upload-Task-Id header");
    };
    let mut file = None;
    let mut preview = None;
    loop {
        let part = match multipart.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => return bad(&format!("malformed multipart body: {e}")),
        };
        let name = part.name().unwrap_or_default().to_owned();
        let file_name = part.file_name().unwrap_or_default().to_owned();
        let mime = part
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        match name.as_str() {
            "file" => match read_file_part(part).await {
                Ok(blob) => file = Some((mime, blob)),
                Err(e) => return bad(&format!("malformed multipart body: {e}")),
            },
            "preview" => match part.bytes().await {
                Ok(data) => preview = Some((file_name, mime, data)),
                Err(e) => return bad(&format!("malformed multipart body: {e}")),
            },
            other => return bad(&format!("unexpected multipart part {other:?}")),
        }
    }
    let Some((mime, data)) = file else {
        return bad("missing multipart part \"file\"");
    };
    if mime == "sticker/webp" && preview.is_none() {
        return bad("a sticker upload needs a preview part");
    }
    let result = shared.state().upload(task, mime, data, preview);
    match result {
        Ok(id) => axum::Json(json!({ "temporalFileId": id })).into_response(),
        Err(message) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": message })),
        )
            .into_response(),
    }
}

/// The `file` part: kept as its length while it matches the pattern, as bytes otherwise.
async fn read_file_part(mut part: Field<'_>) -> Result<Blob, MultipartError> {
    let mut held: Vec<Bytes> = Vec::new();
    let (mut len, mut is_pattern) = (0u64, true);
    while let Some(chunk) = part.chunk().await? {
        if is_pattern && !pattern::is_pattern(len, &chunk) {
            is_pattern = false;
            held.push(pattern::pattern(0, len as usize));
        }
        len += chunk.len() as u64;
        if !is_pattern {
            held.push(chunk);
        }
    }
    Ok(if is_pattern {
        Blob::Pattern(len)
    } else {
        Blob::Mem(held.concat().into())
    })
}

/// `GET /bridge/api/client/v1/files/{id}/{download|preview}?token=…`.
pub(super) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((id, what)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let range_header = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    lock(&shared.download_ranges).push(range_header);
    let found = {
        let state = shared.state();
        state.files.get(&id).and_then(|file| {
            if query.get("token") != Some(&file.token) {
                return None;
            }
            match what.as_str() {
                "download" if file.ready == FILE_READY => {
                    Some((file.mime.clone(), file.data.clone()))
                }
                "preview" => file
                    .preview
                    .as_ref()
                    .map(|(_, mime, data)| (mime.clone(), Blob::Mem(data.clone()))),
                _ => None,
            }
        })
    };
    let Some((mime, data)) = found else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let len = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .filter(|_| !shared.ignore_ranges.load(Relaxed))
        .map(|value| parse_range(value, len));
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT_RANGES, "bytes");
    let (builder, start, end) = match range {
        None => (builder.status(StatusCode::OK), 0, len),
        Some(Some((start, end))) => (
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
            start,
            end + 1,
        ),
        Some(None) => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let cut = shared.cut_download.swap(u64::MAX, Relaxed);
    let stall = shared.stall_download.load(Relaxed);
    let stream = body_stream(data, start, end, cut, stall);
    builder
        .header(header::CONTENT_LENGTH, end - start)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The bytes `start..end` of `data`; the connection is aborted after `cut` bytes, or the body
/// stops (connection left open) after `stall` bytes.
fn body_stream(
    data: Blob,
    start: u64,
    end: u64,
    cut: u64,
    stall: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let limit = cut.min(stall);
    futures_util::stream::unfold(
        Some((data.chunks(start, end), 0u64)),
        move |progress| async move {
            let (mut chunks, sent) = progress?;
            if sent >= limit {
                if sent >= cut {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "download cut by fault injection",
                    );
                    return Some((Err(e), None));
                }
                std::future::pending::<()>().await;
            }
            let mut chunk = chunks.next()?;
            if sent + chunk.len() as u64 > limit {
                chunk = chunk.slice(..(limit - sent) as usize);
            }
            let sent = sent + chunk.len() as u64;
            Some((Ok(chunk), Some((chunks, sent))))
        },
    )
}

/// One `bytes=` range, inclusive; `None` when it cannot be satisfied.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().ok()?;
            (len.checked_sub(suffix.min(len))?, len.checked_sub(1)?)
        }
        (first, "") => (first.parse().ok()?, len.checked_sub(1)?),
        (first, last) => (
            first.parse().ok()?,
            last.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && start < len).then_some((start, end))
}
