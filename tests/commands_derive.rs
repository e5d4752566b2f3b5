//! `#[derive(BotCommands)]`: names, aliases, rename rules, argument parsing, the `/help`
//! text, routing with the enum as a handler parameter, bad arguments with the command's
//! usage; and `#[debug_handler]` accepting valid handlers.
#![cfg(feature = "macros")]

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::mpsc;
use trueconf_bot::connection::ServerEvent;
use trueconf_bot::dispatch::{
    ArgsError, BadArgs, BotCommands, ChatId, CommandFilter, Dispatcher, HandlerResult, ParseError,
    Router, Text, debug_handler,
};
use trueconf_bot::harness::event;

#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(description = "These commands are supported:")]
enum Cmd {
    #[command(description = "display this text")]
    Help,
    #[command(description = "add two numbers", alias = "plus")]
    Add { a: i64, b: i64 },
    #[command(description = "say it back")]
    Echo(String),
    #[command(description = "sum of numbers")]
    Sum(Vec<f64>),
    #[command(rename = "rep", description = "repeat a word")]
    Repeat(u8, String),
    #[command(hide)]
    Secret,
}

#[derive(BotCommands, Debug, PartialEq)]
#[command(rename_rule = "snake_case")]
enum Snake {
    StartDemo,
    #[command(alias = "stop-it")]
    Stop,
}

#[test]
fn parses_names_aliases_and_arguments() {
    assert_eq!(Cmd::parse("/help", None), Ok(Cmd::Help));
    assert_eq!(Cmd::parse("/HELP extra words", None), Ok(Cmd::Help));
    assert_eq!(Cmd::parse("/add 2 40", None), Ok(Cmd::Add { a: 2, b: 40 }));
    assert_eq!(Cmd::parse("/plus -1 1", None), Ok(Cmd::Add { a: -1, b: 1 }));
    assert_eq!(
        Cmd::parse("/echo  hello world ", None),
        Ok(Cmd::Echo("hello world".into()))
    );
    assert_eq!(Cmd::parse("/sum 1 2.5", None), Ok(Cmd::Sum(vec![1.0, 2.5])));
    assert_eq!(
        Cmd::parse("/rep 3 la", None),
        Ok(Cmd::Repeat(3, "la".into()))
    );
    assert_eq!(Cmd::parse("/secret", None), Ok(Cmd::Secret));
    assert_eq!(
        Cmd::parse("/repeat 3 la", None),
        Err(ParseError::UnknownCommand("repeat".into()))
    );
    assert_eq!(Cmd::parse("hello", None), Err(ParseError::NotACommand));
    match Cmd::parse("/add two 3", None) {
        Err(ParseError::BadArgs(ArgsError { message })) => {
            assert!(message.contains("argument 1 `two`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let me = Some("calc@srv.example");
    assert_eq!(Cmd::parse("/help@calc", me), Ok(Cmd::Help));
    assert_eq!(
        Cmd::parse("/help@other", me),
        Err(ParseError::OtherBot("other".into()))
    );
    assert_eq!(Snake::parse("/start_demo", None), Ok(Snake::StartDemo));
    assert_eq!(Snake::parse("/stop-it", None), Ok(Snake::Stop));
    assert_eq!(Snake::names(), ["start_demo", "stop", "stop-it"]);
}

#[test]
fn descriptions_are_the_help_text() {
    assert_eq!(
        Cmd::descriptions().to_string(),
        "These commands are supported:\n\
         /help — display this text\n\
         /add <a> <b> — add two numbers\n\
         /echo — say it back\n\
         /sum — sum of numbers\n\
         /rep — repeat a word"
    );
    assert_eq!(
        Cmd::descriptions().usage_of("ADD").as_deref(),
        Some("/add <a> <b>")
    );
    assert_eq!(Snake::descriptions().to_string(), "/start_demo\n/stop");
}

fn msg(id: u64, text: &str) -> ServerEvent {
    let payload = json!({
        "messageId": format!("m-{id}"),
        "chat": {"chatId": "c", "chatType": 1},
        "timestamp": 1u64, "type": 200,
        "author": {"id": "alice@srv.example", "type": 1},
        "content": {"text": text, "parseMode": "text"}
    });
    event(id, "sendMessage", payload)
}

type Log = Arc<Mutex<Vec<String>>>;

#[tokio::test]
async fn routes_take_the_parsed_enum_and_bad_arguments_get_the_usage() {
    let log: Log = Default::default();
    let l = log.clone();
    let handler = move |cmd: Cmd, _chat: ChatId| {
        let l = l.clone();
        async move {
            l.lock().unwrap().push(format!("{cmd:?}"));
        }
    };
    let l = log.clone();
    let usage = move |bad: BadArgs| {
        let l = l.clone();
        async move {
            l.lock()
                .unwrap()
                .push(format!("usage {}", bad.usage.unwrap_or_default()));
        }
    };
    let l = log.clone();
    let other = move |Text(t): Text| {
        let l = l.clone();
        async move { l.lock().unwrap().push(format!("other {t}")) }
    };
    let router = Router::new()
        .command(
            CommandFilter::of::<Cmd>().on_bad_args(usage),
            handler.clone(),
        )
        .commands::<Snake, _, _>(|s: Snake| async move {
            let _ = s;
        })
        .message(other);
    let d = Dispatcher::detached(router).build().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(d.run_on(rx));
    for (i, t) in ["/add 1 2", "/add x", "/echo hi", "/nope", "/help"]
        .into_iter()
        .enumerate()
    {
        tx.send(msg(i as u64 + 1, t)).await.unwrap();
    }
    drop(tx);
    task.await.unwrap().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "Add { a: 1, b: 2 }",
            "usage /add <a> <b>",
            "Echo(\"hi\")",
            "other /nope",
            "Help"
        ]
    );
}

/// A valid handler passes the check unchanged.
#[debug_handler]
async fn checked(cmd: Cmd, Text(t): Text) -> HandlerResult {
    let _ = (cmd, t);
    Ok(())
}

#[debug_handler]
async fn checked_unit() {}

#[test]
fn debug_handler_leaves_valid_handlers_usable() {
    let router = Router::new()
        .commands::<Cmd, _, _>(checked)
        .message(checked_unit);
    assert!(Dispatcher::detached(router).build().is_ok());
}
