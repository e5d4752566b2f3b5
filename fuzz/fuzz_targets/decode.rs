//! Frame and envelope decoding on arbitrary input: `Frame::decode`, then for a request its
//! payload as a typed `Event` under its own method and under every known event method, and a
//! re-encoded frame must decode again to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trueconf_bot::protocol::Frame;
use trueconf_bot::types::Event;

const METHODS: &[&str] = &[
    "sendMessage",
    "editMessage",
    "removeMessage",
    "command",
    "createP2PChat",
    "createGroupChat",
    "createChannel",
    "createFavoritesChat",
    "removeChat",
    "editChatTitle",
    "editChatAvatar",
    "clearHistory",
    "addChatParticipant",
    "removeChatParticipant",
    "changeParticipantRole",
    "uploadFileProgress",
    "getFileUploadLimits",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = Frame::decode(text) else {
        return;
    };
    // What we decoded we must be able to send back and read again identically.
    let again = Frame::decode(&frame.encode()).expect("a decoded frame re-encodes to valid JSON");
    assert_eq!(again.id(), frame.id());
    assert_eq!(again.encode(), frame.encode());
    if let Frame::Request {
        method, payload, ..
    } = &frame
    {
        let _ = Event::decode(method, payload);
        for m in METHODS {
            let _ = Event::decode(m, payload);
        }
    }
});
