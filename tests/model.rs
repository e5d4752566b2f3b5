//! The pure protocol model against the fixtures and the official client's rules.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;
use trueconf_bot::Error;
use trueconf_bot::error::ApiErrorCode;
use trueconf_bot::methods::*;
use trueconf_bot::protocol::Frame;
use trueconf_bot::types::button::{Button, InlineKeyboard};
use trueconf_bot::types::http::*;
use trueconf_bot::types::message::Content;
use trueconf_bot::types::*;

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn payload_of(name: &str) -> Box<RawValue> {
    match Frame::decode(&fixture(name)).unwrap() {
        Frame::Request { payload, .. } => payload,
        Frame::Response { payload, .. } => payload.unwrap(),
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

/// Generates, for every request type, a request and a response round-trip through the typed
/// form, keyed by wire method.
macro_rules! method_table {
    ($($ty:ty),* $(,)?) => {
        const METHODS: &[(&str, bool)] = &[$((<$ty as Request>::METHOD, <$ty as Request>::IDEMPOTENT)),*];

        fn request_roundtrip(id: u64, method: &str, payload: &RawValue) -> Option<Value> {
            $(if method == <$ty as Request>::METHOD {
                let req: $ty = serde_json::from_str(payload.get())
                    .unwrap_or_else(|e| panic!("request {method}: {e}"));
                req.validate().unwrap_or_else(|e| panic!("fixture request {method} invalid: {e}"));
                let frame = encode_request(id, &req).unwrap();
                return Some(serde_json::from_str(&frame.encode()).unwrap());
            })*
            None
        }

        fn response_roundtrip(method: &str, payload: Option<&RawValue>) -> Option<Value> {
            $(if method == <$ty as Request>::METHOD {
                let resp = decode_response::<$ty>(payload)
                    .unwrap_or_else(|e| panic!("response {method}: {e}"));
                return Some(serde_json::to_value(&resp).unwrap());
            })*
            None
        }
    };
}

method_table!(
    Auth,
    SendMessage,
    EditMessage,
    RemoveMessage,
    ForwardMessage,
    GetMessageById,
    GetChatHistory,
    UploadFile,
    SendFile,
    GetFileInfo,
    SubscribeFileProgress,
    UnsubscribeFileProgress,
    GetFileUploadLimits,
    GetChats,
    GetChatById,
    CreateP2PChat,
    CreateGroupChat,
    CreateChannel,
    CreateFavoritesChat,
    RemoveChat,
    EditChatTitle,
    EditChatAvatar,
    ClearHistory,
    GetChatParticipants,
    GetChatParticipant,
    HasChatParticipant,
    AddChatParticipant,
    RemoveChatParticipant,
    ChangeParticipantRole,
    SendSurvey,
    EditSurvey,
    GetUserDisplayName,
    SendChatActivity,
    AnswerCommand,
);

fn http_roundtrip(stem: &str, text: &str) -> Option<Value> {
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> Value {
        serde_json::to_value(serde_json::from_str::<T>(text).unwrap()).unwrap()
    }
    Some(match stem {
        "http.token.request" | "http.oauth2.token.request" => rt::<TokenRequest>(text),
        "http.token.response" | "http.oauth2.token.response" | "http.authToken.response" => {
            rt::<TokenResponse>(text)
        }
        "http.token.error" | "http.token.error.passwordDisabled" => rt::<TokenError>(text),
        "http.oauth2.token.error.invalidScope" => rt::<WebApiError>(text),
        "http.webRestApiToken.request" => rt::<WebRestApiTokenRequest>(text),
        "http.webRestApiToken.response" => rt::<WebRestApiTokenResponse>(text),
        "http.authToken.request" => rt::<AuthCodeTokenRequest>(text),
        "http.upload.response" => rt::<trueconf_bot::types::file::UploadResponse>(text),
        "http.server.response" => rt::<ServerInfo>(text),
        _ => return None,
    })
}

/// The typed round trip of one fixture, or why it has none.
fn roundtrip(name: &str, text: &str) -> Result<Value, String> {
    let stem = name.strip_suffix(".json").ok_or("not a .json file")?;
    let mut parts = stem.split('.');
    let kind = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    if kind == "http" {
        return http_roundtrip(stem, text).ok_or_else(|| format!("no HTTP body type for {stem}"));
    }
    let frame = Frame::decode(text).map_err(|e| e.to_string())?;
    let frame_value: Value = serde_json::from_str(&frame.encode()).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    assert_eq!(frame_value, original, "{name}: Frame round trip");
    match (kind, frame) {
        ("ack", Frame::Response { id, payload: None }) => {
            Ok(serde_json::from_str(&Frame::ack(id).encode()).unwrap())
        }
        (
            "req",
            Frame::Request {
                id,
                method: m,
                payload,
            },
        ) => {
            if m != method {
                return Err(format!("file says {method}, frame says {m}"));
            }
            request_roundtrip(id, &m, &payload).ok_or_else(|| format!("no request type for {m}"))
        }
        ("resp", Frame::Response { id, payload }) if method == "error" => {
            let p: ErrorPayload = serde_json::from_str(payload.as_deref().unwrap().get()).unwrap();
            // Any method's decoder turns it into an error naming the method and code.
            match decode_response::<GetChatById>(payload.as_deref()) {
                Err(Error::Api { method, code, .. }) => {
                    assert_eq!(method, "getChatByID");
                    assert_eq!(code, p.code());
                }
                other => panic!("{name}: expected Error::Api, got {other:?}"),
            }
            let payload = serde_json::value::to_raw_value(&p).unwrap();
            let f = Frame::Response {
                id,
                payload: Some(payload),
            };
            Ok(serde_json::from_str(&f.encode()).unwrap())
        }
        ("resp", Frame::Response { id, payload }) => {
            let typed = response_roundtrip(method, payload.as_deref())
                .ok_or_else(|| format!("no response type for {method}"))?;
            let f = Frame::Response {
                id,
                payload: Some(serde_json::value::to_raw_value(&typed).unwrap()),
            };
            Ok(serde_json::from_str(&f.encode()).unwrap())
        }
        (
            "event",
            Frame::Request {
                id,
                method: m,
                payload,
            },
        ) => {
            if m != method {
                return Err(format!("file says {method}, frame says {m}"));
            }
            let event = Event::decode(&m, &payload).map_err(|e| e.to_string())?;
            if matches!(event, Event::Unknown { .. }) {
                return Err(format!("event method {m} decoded as Unknown"));
            }
            assert_eq!(event.method(), m);
            let (m2, p2) = event.encode().unwrap();
            Ok(serde_json::from_str(&Frame::request(id, m2, p2).encode()).unwrap())
        }
        (k, _) => Err(format!("fixture kind {k:?} maps to no type")),
    }
}

#[test]
fn every_fixture_round_trips_through_its_type() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 135, "only {} fixtures", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let text = fixture(name);
        let original: Value = serde_json::from_str(&text).unwrap();
        match std::panic::catch_unwind(|| roundtrip(name, &text)) {
            Ok(Ok(v)) if v == original => {}
            Ok(Ok(v)) => failures.push(format!(
                "{name}: re-encoded differently:\n {v}\n vs\n {original}"
            )),
            Ok(Err(why)) => failures.push(format!("{name}: {why}")),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_34_methods_are_in_the_table_and_distinct() {
    let mut m: Vec<&str> = METHODS.iter().map(|(m, _)| *m).collect();
    m.sort();
    m.dedup();
    assert_eq!(m.len(), 34);
}

#[test]
fn exactly_the_pure_reads_are_idempotent() {
    for (method, idempotent) in METHODS {
        let read = method.starts_with("get") || method.starts_with("has");
        assert_eq!(*idempotent, read, "{method}");
    }
}

#[test]
fn an_unmapped_fixture_name_fails() {
    let sticker = r#"{"type":1,"id":1,"method":"sendSticker","payload":{}}"#;
    assert!(roundtrip("req.sendSticker.json", sticker).is_err());
    assert!(roundtrip("http.unknown.json", "{}").is_err());
    assert!(roundtrip("weird.x.json", r#"{"type":2,"id":1}"#).is_err());
    let unknown_event = r#"{"type":1,"id":1,"method":"fooBar","payload":{}}"#;
    assert!(roundtrip("event.fooBar.json", unknown_event).is_err());
}

// ---- tolerance of the unknown ----

#[test]
fn unknown_event_method_keeps_raw_payload() {
    let p = raw(r#"{"chatId":"c","whatever":[1,2,{"x":null}]}"#);
    let e = Event::decode("somethingNew", &p).unwrap();
    match &e {
        Event::Unknown { method, payload } => {
            assert_eq!(method, "somethingNew");
            assert_eq!(payload.get(), p.get());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.method(), "somethingNew");
    assert_eq!(e.chat_id(), None);
    assert_eq!(e.payload().unwrap().get(), p.get());
}

#[test]
fn unknown_envelope_type_decodes_and_round_trips() {
    let json = r#"{"messageId":"m","chat":{"chatId":"c","chatTitle":null,"chatType":9},
        "timestamp":1,"type":777,"author":{"id":"a@x","type":4},"content":{"new":"shape"},"isEdited":false}"#;
    let e = Event::decode("sendMessage", &raw(json)).unwrap();
    let m = e.as_message().unwrap();
    match &m.content {
        Content::Unknown {
            envelope_type,
            content,
        } => {
            assert_eq!(*envelope_type, 777);
            assert_eq!(content["new"], "shape");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.chat_type(), Some(ChatType::Unknown(9)));
    assert_eq!(m.author.kind, AuthorType::Unknown(4));
    assert_eq!(m.kind(), MessageKind::Unknown);
    assert_eq!(e.chat_id(), Some("c"));
    let back: Value = serde_json::from_str(e.payload().unwrap().get()).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(json).unwrap());
}

#[test]
fn unknown_fields_are_ignored() {
    let json = r#"{"messageId":"m","chatId":"c","timestamp":1,"type":200,"brandNew":true,
        "author":{"id":"a@x","type":1,"extra":1},"content":{"text":"hi","parseMode":"text","fancy":{}},"isEdited":false}"#;
    let m: Message = serde_json::from_str(json).unwrap();
    assert_eq!(m.text(), Some("hi"));
    let chat: Chat = serde_json::from_str(
        r#"{"chatId":"c","title":"t","chatType":2,"unreadMessages":0,"lastMessage":null,"novel":1}"#,
    )
    .unwrap();
    assert_eq!(chat.chat_type, ChatType::Group);
    let limits = decode_response::<GetFileUploadLimits>(Some(&raw(
        r#"{"maxSize":null,"extensions":null,"perUser":5}"#,
    )))
    .unwrap();
    assert_eq!(limits.max_size, None);
}

#[test]
fn roles_decode_from_ints_and_strings_and_encode_as_strings() {
    let names = [
        "owner",
        "admin",
        "user",
        "conf_owner",
        "conf_moderator",
        "favorites_owner",
        "writer",
    ];
    for (i, name) in names.iter().enumerate() {
        let from_int: Role = serde_json::from_str(&i.to_string()).unwrap();
        let from_str: Role = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(from_int, from_str);
        assert_eq!(
            serde_json::to_string(&from_int).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(
        serde_json::from_str::<Role>("42").unwrap(),
        Role::Unknown("42".into())
    );
    assert_eq!(
        serde_json::from_str::<Role>("\"guest\"").unwrap(),
        Role::Unknown("guest".into())
    );
    let p: Participant = serde_json::from_str(r#"{"userId":"a@x","role":1}"#).unwrap();
    assert_eq!(p.role, Role::Admin);
    let e = Event::decode(
        "changeParticipantRole",
        &raw(r#"{"chatId":"c","userId":"u","role":6,"timestamp":1}"#),
    )
    .unwrap();
    assert!(matches!(e, Event::ParticipantRoleChanged(ref r) if r.role == Role::Writer));
}

#[test]
fn malformed_known_event_is_a_protocol_error_naming_the_method() {
    let err = Event::decode("removeChat", &raw(r#"{"title":"no chat id"}"#)).unwrap_err();
    match err {
        Error::Protocol(msg) => {
            assert!(
                msg.contains("removeChat") && msg.contains("chatId"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    let err = Event::decode("sendMessage", &raw(r#"{"messageId":"m","timestamp":1,"type":200,"author":{"id":"a","type":1},"content":{"nope":1}}"#)).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("sendMessage") && m.contains("200")),
        "{err}"
    );
}

#[test]
fn history_cleared_tolerates_string_booleans() {
    for (s, want) in [("\"true\"", true), ("\"false\"", false), ("true", true)] {
        let e = Event::decode(
            "clearHistory",
            &raw(&format!(r#"{{"chatId":"c","forAll":{s}}}"#)),
        )
        .unwrap();
        assert!(matches!(e, Event::HistoryCleared(ref h) if h.for_all == want));
    }
    assert!(Event::decode("clearHistory", &raw(r#"{"chatId":"c","forAll":"maybe"}"#)).is_err());
}

// ---- envelopes and helpers ----

#[test]
fn legacy_and_nested_envelopes_give_the_same_chat_id() {
    let legacy =
        Event::decode("sendMessage", &payload_of("event.sendMessage.legacy.json")).unwrap();
    let nested = Event::decode("sendMessage", &payload_of("event.sendMessage.plain.json")).unwrap();
    assert_eq!(legacy.chat_id(), nested.chat_id());
    assert_eq!(
        legacy.chat_id(),
        Some("4a1f88f1070d2f43d385cde9ff61964bc6b74477")
    );
    let only_chat: Message = serde_json::from_str(
        r#"{"messageId":"m","chat":{"chatId":"n","chatTitle":"t","chatType":1},"timestamp":1,"type":200,
        "author":{"id":"a","type":1},"content":{"text":"x","parseMode":"text"}}"#,
    )
    .unwrap();
    assert_eq!(only_chat.chat_id(), Some("n"));
    let v = serde_json::to_value(&only_chat).unwrap();
    assert!(v.get("chatId").is_none() && v.get("box").is_none() && v.get("isEdited").is_none());
}

fn message(name: &str) -> Message {
    match Event::decode("sendMessage", &payload_of(name)).unwrap() {
        Event::Message(m) => m,
        other => panic!("{other:?}"),
    }
}

/// Content is decoded from its JSON text, not through a `Value` tree; a message still
/// decodes from every serde_json source, whatever the key order.
#[test]
fn messages_decode_from_text_values_and_with_type_after_content() {
    let text = payload_of("event.sendMessage.plain.json");
    let from_text: Message = serde_json::from_str(text.get()).unwrap();
    let value: Value = serde_json::from_str(text.get()).unwrap();
    let from_value: Message = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(from_text, from_value);
    assert_eq!(serde_json::to_value(&from_text).unwrap(), value);
    let late_type = r#"{"content":{"text":"hi","parseMode":"text"},"messageId":"m","chatId":"c",
        "timestamp":1,"author":{"id":"a@x","type":1},"type":200}"#;
    let m: Message = serde_json::from_str(late_type).unwrap();
    assert_eq!(m.text(), Some("hi"));
    let bad: Result<Message, _> = serde_json::from_str(&late_type.replace("\"hi\"", "7"));
    assert!(bad.unwrap_err().to_string().contains("envelope type 200"));
}

#[test]
fn message_kinds_follow_the_official_classification() {
    let cases = [
        ("event.sendMessage.plain.json", MessageKind::Text),
        ("event.sendMessage.attachment.json", MessageKind::Document),
        ("event.sendMessage.sticker.json", MessageKind::Sticker),
        ("event.sendMessage.voice.json", MessageKind::Voice),
        ("event.sendMessage.location.json", MessageKind::Location),
        ("event.sendMessage.survey.json", MessageKind::Survey),
        ("event.sendMessage.forwarded.json", MessageKind::Forwarded),
        (
            "event.sendMessage.system.addParticipant.json",
            MessageKind::System,
        ),
        (
            "event.sendMessage.system.clearHistory.json",
            MessageKind::System,
        ),
    ];
    for (name, kind) in cases {
        assert_eq!(message(name).kind(), kind, "{name}");
    }
    use trueconf_bot::types::message::classify_mime;
    assert_eq!(classify_mime("image/png"), MessageKind::Photo);
    assert_eq!(classify_mime("video/mp4"), MessageKind::Video);
    assert_eq!(classify_mime("audio/mpeg"), MessageKind::Audio);
    assert_eq!(classify_mime("text/vcard"), MessageKind::Contact);
    assert_eq!(classify_mime("application/zip"), MessageKind::Document);
    let mut m = message("event.sendMessage.plain.json");
    if let Content::Text(t) = &mut m.content {
        t.text = r#"<a href="trueconf:bob@x&do=profile">Bob</a>"#.into();
    }
    assert_eq!(m.kind(), MessageKind::Contact);
}

#[test]
fn message_helpers() {
    let m = message("event.sendMessage.reply.json");
    assert_eq!(
        m.reply_to_id(),
        Some("8fe61d87-6db0-4792-8f5e-e5960c7d5a06")
    );
    assert_eq!(
        m.reply_message.as_ref().unwrap().text(),
        Some("Hello, world!")
    );
    assert_eq!(m.author_id(), "alice@video.example.com");
    assert!(!m.is_system() && !m.is_edited());
    let b = message("event.sendMessage.buttons.json");
    let kb = b.buttons().unwrap();
    assert_eq!(kb.len(), 2);
    assert_eq!(kb.rows()[0][0].custom_data.as_deref(), Some("ticket=4711"));
    let s = message("event.sendMessage.system.participantRole.json");
    assert!(s.is_system());
    assert!(matches!(s.content, Content::ParticipantRole(ref r) if r.role == Role::Admin));
    let f = message("event.sendMessage.forwarded.json");
    match &f.content {
        Content::Forwarded(inner) => {
            assert_eq!(inner.text(), Some("Server restart at 18:00"));
            assert_eq!(
                inner.chat_id(),
                Some("9b2e6c1d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_event_routes_by_source_message_chat() {
    let e = Event::decode("command", &payload_of("event.command.waitReply.json")).unwrap();
    assert_eq!(
        e.chat_id(),
        Some("4a1f88f1070d2f43d385cde9ff61964bc6b74477")
    );
    match e {
        Event::Command(c) => {
            assert_eq!(c.command(), "/confirm");
            assert_eq!(c.custom_data(), Some("ticket=4711"));
            assert_eq!(
                c.command_id.as_deref(),
                Some("a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d")
            );
            assert_eq!(c.command_source.button_id.as_deref(), Some("btn-yes"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_created_events_keep_their_kind() {
    for (m, kind, t) in [
        ("createP2PChat", ChatCreatedKind::P2p, ChatType::P2p),
        ("createGroupChat", ChatCreatedKind::Group, ChatType::Group),
        ("createChannel", ChatCreatedKind::Channel, ChatType::Channel),
        (
            "createFavoritesChat",
            ChatCreatedKind::Favorites,
            ChatType::Favorites,
        ),
    ] {
        let e = Event::decode(m, &payload_of(&format!("event.{m}.json"))).unwrap();
        assert_eq!(e.method(), m);
        assert!(
            matches!(e, Event::ChatCreated { kind: k, ref chat } if k == kind && chat.chat_type == t)
        );
    }
}

// ---- responses ----

#[test]
fn get_chats_accepts_a_bare_array() {
    let list = decode_response::<GetChats>(Some(&raw(
        r#"[{"chatId":"a","title":"A","chatType":1,"unreadMessages":0,"lastMessage":null}]"#,
    )))
    .unwrap();
    assert_eq!(list.chats.len(), 1);
    let wrapped = decode_response::<GetChats>(Some(&payload_of("resp.getChats.json"))).unwrap();
    assert_eq!(wrapped.chats.len(), 2);
    assert_eq!(
        wrapped.chats[1].avatar_url(),
        Some("https://video.example.com/avatars/9b2e6c1d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c.png")
    );
}

#[test]
fn empty_or_missing_payloads_decode() {
    assert_eq!(decode_response::<RemoveMessage>(None).unwrap(), Empty {});
    assert_eq!(
        decode_response::<RemoveChat>(Some(&raw("null"))).unwrap(),
        Empty {}
    );
    assert_eq!(
        decode_response::<ClearHistory>(Some(&raw(r#"{"errorCode":0}"#))).unwrap(),
        Empty {}
    );
    assert!(decode_response::<GetChatById>(None).is_err());
}

#[test]
fn error_codes_become_typed_errors() {
    match decode_response::<Auth>(Some(&payload_of("resp.error.auth.json"))) {
        Err(Error::Auth { code, .. }) => assert_eq!(code, Some(ApiErrorCode::CREDENTIALS_EXPIRED)),
        other => panic!("{other:?}"),
    }
    match decode_response::<UploadFile>(Some(&payload_of("resp.error.file.json"))) {
        Err(Error::Api {
            method,
            code,
            payload,
        }) => {
            assert_eq!(method, "uploadFile");
            assert_eq!(code.0, 406);
            assert!(payload.unwrap().contains("406"));
        }
        other => panic!("{other:?}"),
    }
    // An auth-range code on a non-auth method stays an API error.
    assert!(matches!(
        decode_response::<SendMessage>(Some(&raw(r#"{"errorCode":200}"#))),
        Err(Error::Api { .. })
    ));
}

#[test]
fn file_info_accepts_info_hash() {
    let info = decode_response::<GetFileInfo>(Some(&raw(
        r#"{"infoHash":"h1","name":"a.txt","size":3,"mimeType":"text/plain","readyState":1,"downloadUrl":null,"previews":null}"#,
    )))
    .unwrap();
    assert_eq!(info.id(), Some("h1"));
    assert_eq!(info.download_url(), None);
    assert!(info.previews().is_empty() && !info.is_ready());
    let v = serde_json::to_value(&info).unwrap();
    assert!(v["downloadUrl"].is_null() && v.get("fileId").is_none());
}

#[test]
fn auth_response_bot_id_strips_resource() {
    let r = decode_response::<Auth>(Some(&payload_of("resp.auth.json"))).unwrap();
    assert_eq!(r.bot_id(), "helpdesk_bot@video.example.com");
}

#[test]
fn server_version_parse_and_check() {
    let info: ServerInfo = serde_json::from_str(&fixture("http.server.response.json")).unwrap();
    assert_eq!(info.domain(), "video.example.com");
    let v = info.version().unwrap();
    assert_eq!((v.major, v.minor, v.patch, v.build), (5, 5, 3, 1234));
    assert!(info.supports_bots().unwrap());
    assert!(!"5.4.9".parse::<ServerVersion>().unwrap().supports_bots());
    assert!("5.5.0".parse::<ServerVersion>().unwrap().supports_bots());
    assert!("5.5".parse::<ServerVersion>().unwrap().supports_bots());
    assert!(
        "6.0.0-beta"
            .parse::<ServerVersion>()
            .unwrap()
            .supports_bots()
    );
    assert!("garbage".parse::<ServerVersion>().is_err());
}

#[test]
fn upload_limits_check() {
    let l: UploadLimits =
        serde_json::from_str(r#"{"maxSize":100,"extensions":{"mode":"block","list":["exe"]}}"#)
            .unwrap();
    assert!(l.check("a.pdf", 100).is_ok());
    assert!(matches!(
        l.check("a.pdf", 101),
        Err(Error::InvalidArgument {
            argument: "file",
            ..
        })
    ));
    assert!(l.check("virus.EXE", 1).is_err());
    let allow: UploadLimits =
        serde_json::from_str(r#"{"maxSize":null,"extensions":{"mode":"allow","list":["png"]}}"#)
            .unwrap();
    assert!(allow.check("x.png", u64::MAX).is_ok());
    assert!(allow.check("x.jpg", 1).is_err());
    assert!(UploadLimits::default().check("anything", u64::MAX).is_ok());
}

#[test]
fn secrets_are_not_in_debug_output() {
    let a = Auth::new("super-secret-token");
    assert!(!format!("{a:?}").contains("super-secret"));
    let t = TokenRequest::password("bot", "hunter2");
    assert!(!format!("{t:?}").contains("hunter2"));
}

// ---- encoders ----

fn fixture_payload_value(name: &str) -> Value {
    serde_json::from_str::<Value>(&fixture(name)).unwrap()["payload"].clone()
}

#[test]
fn builders_produce_the_official_wire_shape() {
    let v = |r: &dyn erased::Enc| r.value();
    assert_eq!(
        v(&SendMessage::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            "Hello, world!"
        )),
        fixture_payload_value("req.sendMessage.json")
    );
    assert_eq!(
        v(&SendMessage::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            "Got it, **thanks**"
        )
        .reply_to("267d61f2-2ba1-4e88-83ab-bb84415f31b6")
        .parse_mode(ParseMode::Markdown)),
        fixture_payload_value("req.sendMessage.reply.json")
    );
    let kb = InlineKeyboard::builder()
        .row([
            Button::command("Yes", "/confirm")
                .custom_data("ticket=4711")
                .style(ButtonStyle::Success),
            Button::command("No", "/cancel").style(ButtonStyle::Danger),
        ])
        .row([Button::url("https://helpdesk.example.com/t/4711").label("Open ticket")])
        .row([
            Button::copy("Copy ID", "4711"),
            Button::message("Ask again", "Status of ticket 4711?").draft(true),
        ])
        .build()
        .unwrap();
    assert_eq!(
        v(&SendMessage::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            "Close ticket <b>4711</b>?"
        )
        .parse_mode(ParseMode::Html)
        .buttons(kb)),
        fixture_payload_value("req.sendMessage.buttons.json")
    );
    assert_eq!(
        v(&GetChatHistory::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            2
        )),
        fixture_payload_value("req.getChatHistory.json")
    );
    assert_eq!(
        v(&SendFile::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            "d15ea5e0-5bad-4c0d-9e11-223344556677"
        )
        .reply_to("267d61f2-2ba1-4e88-83ab-bb84415f31b6")),
        fixture_payload_value("req.sendFile.sticker.json")
    );
    assert_eq!(
        v(&SendFile::new(
            "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
            "c0ffee00-1234-4abc-9def-0123456789ab"
        )
        .caption(Caption::new("Annual report <b>2025</b>").parse_mode(ParseMode::Html))),
        fixture_payload_value("req.sendFile.json")
    );
    assert_eq!(
        v(&RemoveMessage::new("8fe61d87-6db0-4792-8f5e-e5960c7d5a06").for_all(true)),
        fixture_payload_value("req.removeMessage.json")
    );
    assert_eq!(
        v(&AddChatParticipant::new(
            "9b2e6c1d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c",
            "carol@video.example.com"
        )
        .display_history(true)),
        fixture_payload_value("req.addChatParticipant.json")
    );
    assert_eq!(
        v(&GetFileUploadLimits {}),
        fixture_payload_value("req.getFileUploadLimits.json")
    );
    assert_eq!(
        v(&CreateFavoritesChat {}),
        fixture_payload_value("req.createFavoritesChat.json")
    );
    assert_eq!(
        v(&AnswerCommand::new(
            "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",
            AnswerType::Complete,
            "Ticket 4711 closed"
        )
        .status(CommandStatus::Ok)
        .visibility(CommandVisibility::Toast)
        .level(CommandLevel::Info)),
        fixture_payload_value("req.answerCommand.json")
    );
    assert_eq!(
        v(&Auth::new(
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJoZWxwZGVza19ib3QiLCJleHAiOjE3NjY4NTAxNzB9.c2lnbmF0dXJl"
        )),
        fixture_payload_value("req.auth.json")
    );
}

#[test]
fn survey_builders_match_the_official_client() {
    let s = SendSurvey::new(
        "9b2e6c1d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c",
        "video.example.com",
        "employee_testing",
        "Employee survey",
    );
    let secret = s.content.secret.clone().unwrap();
    assert_eq!(secret.len(), 40);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    let mut got = serde_json::to_value(&s).unwrap();
    let mut want = fixture_payload_value("req.sendSurvey.json");
    got["content"]["secret"] = Value::Null;
    want["content"]["secret"] = Value::Null;
    assert_eq!(got, want);
    let other = SendSurvey::new("c", "d", "p", "t");
    assert_ne!(other.content.secret, s.content.secret);
    let e = EditSurvey::new(
        "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a",
        "video.example.com",
        "employee_testing",
        "Employee survey 2026",
    )
    .anonymous(true);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        fixture_payload_value("req.editSurvey.json")
    );
}

#[test]
fn bare_logins_are_completed_with_the_domain() {
    let mut r = CreateP2PChat::new("alice");
    r.complete_user_ids("video.example.com");
    assert_eq!(r.user_id, "alice@video.example.com");
    let mut r = ChangeParticipantRole::new("c", "bob@other.example", Role::Admin);
    r.complete_user_ids("video.example.com");
    assert_eq!(r.user_id, "bob@other.example");
    let kb = InlineKeyboard::builder()
        .button(Button::command("Go", "/go").to("carol"))
        .build()
        .unwrap();
    let mut m = SendMessage::new("c", "x").buttons(kb);
    m.complete_user_ids("video.example.com");
    assert_eq!(
        m.content.buttons.unwrap().rows()[0][0].to.as_deref(),
        Some("carol@video.example.com")
    );
}

mod erased {
    use serde_json::Value;

    pub trait Enc {
        fn value(&self) -> Value;
    }

    impl<T: serde::Serialize> Enc for T {
        fn value(&self) -> Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

// ---- validation ----

fn rejects(r: trueconf_bot::Result<()>, field: &str) {
    match r {
        Err(Error::InvalidArgument { argument, .. }) => assert_eq!(argument, field),
        other => panic!("expected InvalidArgument({field}), got {other:?}"),
    }
}

#[test]
fn text_length_and_blank_text() {
    let max = "a".repeat(trueconf_bot::format::MAX_TEXT_LEN);
    assert!(SendMessage::new("c", max.clone()).validate().is_ok());
    rejects(SendMessage::new("c", format!("{max}a")).validate(), "text");
    rejects(SendMessage::new("c", "").validate(), "text");
    rejects(SendMessage::new("c", " \n\t").validate(), "text");
    assert!(EditMessage::new("m", max.clone()).validate().is_ok());
    rejects(EditMessage::new("m", format!("{max}a")).validate(), "text");
    rejects(EditMessage::new("m", "  ").validate(), "text");
    // Counted in characters, not bytes.
    assert!(SendMessage::new("c", "я".repeat(4096)).validate().is_ok());
}

#[test]
fn caption_length() {
    let max = "a".repeat(4096);
    assert!(
        SendFile::new("c", "t")
            .caption(max.clone())
            .validate()
            .is_ok()
    );
    rejects(
        SendFile::new("c", "t")
            .caption(format!("{max}b"))
            .validate(),
        "caption",
    );
    assert!(SendFile::new("c", "t").validate().is_ok());
}

#[test]
fn history_count_and_pages() {
    assert!(GetChatHistory::new("c", 1).validate().is_ok());
    rejects(GetChatHistory::new("c", 0).validate(), "count");
    assert!(GetChats::new(10, 1).validate().is_ok());
    rejects(GetChats::new(10, 0).validate(), "page");
    assert!(GetChatParticipants::new("c", 10, 1).validate().is_ok());
    rejects(
        GetChatParticipants::new("c", 10, 0).validate(),
        "pageNumber",
    );
}

#[test]
fn chat_titles() {
    let max = "t".repeat(256);
    assert!(CreateGroupChat::new(max.clone()).validate().is_ok());
    assert!(CreateChannel::new(max.clone()).validate().is_ok());
    rejects(CreateGroupChat::new(format!("{max}t")).validate(), "title");
    rejects(CreateChannel::new(format!("{max}t")).validate(), "title");
    rejects(CreateGroupChat::new("").validate(), "title");
    rejects(CreateChannel::new("   ").validate(), "title");
}

#[test]
fn answer_command_text() {
    let ok = |t: &str| AnswerCommand::new("id", AnswerType::Message, t).validate();
    assert!(ok(&"x".repeat(255)).is_ok());
    assert!(ok("x").is_ok());
    rejects(ok(""), "text");
    rejects(ok(&"x".repeat(256)), "text");
    rejects(ok("héllo"), "text");
    rejects(
        AnswerCommand::new("", AnswerType::Cancel, "x").validate(),
        "commandId",
    );
}

#[test]
fn keyboard_limits() {
    let b = || Button::command("b", "/b");
    assert!(
        InlineKeyboard::builder()
            .row((0..8).map(|_| b()))
            .build()
            .is_ok()
    );
    rejects(
        InlineKeyboard::builder()
            .row((0..9).map(|_| b()))
            .build()
            .map(drop),
        "buttons",
    );
    let eight_rows = (0..8).fold(InlineKeyboard::builder(), |k, _| k.row((0..8).map(|_| b())));
    assert_eq!(eight_rows.clone().build().unwrap().len(), 64);
    rejects(eight_rows.button(b()).build().map(drop), "buttons");
}

#[test]
fn button_rules() {
    let v = |b: Button| b.validate();
    // label
    assert!(v(Button::command("x".repeat(32), "/c")).is_ok());
    rejects(v(Button::command("x".repeat(33), "/c")), "button.label");
    rejects(v(Button::command("", "/c")), "button.label");
    rejects(v(Button::copy("", "d")), "button.label");
    assert!(
        v(Button::url("https://a.b")).is_ok(),
        "url buttons need no label"
    );
    let mut no_label = Button::command("l", "/c");
    no_label.label = None;
    rejects(v(no_label), "button.label");
    // command
    assert!(v(Button::command("l", "c".repeat(255))).is_ok());
    rejects(v(Button::command("l", "c".repeat(256))), "button.command");
    rejects(v(Button::command("l", "")), "button.command");
    rejects(v(Button::command("l", "/café")), "button.command");
    // customData
    assert!(v(Button::command("l", "/c").custom_data("d".repeat(4096))).is_ok());
    rejects(
        v(Button::command("l", "/c").custom_data("d".repeat(4097))),
        "button.customData",
    );
    rejects(
        v(Button::command("l", "/c").custom_data("")),
        "button.customData",
    );
    rejects(
        v(Button::command("l", "/c").custom_data("ü")),
        "button.customData",
    );
    rejects(
        v(Button::copy("l", "d").custom_data("x")),
        "button.customData",
    );
    // url
    assert!(v(Button::url("http://a")).is_ok(), "8 characters");
    rejects(v(Button::url("http://")), "button.url");
    assert!(v(Button::url(format!("https://{}", "a".repeat(8087)))).is_ok());
    rejects(
        v(Button::url(format!("https://{}", "a".repeat(8088)))),
        "button.url",
    );
    rejects(v(Button::url("ftp://example.com")), "button.url");
    rejects(v(Button::url("https://exämple.com")), "button.url");
    assert!(v(Button::url("mailto:a@b.cd")).is_ok());
    assert!(v(Button::url("trueconf:alice@x")).is_ok());
    // copy data
    assert!(v(Button::copy("l", "d".repeat(4095))).is_ok());
    rejects(v(Button::copy("l", "d".repeat(4096))), "button.data");
    rejects(v(Button::copy("l", "")), "button.data");
    // exactly one action
    let mut two = Button::command("l", "/c");
    two.url = Some("https://example.com".into());
    rejects(v(two), "button");
    let mut none = Button::command("l", "/c");
    none.command = None;
    rejects(v(none), "button");
    let mut mismatch = Button::command("l", "/c");
    mismatch.kind = ButtonType::Url;
    rejects(v(mismatch), "button.type");
    rejects(v(Button::copy("l", "d").draft(true)), "button.draft");
    rejects(v(Button::command("l", "/c").to("")), "button.to");
    // Invalid buttons inside a message fail the message.
    let bad = InlineKeyboard(vec![vec![Button::command("l", "")]]);
    rejects(
        SendMessage::new("c", "x").buttons(bad).validate(),
        "button.command",
    );
}

#[test]
fn stickers_must_be_webp() {
    let webp = b"RIFF\x10\0\0\0WEBPVP8 ";
    assert!(is_webp(webp));
    assert!(!is_webp(b"\x89PNG\r\n\x1a\n\0\0\0\0"));
    assert!(!is_webp(b"RIFF\0\0\0\0WAVE"));
    assert!(!is_webp(b"RIFF"));
    assert!(trueconf_bot::types::file::check_sticker(webp).is_ok());
    rejects(
        trueconf_bot::types::file::check_sticker(b"GIF89a......"),
        "sticker",
    );
}

#[test]
fn token_check() {
    use std::time::{Duration, UNIX_EPOCH};
    use trueconf_bot::protocol::token;
    let t = serde_json::from_str::<Value>(&fixture("http.token.response.json")).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let info = token::check(&t, UNIX_EPOCH + Duration::from_secs(1_766_850_170)).unwrap();
    assert_eq!(info.subject.as_deref(), Some("helpdesk_bot"));
    assert!(matches!(
        token::check(&t, UNIX_EPOCH + Duration::from_secs(1_766_850_171)),
        Err(Error::Auth { .. })
    ));
    rejects(token::check("a.b", UNIX_EPOCH).map(drop), "token");
    rejects(Auth::new("has space").validate(), "token");
}

// ---- frames ----

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let payload = || json_value().prop_map(|v| serde_json::value::to_raw_value(&v).unwrap());
    prop_oneof![
        (any::<u64>(), "[A-Za-z][A-Za-z0-9_]{0,24}", payload())
            .prop_map(|(id, m, p)| Frame::request(id, m, p)),
        (any::<u64>(), prop::option::of(payload()))
            .prop_map(|(id, payload)| Frame::Response { id, payload }),
        any::<u64>().prop_map(Frame::ack),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn frames_round_trip(frame in arb_frame()) {
        let text = frame.encode();
        let back = Frame::decode(&text).unwrap();
        prop_assert_eq!(back.id(), frame.id());
        prop_assert_eq!(back.frame_type(), frame.frame_type());
        prop_assert_eq!(back.encode(), text.clone());
        match (&frame, &back) {
            (Frame::Request { method: a, payload: pa, .. }, Frame::Request { method: b, payload: pb, .. }) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(pa.get(), pb.get());
            }
            (Frame::Response { payload: pa, .. }, Frame::Response { payload: pb, .. }) => {
                prop_assert_eq!(pa.as_ref().map(|p| p.get()), pb.as_ref().map(|p| p.get()));
            }
            _ => prop_assert!(false, "frame type changed"),
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic_event_decoding(
        method in prop::sample::select(vec![
            "sendMessage", "command", "editMessage", "removeMessage", "createP2PChat",
            "removeChat", "clearHistory", "changeParticipantRole", "getFileUploadLimits",
            "uploadFileProgress", "other",
        ]),
        v in json_value(),
    ) {
        let p = serde_json::value::to_raw_value(&v).unwrap();
        let _ = Event::decode(method, &p);
    }
}
