//! Integration tests of the server emulator over real sockets, with a raw WebSocket client
//! (not our `Bot`), checked against the protocol fixtures.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use trueconf_bot::testkit::{ExtensionFilter, LoadSpec, OAuthApp, Sim, SimConfig, UploadLimits};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
const WAIT: Duration = Duration::from_secs(5);

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).expect("json")
}

/// Every key of the fixture exists in `got` with the same JSON type (a fixture `null` matches
/// anything): the emulator speaks the dialect the fixtures document.
fn assert_shape(fixture: &Value, got: &Value, path: &str) {
    match (fixture, got) {
        (Value::Null, _) => {}
        (Value::Object(f), Value::Object(g)) => {
            for (k, v) in f {
                let sub = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {got}"));
                assert_shape(v, sub, &format!("{path}.{k}"));
            }
        }
        (Value::Array(f), Value::Array(g)) => {
            if let (Some(f0), Some(g0)) = (f.first(), g.first()) {
                assert_shape(f0, g0, &format!("{path}[0]"));
            }
        }
        (f, g) => assert_eq!(
            std::mem::discriminant(f),
            std::mem::discriminant(g),
            "{path}: fixture {f} vs sim {g}"
        ),
    }
}

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Client {
    ws: Ws,
    next_id: u64,
    events: VecDeque<Value>,
    auto_ack: bool,
}

impl Client {
    async fn connect(sim: &Sim) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .expect("websocket handshake");
        Client {
            ws,
            next_id: 1,
            events: VecDeque::new(),
            auto_ack: true,
        }
    }

    async fn bot(sim: &Sim) -> Client {
        Self::bot_with(sim, false, false).await
    }

    async fn bot_with(sim: &Sim, unread: bool, system: bool) -> Client {
        let mut c = Self::connect(sim).await;
        let r = c.auth(&sim.bot_token(), unread, system).await;
        assert!(r.get("errorCode").is_none(), "auth failed: {r}");
        c
    }

    async fn auth(&mut self, token: &str, unread: bool, system: bool) -> Value {
        self.call(
            "auth",
            json!({ "token": token, "tokenType": "JWT", "receiveUnread": unread,
                    "receiveSystemMessageEnvelopes": system }),
        )
        .await
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// Next frame from the socket, `None` when the socket closed.
    async fn frame(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("frame within timeout")
            {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("valid JSON frame"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Calls a method and returns the response payload (events seen meanwhile are buffered).
    async fn call(&mut self, method: &str, payload: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "type": 1, "id": id, "method": method, "payload": payload }))
            .await;
        loop {
            let f = self.frame().await.expect("socket open");
            if f["type"] == 2 && f["id"] == id {
                assert!(f.get("method").is_none());
                return f.get("payload").cloned().unwrap_or(json!({}));
            }
            self.buffer(f).await;
        }
    }

    async fn buffer(&mut self, f: Value) {
        assert_eq!(f["type"], 1, "unexpected frame {f}");
        if self.auto_ack {
            let id = f["id"].clone();
            self.send(json!({ "type": 2, "id": id })).await;
        }
        self.events.push_back(f);
    }

    /// The next event frame with this method (others are dropped).
    async fn event(&mut self, method: &str) -> Value {
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                let e = self.events.remove(i).expect("present");
                self.events.drain(..i);
                return e;
            }
            let f = self.frame().await.expect("socket open");
            self.buffer(f).await;
        }
    }

    async fn ok(&mut self, method: &str, payload: Value) -> Value {
        let r = self.call(method, payload).await;
        assert!(r.get("errorCode").is_none(), "{method} failed: {r}");
        r
    }

    async fn err(&mut self, method: &str, payload: Value) -> u64 {
        let r = self.call(method, payload).await;
        r["errorCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("{method} should fail, got {r}"))
    }
}

async fn sim() -> Sim {
    provider();
    Sim::start(SimConfig::default()).await.expect("sim starts")
}

fn text(t: &str) -> Value {
    json!({ "text": t, "parseMode": "text" })
}

#[tokio::test]
async fn http_endpoints_tokens_and_oauth_flow() {
    provider();
    let sim = Sim::start(SimConfig {
        oauth_apps: vec![
            OAuthApp {
                client_id: "app".into(),
                scopes: vec!["version:read".into()],
            },
            OAuthApp {
                client_id: "noscope".into(),
                scopes: vec![],
            },
        ],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = sim.url();
    let info: Value = http
        .get(format!("{url}/api/v4/server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_shape(&fixture("http.server.response"), &info, "server");
    assert_eq!(info["product"]["display_name"], "sim.example");

    let token = |user: &str, pw: &str| json!({ "client_id": "chat_bot", "grant_type": "password", "username": user, "password": pw });
    let r = http
        .post(format!("{url}/bridge/api/client/v1/oauth/token"))
        .json(&token("bot", "bot-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_shape(&fixture("http.token.response"), &body, "token");
    // The issued token authenticates the WebSocket.
    let mut c = Client::connect(&sim).await;
    let auth = c
        .auth(body["access_token"].as_str().unwrap(), false, false)
        .await;
    assert_shape(&fixture("resp.auth")["payload"], &auth, "auth");
    assert!(
        auth["userId"]
            .as_str()
            .unwrap()
            .starts_with("bot@sim.example/")
    );

    let r = http
        .post(format!("{url}/bridge/api/client/v1/oauth/token"))
        .json(&token("bot", "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());

    sim.set_password_login(false);
    let r = http
        .post(format!("{url}/bridge/api/client/v1/oauth/token"))
        .json(&token("bot", "bot-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "auth_method_disabled"
    );

    // §2.1: OAuth application flow still works with password login off.
    let step1 = |app: &str| json!({ "client_id": app, "grant_type": "password", "username": "bot", "password": "bot-password" });
    let r = http
        .post(format!("{url}/api/v4/oauth2/token"))
        .json(&step1("noscope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "invalidScope");
    let web: Value = http
        .post(format!("{url}/api/v4/oauth2/token"))
        .json(&step1("app"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code: Value = http
        .post(format!(
            "{url}/bridge/api/client/v1/auth/web_rest_api_token"
        ))
        .json(&json!({ "client_id": "bot", "token": web["access_token"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .post(format!("{url}/bridge/api/client/v1/auth/token"))
        .json(
            &json!({ "client_id": "user", "grant_type": "authorization_code",
                       "code": code["authorization_code"] }),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let jwt: Value = r.json().await.unwrap();
    let mut c = Client::connect(&sim).await;
    let auth = c
        .auth(jwt["access_token"].as_str().unwrap(), false, false)
        .await;
    assert!(auth["userId"].is_string(), "{auth}");
    // A code is single-use.
    let r = http
        .post(format!("{url}/bridge/api/client/v1/auth/token"))
        .json(
            &json!({ "client_id": "user", "grant_type": "authorization_code",
                       "code": code["authorization_code"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn auth_errors() {
    let sim = sim().await;
    let mut c = Client::connect(&sim).await;
    assert_eq!(
        c.err("getChats", json!({ "count": 10, "page": 1 })).await,
        200
    );
    assert_eq!(c.auth("not.a.jwt", false, false).await["errorCode"], 201);
    let forged = {
        let t = sim.bot_token();
        let (head, _) = t.rsplit_once('.').unwrap();
        format!("{head}.AAAA")
    };
    assert_eq!(c.auth(&forged, false, false).await["errorCode"], 201);
    assert_eq!(
        c.auth(&sim.expired_token_for("bot"), false, false).await["errorCode"],
        203
    );
    let r = c
        .call(
            "auth",
            json!({ "token": sim.bot_token(), "tokenType": "Bearer" }),
        )
        .await;
    assert_eq!(r["errorCode"], 204);
    sim.set_user_disabled("bot", true);
    assert_eq!(
        c.auth(&sim.bot_token(), false, false).await["errorCode"],
        202
    );
    sim.set_user_disabled("bot", false);
    assert!(c.auth(&sim.bot_token(), false, false).await["userId"].is_string());
    assert_eq!(c.err("noSuchMethod", json!({})).await, 104);
    assert_eq!(c.err("sendMessage", json!({ "chatId": 5 })).await, 399);
    assert_eq!(sim.requests()[0].method, "getChats");
    // Keepalive is WebSocket-level: a Ping is answered with a Pong right away.
    c.ws.send(Message::Ping(b"hb"[..].into())).await.unwrap();
    match tokio::time::timeout(WAIT, c.ws.next()).await.unwrap() {
        Some(Ok(Message::Pong(p))) => assert_eq!(p.as_ref(), b"hb"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_events_and_history() {
    let sim = sim().await;
    let mut bot = Client::bot(&sim).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let created = bot.event("createP2PChat").await;
    assert_shape(&fixture("event.createP2PChat"), &created, "createP2PChat");
    assert_eq!(created["payload"]["chatId"], chat.as_str());

    let hi = alice.send_html(&chat, "Hello, <b>bot</b>!").await.unwrap();
    let ev = bot.event("sendMessage").await;
    assert_shape(&fixture("event.sendMessage.plain"), &ev, "sendMessage");
    assert_eq!(ev["payload"]["chat"]["chatId"], ev["payload"]["chatId"]);
    assert_eq!(ev["payload"]["author"]["id"], "alice@sim.example");
    assert_eq!(ev["payload"]["messageId"], hi.as_str());

    // The bot replies; tests see it through expect_message and the request log.
    let sent = bot
        .ok(
            "sendMessage",
            json!({ "chatId": chat, "replyMessageId": hi, "content": text("Hello, world!") }),
        )
        .await;
    assert_shape(&fixture("resp.sendMessage")["payload"], &sent, "resp");
    let seen = sim.expect_message(&chat).await.unwrap();
    assert_eq!(seen["content"]["text"], "Hello, world!");
    assert_eq!(seen["replyMessage"]["messageId"], hi.as_str());
    assert_eq!(
        sim.requests().last().unwrap().payload["replyMessageId"],
        hi.as_str()
    );
    let bot_msg = sent["messageId"].as_str().unwrap().to_owned();

    // A user reply arrives with the expanded replyMessage.
    alice
        .reply(&chat, &bot_msg, "Is anyone on call?")
        .await
        .unwrap();
    let ev = bot.event("sendMessage").await;
    assert_shape(&fixture("event.sendMessage.reply"), &ev, "reply");

    // Edits and removals by the user reach the bot.
    alice.edit(&hi, "edited").await.unwrap();
    let ev = bot.event("editMessage").await;
    assert_shape(&fixture("event.editMessage"), &ev, "editMessage");
    alice.remove(&hi).await.unwrap();
    let ev = bot.event("removeMessage").await;
    assert_shape(&fixture("event.removeMessage"), &ev, "removeMessage");
    assert_eq!(
        bot.err("getMessageById", json!({ "messageId": hi })).await,
        306
    );

    // Bot edits its own message; it may not edit alice's.
    let r = bot
        .ok(
            "editMessage",
            json!({ "messageId": bot_msg, "content": text("v2") }),
        )
        .await;
    assert_shape(&fixture("resp.editMessage")["payload"], &r, "edit");
    let m = bot
        .ok("getMessageById", json!({ "messageId": bot_msg }))
        .await;
    assert_shape(
        &fixture("resp.getMessageById")["payload"],
        &m,
        "getMessageById",
    );
    assert_eq!(
        (m["isEdited"].clone(), m["content"]["text"].clone()),
        (json!(true), json!("v2"))
    );
    let other = alice.send_text(&chat, "mine").await.unwrap();
    assert_eq!(
        bot.err(
            "editMessage",
            json!({ "messageId": other, "content": text("x") })
        )
        .await,
        303
    );
    assert_eq!(
        bot.err(
            "sendMessage",
            json!({ "chatId": "nope", "content": text("x") })
        )
        .await,
        304
    );
    assert_eq!(
        bot.err(
            "sendMessage",
            json!({ "chatId": chat, "content": { "text": "x", "parseMode": "rtf" } })
        )
        .await,
        399
    );

    // History paging: newest page, then the page before it.
    for i in 0..5 {
        alice.send_text(&chat, &format!("m{i}")).await.unwrap();
    }
    let page = bot
        .ok("getChatHistory", json!({ "chatId": chat, "count": 2 }))
        .await;
    assert_shape(&fixture("resp.getChatHistory")["payload"], &page, "history");
    let texts = |p: &Value| -> Vec<String> {
        p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"]["text"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(texts(&page), ["m3", "m4"]);
    let older = bot
        .ok(
            "getChatHistory",
            json!({ "chatId": chat, "count": 2, "fromMessageId": page["messages"][0]["messageId"] }),
        )
        .await;
    assert_eq!(texts(&older), ["m1", "m2"]);

    // Forward into a group the bot owns; remove for all; the message is gone.
    let group = bot.ok("createGroupChat", json!({ "title": "G" })).await;
    let group = group["chatId"].as_str().unwrap().to_owned();
    // The creator-role system envelope is in the history but was not pushed: this bot did not
    // ask for system envelopes.
    assert_eq!(sim.history(&group)[0]["type"], 110);
    bot.ok("getChats", json!({ "count": 1, "page": 1 })).await;
    assert!(
        bot.events.iter().all(|e| e["payload"]["type"] != 110),
        "{:?}",
        bot.events
    );
    let fwd = bot
        .ok(
            "forwardMessage",
            json!({ "messageId": other, "chatId": group }),
        )
        .await;
    let f = sim.expect_message(&group).await.unwrap();
    assert_eq!(
        (f["type"].clone(), f["content"]["messageId"].clone()),
        (json!(201), json!(other))
    );
    assert_eq!(fwd["chatId"], group.as_str());
    bot.ok(
        "removeMessage",
        json!({ "messageId": fwd["messageId"], "forAll": true }),
    )
    .await;
    assert!(sim.message(fwd["messageId"].as_str().unwrap()).is_none());
    assert_eq!(
        bot.err(
            "removeMessage",
            json!({ "messageId": "gone", "forAll": true })
        )
        .await,
        306
    );

    // Activity, display names.
    let act = bot
        .ok(
            "sendChatActivity",
            json!({ "chatId": chat, "activityType": "typing" }),
        )
        .await;
    assert_shape(
        &fixture("resp.sendChatActivity")["payload"],
        &act,
        "activity",
    );
    assert!(act["retryAfter"].as_u64().unwrap() > 0);
    let name = bot
        .ok(
            "getUserDisplayName",
            json!({ "userId": "alice@sim.example" }),
        )
        .await;
    assert_eq!(name["displayName"], "Alice");
    // Bare logins are not completed by the server: that is the client's job.
    assert_eq!(
        bot.err("getUserDisplayName", json!({ "userId": "alice" }))
            .await,
        302
    );
}

#[tokio::test]
async fn chats_participants_and_roles() {
    let sim = sim().await;
    let mut bot = Client::bot_with(&sim, false, true).await;
    let alice = sim.user("alice");
    sim.user("carol");
    let group = sim.create_group(&alice, "Support team", &["bot"]).await;
    let ev = bot.event("createGroupChat").await;
    assert_shape(&fixture("event.createGroupChat"), &ev, "createGroupChat");

    // Bot is a plain user: no rights to manage.
    assert_eq!(
        bot.err("editChatTitle", json!({ "chatId": group, "title": "x" }))
            .await,
        303
    );
    assert_eq!(
        bot.err(
            "addChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example", "displayHistory": false })
        )
        .await,
        303
    );
    alice.set_role(&group, "bot", "admin").await.unwrap();
    let ev = bot.event("changeParticipantRole").await;
    assert_shape(&fixture("event.changeParticipantRole"), &ev, "role");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.participantRole"),
        &sys,
        "sys110",
    );

    bot.ok(
        "addChatParticipant",
        json!({ "chatId": group, "userId": "carol@sim.example", "displayHistory": false }),
    )
    .await;
    assert_eq!(
        bot.err(
            "addChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example", "displayHistory": false })
        )
        .await,
        309
    );
    let p = bot
        .ok(
            "getChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example" }),
        )
        .await;
    assert_shape(
        &fixture("resp.getChatParticipant")["payload"],
        &p,
        "participant",
    );
    let all = bot
        .ok(
            "getChatParticipants",
            json!({ "chatId": group, "pageSize": 2, "pageNumber": 2 }),
        )
        .await;
    assert_eq!(all["participants"][0]["userId"], "carol@sim.example");
    bot.ok(
        "changeParticipantRole",
        json!({ "chatId": group, "userId": "carol@sim.example", "role": 1 }),
    )
    .await;
    assert_eq!(sim.participants(&group)[2].1, "admin");
    assert_eq!(
        bot.err(
            "changeParticipantRole",
            json!({ "chatId": group, "userId": "carol@sim.example", "role": "boss" })
        )
        .await,
        312
    );
    bot.ok(
        "removeChatParticipant",
        json!({ "chatId": group, "userId": "carol@sim.example", "clearHistory": false }),
    )
    .await;
    assert_eq!(
        bot.err(
            "getChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example" })
        )
        .await,
        305
    );
    assert_eq!(
        bot.ok(
            "hasChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example" })
        )
        .await["result"],
        false
    );
    assert_eq!(
        bot.err(
            "removeChatParticipant",
            json!({ "chatId": group, "userId": "carol@sim.example", "clearHistory": false })
        )
        .await,
        305
    );

    // Title and history clearing by a user reach the bot as events and system envelopes.
    alice
        .rename_chat(&group, "Support team (EU)")
        .await
        .unwrap();
    let ev = bot.event("editChatTitle").await;
    assert_shape(&fixture("event.editChatTitle"), &ev, "title");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.editChatTitle"),
        &sys,
        "sys21",
    );
    let r = bot
        .ok(
            "editChatTitle",
            json!({ "chatId": group, "title": "Renamed" }),
        )
        .await;
    assert_shape(
        &fixture("resp.editChatTitle")["payload"],
        &r,
        "editChatTitle",
    );
    assert_eq!(sim.chat_title(&group).as_deref(), Some("Renamed"));
    alice.clear_history(&group).await.unwrap();
    let ev = bot.event("clearHistory").await;
    assert_shape(&fixture("event.clearHistory"), &ev, "clear");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.clearHistory"),
        &sys,
        "sys23",
    );
    let url = alice
        .set_chat_avatar(&group, "logo.png", &b"\x89PNG"[..])
        .await
        .unwrap();
    let ev = bot.event("editChatAvatar").await;
    assert_shape(&fixture("event.editChatAvatar"), &ev, "avatar");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.editChatAvatar"),
        &sys,
        "sys22",
    );
    let png = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(png.as_ref(), b"\x89PNG");

    // getChats paging and getChatByID.
    let own = bot.ok("createChannel", json!({ "title": "News" })).await;
    let fav = bot.ok("createFavoritesChat", json!({})).await;
    assert_eq!(bot.ok("createFavoritesChat", json!({})).await, fav);
    let page1 = bot.ok("getChats", json!({ "count": 2, "page": 1 })).await;
    let page2 = bot.ok("getChats", json!({ "count": 2, "page": 2 })).await;
    // The last message here is a system envelope, whose content differs from the fixture's text.
    let mut shape = fixture("resp.getChats")["payload"].clone();
    shape["chats"][0]["lastMessage"]["content"] = Value::Null;
    assert_shape(&shape, &page1, "getChats");
    assert_eq!(page1["chats"].as_array().unwrap().len(), 2);
    assert_eq!(page2["chats"][0]["chatType"], 5);
    let png = upload(&sim, &mut bot, "a.png", b"\x89PNG", "image/png").await;
    let r = bot
        .ok(
            "editChatAvatar",
            json!({ "chatId": own["chatId"], "temporalFileId": png }),
        )
        .await;
    assert_eq!(r, json!({}));
    let byid = bot
        .ok("getChatByID", json!({ "chatId": own["chatId"] }))
        .await;
    assert_shape(&fixture("resp.getChatByID")["payload"], &byid, "byId");
    assert_eq!(byid["chatType"], 6);

    // Channel: members cannot post until made writers.
    let channel = sim.create_channel(&alice, "Announcements", &["bot"]).await;
    assert_eq!(
        bot.err(
            "sendMessage",
            json!({ "chatId": channel, "content": text("hi") })
        )
        .await,
        303
    );
    alice.set_role(&channel, "bot", "writer").await.unwrap();
    bot.ok(
        "sendMessage",
        json!({ "chatId": channel, "content": text("hi") }),
    )
    .await;

    // Personal chats: one per pair, created by either side.
    let p2p = bot
        .ok("createP2PChat", json!({ "userId": "carol@sim.example" }))
        .await;
    assert_shape(&fixture("resp.createP2PChat")["payload"], &p2p, "p2p");
    let again = bot
        .ok("createP2PChat", json!({ "userId": "carol@sim.example" }))
        .await;
    assert_eq!(p2p, again);
    assert_eq!(
        bot.err("createP2PChat", json!({ "userId": "nobody@sim.example" }))
            .await,
        302
    );
    let p2p = p2p["chatId"].as_str().unwrap().to_owned();
    let carol = sim.user("carol");
    carol.send_text(&p2p, "c1").await.unwrap();
    // clearHistory for the bot only hides; for all it empties the chat.
    bot.ok("clearHistory", json!({ "chatId": p2p, "forAll": false }))
        .await;
    let h = bot
        .ok("getChatHistory", json!({ "chatId": p2p, "count": 10 }))
        .await;
    assert_eq!(h["count"], 0);
    assert_eq!(sim.history(&p2p).len(), 1);
    carol.send_text(&p2p, "c2").await.unwrap();
    let c2 = bot.event("sendMessage").await["payload"]["messageId"].clone();
    bot.ok("removeMessage", json!({ "messageId": c2, "forAll": false }))
        .await;
    assert_eq!(sim.history(&p2p).len(), 2);
    bot.ok("clearHistory", json!({ "chatId": p2p, "forAll": true }))
        .await;
    assert!(sim.history(&p2p).iter().all(|m| m["type"] == 23));
    bot.ok("removeChat", json!({ "chatId": own["chatId"] }))
        .await;
    assert!(!sim.chat_exists(own["chatId"].as_str().unwrap()));

    // Not a participant: 305. Removal of the chat: only the owner, then 304.
    let private = sim.create_group(&alice, "Private", &[]).await;
    assert_eq!(
        bot.err("getChatByID", json!({ "chatId": private })).await,
        305
    );
    assert_eq!(bot.err("removeChat", json!({ "chatId": group })).await, 303);
    alice.remove_chat(&group).await.unwrap();
    let ev = bot.event("removeChat").await;
    assert_eq!(ev["payload"]["chatId"], group.as_str());
    assert_eq!(
        bot.err("getChatByID", json!({ "chatId": group })).await,
        304
    );
}

async fn upload(sim: &Sim, bot: &mut Client, name: &str, data: &[u8], mime: &str) -> String {
    let task = bot
        .ok(
            "uploadFile",
            json!({ "fileSize": data.len(), "fileName": name }),
        )
        .await;
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(data.to_vec())
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    );
    if mime == "sticker/webp" {
        form = form.part(
            "preview",
            reqwest::multipart::Part::bytes(data.to_vec())
                .file_name(name.to_owned())
                .mime_str("image/webp")
                .unwrap(),
        );
    }
    let r = reqwest::Client::new()
        .post(format!("{}/bridge/api/client/v1/files", sim.url()))
        .header("Upload-Task-Id", task["uploadTaskId"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "upload status {}", r.status());
    let body: Value = r.json().await.unwrap();
    assert_shape(&fixture("http.upload.response"), &body, "upload");
    body["temporalFileId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn files_upload_download_progress_and_limits() {
    let sim = sim().await;
    let mut bot = Client::bot(&sim).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();

    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let tmp = upload(&sim, &mut bot, "report.pdf", &data, "application/pdf").await;
    let sent = bot
        .ok(
            "sendFile",
            json!({ "chatId": chat, "content": { "temporalFileId": tmp,
                    "caption": { "text": "the report", "parseMode": "text" } } }),
        )
        .await;
    assert_shape(
        &fixture("resp.sendFile.caption")["payload"],
        &sent,
        "sendFile",
    );
    let msgs = sim.expect_messages(&chat, 2).await.unwrap();
    assert_eq!(msgs[0]["content"]["name"], "report.pdf");
    assert_eq!(msgs[1]["messageId"], sent["captionMessageId"]);
    // The temporal id is consumed.
    assert_eq!(
        bot.err(
            "sendFile",
            json!({ "chatId": chat, "content": { "temporalFileId": tmp } })
        )
        .await,
        308
    );

    let info = bot
        .ok("getFileInfo", json!({ "fileId": sent["fileId"] }))
        .await;
    assert_eq!(
        (info["size"].clone(), info["readyState"].clone()),
        (json!(1000), json!(2))
    );
    let url = info["downloadUrl"].as_str().unwrap();
    let http = reqwest::Client::new();
    let body = http.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), data.as_slice());
    let r = http
        .get(url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = http
        .get(url)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[995..]);
    let r = http
        .get(url)
        .header("Range", "bytes=2000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let forged = url.replace("token=", "token=x");
    assert_eq!(http.get(forged).send().await.unwrap().status(), 404);
    assert_eq!(
        bot.err("getFileInfo", json!({ "fileId": "nope" })).await,
        308
    );

    // Upload failures: unknown task, size differing from uploadFile, sticker without preview.
    let post = |task: String, mime: &'static str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("x.webp")
                .mime_str(mime)
                .unwrap(),
        );
        reqwest::Client::new()
            .post(format!("{}/bridge/api/client/v1/files", sim.url()))
            .header("Upload-Task-Id", task)
            .multipart(form)
            .send()
    };
    assert_eq!(
        post("nope".into(), "text/plain", vec![1])
            .await
            .unwrap()
            .status(),
        404
    );
    let task = bot
        .ok("uploadFile", json!({ "fileSize": 3, "fileName": "x.webp" }))
        .await["uploadTaskId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(task.clone(), "text/plain", vec![1])
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        post(task, "sticker/webp", vec![1, 2, 3])
            .await
            .unwrap()
            .status(),
        400
    );

    // Bigger than axum's default body limit.
    let big = vec![1u8; 3 << 20];
    let tmp = upload(&sim, &mut bot, "big.bin", &big, "application/octet-stream").await;
    let r = bot
        .ok(
            "sendFile",
            json!({ "chatId": chat, "content": { "temporalFileId": tmp } }),
        )
        .await;
    assert_eq!(
        sim.file_bytes(r["fileId"].as_str().unwrap()).unwrap().len(),
        big.len()
    );

    // Sticker: the sticker/webp part needs a preview.
    let tmp = upload(&sim, &mut bot, "s.webp", b"RIFFxxxxWEBP", "sticker/webp").await;
    let s = bot
        .ok(
            "sendFile",
            json!({ "chatId": chat, "content": { "temporalFileId": tmp } }),
        )
        .await;
    let info = bot
        .ok("getFileInfo", json!({ "fileId": s["fileId"] }))
        .await;
    assert_shape(&fixture("resp.getFileInfo")["payload"], &info, "fileInfo");
    assert_eq!(info["mimeType"], "sticker/webp");

    // A user's upload left UPLOADING: progress events to subscribers, then READY.
    let up = alice
        .start_upload(&chat, "big.bin", vec![7u8; 4096])
        .await
        .unwrap();
    let ev = bot.event("sendMessage").await;
    assert_eq!(ev["payload"]["content"]["readyState"], 1);
    let fid = up.file.file_id.clone();
    let info = bot.ok("getFileInfo", json!({ "fileId": fid })).await;
    assert_eq!(
        (info["readyState"].clone(), info["downloadUrl"].clone()),
        (json!(1), Value::Null)
    );
    assert_eq!(
        bot.err(
            "forwardMessage",
            json!({ "messageId": up.file.message_id, "chatId": chat })
        )
        .await,
        311
    );
    let r = bot
        .ok("subscribeFileProgress", json!({ "fileId": fid }))
        .await;
    assert_eq!(r["result"], true);
    up.progress(1024);
    let ev = bot.event("uploadFileProgress").await;
    assert_shape(&fixture("event.uploadFileProgress"), &ev, "progress");
    assert_eq!(ev["payload"]["progress"], 1024);
    up.finish();
    assert_eq!(
        bot.event("uploadFileProgress").await["payload"]["progress"],
        4096
    );
    bot.ok("unsubscribeFileProgress", json!({ "fileId": fid }))
        .await;
    let info = bot.ok("getFileInfo", json!({ "fileId": fid })).await;
    assert_eq!(info["readyState"], 2);

    // Limits: event on change, 310 over the limit or on a blocked extension.
    let limits = bot.ok("getFileUploadLimits", json!({})).await;
    assert_eq!(limits, json!({ "maxSize": null, "extensions": null }));
    sim.set_upload_limits(UploadLimits {
        max_size: Some(100),
        extensions: Some(ExtensionFilter {
            allow: false,
            list: vec!["exe".into()],
        }),
    });
    let ev = bot.event("getFileUploadLimits").await;
    assert_shape(&fixture("event.getFileUploadLimits"), &ev, "limits");
    assert_eq!(
        bot.err(
            "uploadFile",
            json!({ "fileSize": 101, "fileName": "a.txt" })
        )
        .await,
        310
    );
    assert_eq!(
        bot.err("uploadFile", json!({ "fileSize": 1, "fileName": "a.EXE" }))
            .await,
        310
    );
    bot.ok(
        "uploadFile",
        json!({ "fileSize": 100, "fileName": "a.txt" }),
    )
    .await;
}

#[tokio::test]
async fn buttons_commands_surveys_and_system_envelopes() {
    let sim = sim().await;
    let mut bot = Client::bot_with(&sim, false, true).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let buttons = json!([[
        { "type": "command", "label": "Yes", "command": "/confirm", "customData": "ticket=4711", "id": "btn-yes" },
        { "type": "command", "label": "Wait", "command": "/wait", "customData": "t=1", "waitReply": true, "id": "btn-wait" }
    ], [ { "type": "url", "url": "https://example.com" } ]]);
    let sent = bot
        .ok(
            "sendMessage",
            json!({ "chatId": chat, "replyMessageId": null,
                    "content": { "text": "Close ticket <b>4711</b>?", "parseMode": "html", "buttons": buttons } }),
        )
        .await;
    let msg = sent["messageId"].as_str().unwrap();
    assert_eq!(
        sim.expect_message(&chat).await.unwrap()["content"]["buttons"],
        buttons
    );

    assert!(
        alice
            .press_button(&chat, msg, "/confirm")
            .await
            .unwrap()
            .is_none()
    );
    let ev = bot.event("command").await;
    assert_shape(&fixture("event.command"), &ev, "command");
    assert_eq!(ev["payload"]["commandSource"]["buttonId"], "btn-yes");
    let err = alice.press_button(&chat, msg, "/nope").await.unwrap_err();
    assert_eq!(err.api_code().map(|c| c.0), Some(306));

    let cid = alice
        .press_button(&chat, msg, "/wait")
        .await
        .unwrap()
        .unwrap();
    let ev = bot.event("command").await;
    assert_shape(&fixture("event.command.waitReply"), &ev, "waitReply");
    let answer = json!({ "commandId": cid, "answerType": "message", "message": { "text": "done", "status": "ok" } });
    bot.ok("answerCommand", answer.clone()).await;
    assert_eq!(bot.err("answerCommand", answer).await, 306);

    // editMessage without buttons removes the keyboard (full overwrite).
    bot.ok(
        "editMessage",
        json!({ "messageId": msg, "content": text("closed") }),
    )
    .await;
    assert!(
        sim.message(msg).unwrap()["content"]
            .get("buttons")
            .is_none()
    );

    let survey = fixture("req.sendSurvey")["payload"]["content"].clone();
    let s = bot
        .ok(
            "sendSurvey",
            json!({ "chatId": chat, "replyMessageId": null, "content": survey }),
        )
        .await;
    let env = sim.expect_message(&chat).await.unwrap();
    assert_shape(
        &fixture("event.sendMessage.survey")["payload"],
        env.raw(),
        "survey",
    );
    let edit = fixture("req.editSurvey")["payload"]["content"].clone();
    bot.ok(
        "editSurvey",
        json!({ "messageId": s["messageId"], "content": edit.clone() }),
    )
    .await;
    assert_eq!(
        sim.message(s["messageId"].as_str().unwrap()).unwrap()["content"]["title"],
        edit["title"]
    );

    // Group membership changes arrive as events and (opted in) as system envelopes.
    let group = sim.create_group(&alice, "Support team", &["bot"]).await;
    alice.add_participant(&group, "carol").await.unwrap();
    let ev = bot.event("addChatParticipant").await;
    assert_shape(&fixture("event.addChatParticipant"), &ev, "add");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.addParticipant"),
        &sys,
        "sys1",
    );
    alice.remove_participant(&group, "carol").await.unwrap();
    let ev = bot.event("removeChatParticipant").await;
    assert_shape(&fixture("event.removeChatParticipant"), &ev, "remove");
    let sys = bot.event("sendMessage").await;
    assert_shape(
        &fixture("event.sendMessage.system.removeParticipant"),
        &sys,
        "sys2",
    );
    // The mention helper links the bot's id.
    alice.mention_bot(&group).await.unwrap();
    let ev = bot.event("sendMessage").await;
    let t = ev["payload"]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(t.contains(r#"href="trueconf:bot@sim.example""#), "{ev}");
    // History holds the system envelopes too.
    assert!(sim.history(&group).iter().any(|m| m["type"] == 1));
}

#[tokio::test]
async fn unacked_events_are_redelivered_in_order() {
    let sim = sim().await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let mut bot = Client::bot(&sim).await;
    bot.auto_ack = false;
    for i in 0..3 {
        alice.send_text(&chat, &format!("n{i}")).await.unwrap();
    }
    // Ack only the first; close with two outstanding.
    let first = bot.frame().await.unwrap();
    bot.send(json!({ "type": 2, "id": first["id"] })).await;
    bot.frame().await.unwrap();
    bot.frame().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    bot.ws.close(None).await.unwrap();
    drop(bot);
    // Events while offline are queued as well.
    tokio::time::sleep(Duration::from_millis(50)).await;
    alice.send_text(&chat, "n3").await.unwrap();

    // Without receiveUnread nothing is re-sent.
    let mut quiet = Client::bot_with(&sim, false, false).await;
    assert_eq!(
        quiet
            .call("getChats", json!({ "count": 1, "page": 1 }))
            .await["chats"][0]["chatId"],
        chat.as_str()
    );
    assert!(quiet.events.is_empty());
    quiet.ws.close(None).await.unwrap();
    drop(quiet);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut bot = Client::bot_with(&sim, true, false).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = bot.event("sendMessage").await;
        got.push(e["payload"]["content"]["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, ["n1", "n2", "n3"]);
    // createP2PChat (sent while the bot was offline), n1, n2, n3.
    let stats = sim.stats();
    assert_eq!(stats.redelivered, 4);
    bot.call("getChats", json!({ "count": 1, "page": 1 })).await;
    let stats = sim.stats();
    assert_eq!((stats.pushed, stats.acked), (7, 5), "{stats:?}");
}

#[tokio::test]
async fn fault_injection() {
    let sim = sim().await;
    let faults = sim.faults();

    // fail_method: twice, then normal.
    let mut bot = Client::bot(&sim).await;
    faults.fail_method("getChats", 300, Some(2));
    let q = json!({ "count": 1, "page": 1 });
    assert_eq!(bot.err("getChats", q.clone()).await, 300);
    assert_eq!(bot.err("getChats", q.clone()).await, 300);
    bot.ok("getChats", q.clone()).await;

    // Unknown event: pushed like any other, and must be acked.
    faults.send_unknown_event("somethingNew", json!({ "x": 1 }));
    let ev = bot.event("somethingNew").await;
    assert_eq!(ev["payload"]["x"], 1);
    bot.ok("getChats", q.clone()).await;
    assert_eq!(sim.stats().acked, sim.stats().pushed);

    // Malformed frame: the raw text is not JSON.
    faults.send_malformed_frame();
    match tokio::time::timeout(WAIT, bot.ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => assert!(serde_json::from_str::<Value>(t.as_str()).is_err()),
        other => panic!("expected a text frame, got {other:?}"),
    }

    // Delayed responses.
    faults.delay_responses(Duration::from_millis(300));
    let t = std::time::Instant::now();
    bot.ok("getChats", q.clone()).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    faults.delay_responses(Duration::ZERO);

    // Drop after N frames: the second response never arrives; the socket just ends.
    faults.drop_after_frames(1);
    bot.send(json!({ "type": 1, "id": 100, "method": "getChats", "payload": q }))
        .await;
    bot.send(json!({ "type": 1, "id": 101, "method": "getChats", "payload": q }))
        .await;
    assert_eq!(bot.frame().await.unwrap()["id"], 100);
    assert!(bot.frame().await.is_none());

    // Refused connections, then accepted again.
    faults.refuse_connections(Duration::from_millis(300));
    assert!(
        tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut bot = Client::bot(&sim).await;

    // Restart: close frame 1012, refused for a while, state kept.
    let chat = sim.user("alice").create_p2p_with_bot().await.unwrap();
    bot.event("createP2PChat").await;
    faults.restart(Duration::from_millis(300));
    match tokio::time::timeout(WAIT, bot.ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1012),
        other => panic!("expected close 1012, got {other:?}"),
    }
    assert!(
        tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut bot = Client::bot(&sim).await;
    let chats = bot.ok("getChats", json!({ "count": 10, "page": 1 })).await;
    assert_eq!(chats["chats"][0]["chatId"], chat.as_str());
    assert_eq!(sim.authed_connections(), 1);
}

#[tokio::test]
async fn tls_with_self_signed_certificate() {
    provider();
    let sim = Sim::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert!(sim.ws_url().starts_with("wss://"));
    // Untrusted by default: the handshake fails.
    let strict = reqwest::Client::builder().build().unwrap();
    assert!(
        strict
            .get(format!("{}/api/v4/server", sim.url()))
            .send()
            .await
            .is_err()
    );
    // verify_ssl=false path.
    let lax = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let info: Value = lax
        .get(format!("{}/api/v4/server", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["product"]["version"], "5.5.6.0");
    // Trusting the exported certificate: WSS works end to end.
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_slice_iter(sim.cert_pem().unwrap().as_bytes())
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        sim.ws_url().replace("127.0.0.1", "localhost"),
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            config,
        ))),
    )
    .await
    .unwrap();
    let auth = json!({ "type": 1, "id": 1, "method": "auth",
                       "payload": { "token": sim.bot_token(), "tokenType": "JWT" } });
    ws.send(Message::text(auth.to_string())).await.unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("no auth response")
    };
    let r: Value = serde_json::from_str(t.as_str()).unwrap();
    assert!(r["payload"]["userId"].is_string(), "{r}");
}

#[tokio::test]
async fn load_mode_reports_every_echo() {
    let sim = sim().await;
    let mut bot = Client::bot(&sim).await;
    let echo = tokio::spawn(async move {
        loop {
            let Some(f) = bot.frame().await else { break };
            if f["type"] != 1 {
                continue;
            }
            bot.send(json!({ "type": 2, "id": f["id"] })).await;
            let p = &f["payload"];
            if f["method"] == "sendMessage" {
                bot.send(json!({ "type": 1, "id": 1, "method": "sendMessage",
                    "payload": { "chatId": p["chat"]["chatId"], "content": p["content"] } }))
                    .await;
            }
        }
    });
    let report = sim
        .run_load(LoadSpec {
            events: 2000,
            chats: 10,
            window: 50,
            ..LoadSpec::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (report.sent, report.replied, report.order_violations),
        (2000, 2000, 0)
    );
    assert!(report.p50 <= report.p99 && report.p99 <= report.p999);
    assert!(report.msgs_per_sec > 0.0);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["p99"].is_f64());
    // Load chats are not left behind and requests were not recorded.
    assert!(sim.requests().iter().all(|r| r.method != "sendMessage"));
    sim.faults().restart(Duration::ZERO);
    let _ = echo.await;
}

#[tokio::test(start_paused = true)]
async fn assertions_run_on_tokio_paused_time() {
    let sim = sim().await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "anyone?").await.unwrap();
    let t = std::time::Instant::now();
    // Ten virtual minutes of silence cost no real time.
    sim.expect_no_message(&chat, Duration::from_secs(600))
        .await
        .unwrap();
    let err = sim.expect_message(&chat).await.unwrap_err();
    assert!(matches!(err, trueconf_bot::Error::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(sim.history(&chat).len(), 1);
}

/// A web page must not reach the emulator: not by DNS rebinding (a foreign `Host`), not by a
/// cross-site request (a foreign `Origin`), not by a form post (a non-JSON token body).
#[tokio::test]
async fn web_pages_cannot_reach_the_emulator() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let addr = sim.addr();
    // Raw HTTP/1.1, so every header is exactly what a browser would send.
    let status = |method: &'static str,
                  path: &'static str,
                  host: String,
                  extra: &'static str,
                  body: &'static str| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0)
    };
    let token = "/bridge/api/client/v1/oauth/token";
    let creds = r#"{"client_id":"chat_bot","grant_type":"password","username":"bot","password":"bot-password"}"#;
    let json = "Content-Type: application/json\r\n";
    let local = format!("127.0.0.1:{}", addr.port());
    let rebound = format!("attacker.example:{}", addr.port());
    assert_eq!(
        status("POST", token, rebound.clone(), json, creds).await,
        403
    );
    assert_eq!(
        status("GET", "/api/v4/server", rebound, "", "").await,
        403,
        "no server info for a rebound name either"
    );
    let cross_site = "Content-Type: application/json\r\nOrigin: https://attacker.example\r\n";
    assert_eq!(
        status("POST", token, local.clone(), cross_site, creds).await,
        403
    );
    let form = "Content-Type: text/plain\r\n";
    assert_eq!(status("POST", token, local.clone(), form, creds).await, 415);
    let same_machine = "Content-Type: application/json\r\nOrigin: http://localhost:8080\r\n";
    assert_eq!(
        status("POST", token, local.clone(), same_machine, creds).await,
        201
    );
    assert_eq!(
        status(
            "POST",
            token,
            format!("localhost:{}", addr.port()),
            json,
            creds
        )
        .await,
        201
    );
}
