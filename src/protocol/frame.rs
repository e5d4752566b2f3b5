use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// A request id. The client numbers its own requests; the server numbers its events in a
/// separate id space, so ids are only meaningful together with the frame direction.
pub type RequestId = u64;

/// The top-level `type` of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// `1`: a request (client → server method call, or server → client event).
    Request,
    /// `2`: a response or acknowledgement.
    Response,
}

impl FrameType {
    fn code(self) -> u8 {
        match self {
            FrameType::Request => 1,
            FrameType::Response => 2,
        }
    }
}

/// One WebSocket frame.
#[derive(Debug, Clone)]
pub enum Frame {
    /// `{"type":1,"id":N,"method":"…","payload":{…}}`.
    Request {
        /// Sender-chosen id.
        id: RequestId,
        /// Method (or event) name.
        method: String,
        /// Method-specific body, kept as raw JSON text.
        payload: Box<RawValue>,
    },
    /// `{"type":2,"id":N,"payload":{…}}`; `payload` is `None` for a bare acknowledgement or a
    /// response without a body.
    Response {
        /// Id of the request this answers.
        id: RequestId,
        /// Result (or error) object, kept as raw JSON text.
        payload: Option<Box<RawValue>>,
    },
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: u8,
    id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    // A present `null` payload stays `Some("null")` so that re-encoding is exact.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_raw"
    )]
    payload: Option<Box<RawValue>>,
}

fn present_raw<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Frame {
    /// A client → server request.
    pub fn request(id: RequestId, method: impl Into<String>, payload: Box<RawValue>) -> Self {
        Frame::Request {
            id,
            method: method.into(),
            payload,
        }
    }

    /// The bare acknowledgement of a server request: `{"type":2,"id":N}`.
    pub fn ack(id: RequestId) -> Self {
        Frame::Response { id, payload: None }
    }

    /// The frame type.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Request { .. } => FrameType::Request,
            Frame::Response { .. } => FrameType::Response,
        }
    }

    /// The frame id.
    pub fn id(&self) -> RequestId {
        match self {
            Frame::Request { id, .. } | Frame::Response { id, .. } => *id,
        }
    }

    /// Decodes one frame from the text of a WebSocket message.
    pub fn decode(text: &str) -> Result<Frame> {
        serde_json::from_str(text).map_err(|e| Error::protocol(format!("malformed frame: {e}")))
    }

    /// Encodes the frame as the text of one WebSocket message.
    pub fn encode(&self) -> String {
        // Serialising a frame of plain integers, strings and already-valid raw JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Frame {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Frame::Request {
                id,
                method,
                payload,
            } => {
                #[derive(Serialize)]
                struct R<'a> {
                    #[serde(rename = "type")]
                    kind: u8,
                    id: RequestId,
                    method: &'a str,
                    payload: &'a RawValue,
                }
                R {
                    kind: FrameType::Request.code(),
                    id: *id,
                    method,
                    payload,
                }
                .serialize(s)
            }
            Frame::Response { id, payload } => {
                #[derive(Serialize)]
                struct R<'a> {
                    #[serde(rename = "type")]
                    kind: u8,
                    id: RequestId,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    payload: Option<&'a RawValue>,
                }
                R {
                    kind: FrameType::Response.code(),
                    id: *id,
                    payload: payload.as_deref(),
                }
                .serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        match w.kind {
            1 => {
                let method = w.method.ok_or_else(|| D::Error::missing_field("method"))?;
                let payload = match w.payload {
                    Some(p) => p,
                    None => empty_object(),
                };
                Ok(Frame::Request {
                    id: w.id,
                    method: method.into_owned(),
                    payload,
                })
            }
            2 => Ok(Frame::Response {
                id: w.id,
                payload: w.payload,
            }),
            other => Err(D::Error::custom(format_args!("unknown frame type {other}"))),
        }
    }
}

/// `{}` as a raw value.
pub(crate) fn empty_object() -> Box<RawValue> {
    // "{}" is valid JSON; the fallback is unreachable but keeps this panic-free.
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| Box::<RawValue>::default())
}
