//! Generated file contents, so tests can move gigabytes through the emulator without storing
//! them: byte `i` of the pattern is `i % 251` (a prime period, so an offset error in a resumed
//! transfer shows up as a mismatch).

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

const PERIOD: usize = 251;
/// Chunk size of generated bodies.
pub(crate) const CHUNK: usize = 64 * 1024;

/// One period past a whole chunk, so any chunk is a single slice of the table.
static TABLE: LazyLock<Bytes> =
    LazyLock::new(|| (0..CHUNK + PERIOD).map(|i| (i % PERIOD) as u8).collect());

/// Byte `offset` of the pattern.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % PERIOD as u64) as u8
}

/// `len` bytes of the pattern starting at `offset`.
pub fn pattern(offset: u64, len: usize) -> Bytes {
    if len <= CHUNK {
        let start = (offset % PERIOD as u64) as usize;
        return TABLE.slice(start..start + len);
    }
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

/// Whether `chunk` equals the pattern at `offset`.
pub fn is_pattern(offset: u64, chunk: &[u8]) -> bool {
    chunk
        .chunks(CHUNK)
        .enumerate()
        .all(|(index, part)| part == pattern(offset + (index * CHUNK) as u64, part.len()))
}

/// An [`AsyncRead`] yielding `len` bytes of the pattern, for uploads of any size.
#[derive(Debug, Clone)]
pub struct PatternReader {
    pos: u64,
    len: u64,
}

impl PatternReader {
    /// `len` bytes of the pattern from offset 0.
    pub fn new(len: u64) -> Self {
        PatternReader { pos: 0, len }
    }
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let count = (self.len - self.pos).min(buf.remaining().min(CHUNK) as u64) as usize;
        buf.put_slice(&pattern(self.pos, count));
        self.pos += count as u64;
        Poll::Ready(Ok(()))
    }
}

/// Stored file contents: real bytes, or `len` bytes of the pattern.
#[derive(Clone)]
pub(crate) enum Blob {
    Mem(Bytes),
    Pattern(u64),
}

impl Blob {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Blob::Mem(bytes) => bytes.len() as u64,
            Blob::Pattern(len) => *len,
        }
    }

    /// The bytes in `start..end` as chunks of at most [`CHUNK`].
    pub(crate) fn chunks(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = Bytes> + Send + use<> {
        let this = self.clone();
        (start..end).step_by(CHUNK).map(move |at| {
            let count = (end - at).min(CHUNK as u64) as usize;
            match &this {
                Blob::Mem(bytes) => bytes.slice(at as usize..at as usize + count),
                Blob::Pattern(_) => pattern(at, count),
            }
        })
    }

    /// All of it in memory (for small files and assertions).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Blob::Mem(bytes) => bytes.clone(),
            Blob::Pattern(len) => pattern(0, *len as usize),
        }
    }
}

impl From<Bytes> for Blob {
    fn from(bytes: Bytes) -> Self {
        Blob::Mem(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_slices_agree_with_the_byte_rule() {
        for offset in [0u64, 1, 250, 251, 70_000, (1 << 30) + 7] {
            let p = pattern(offset, 1000);
            assert!(
                p.iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern_byte(offset + i as u64))
            );
            assert!(is_pattern(offset, &p));
            assert!(!is_pattern(offset + 1, &p));
        }
        let big = pattern(3, CHUNK * 2 + 5);
        assert!(is_pattern(3, &big));
        let blob = Blob::Pattern(CHUNK as u64 * 2 + 9);
        let joined: Vec<u8> = blob.chunks(5, blob.len()).flatten().collect();
        assert!(is_pattern(5, &joined));
        assert_eq!(joined.len() as u64, blob.len() - 5);
    }
}
