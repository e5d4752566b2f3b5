//! Port of the official client's contacts example: reading a contact a user shares, as a
//! vCard file or as a TrueConf profile link.
//!
//! ```text
//! cargo run --example contacts
//! ```
//!
//! `MessageContext::contact()` downloads a `text/vcard` attachment and reads it (vCard 2.1,
//! 3.0 and 4.0: structured name, phones, e-mails), or, for a message that is exactly one
//! profile link, asks the server for the user's display name. A broken vCard is a typed
//! error (`Error::Vcard`), answered here with what is wrong with it.

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::Error;
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};

/// Reads shared contacts.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

async fn any_message(msg: MessageContext) -> HandlerResult {
    let answer = match msg.contact().await {
        Ok(Some(c)) if c.user_id.is_some() => format!(
            "TrueConf contact: {} ({})",
            c.first_name,
            c.user_id.unwrap_or_default()
        ),
        Ok(Some(c)) => {
            let name = [
                c.first_name.as_str(),
                c.last_name.as_deref().unwrap_or_default(),
            ]
            .join(" ")
            .trim()
            .to_owned();
            let phone = c.phone_number.unwrap_or_else(|| "no phone".into());
            let mails = if c.emails.is_empty() {
                String::new()
            } else {
                format!(", {}", c.emails.join(", "))
            };
            format!("vCard: {name}, {phone}{mails}")
        }
        Ok(None) => "Share a contact with me (a vCard or a TrueConf profile).".to_owned(),
        Err(Error::Vcard(why)) => format!("That vCard is unreadable: {why}."),
        Err(e) => return Err(e.into()),
    };
    msg.reply(answer).await?;
    Ok(())
}

const ANNA: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Petrova;Anna;;;\r\nFN:Anna Petrova\r\n\
                    TEL;TYPE=CELL:+7 900 123-45-67\r\nEMAIL:anna@example.com\r\nEND:VCARD\r\n";

/// vCard 2.1 as older Android phones export it: quoted-printable UTF-8, a soft line break.
const IVAN: &str = "BEGIN:VCARD\r\nVERSION:2.1\r\n\
                    N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=9F=D0=B5=D1=82=D1=80=D0=BE=D0=B2;=D0=98=\r\n\
                    =D0=B2=D0=B0=D0=BD;;;\r\nTEL;CELL:+7 900 000-00-00\r\nEND:VCARD\r\n";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let dispatcher =
        Dispatcher::builder(session.bot.clone(), Router::new().message(any_message)).build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            let _carol = sim.user("carol");
            for (name, card) in [("anna.vcf", ANNA), ("ivan.vcf", IVAN)] {
                println!("{:>8} > [file] {name}", alice.name);
                alice.user.upload_file(&alice.chat, name, card).await?;
            }
            alice
                .expect("vCard: Anna Petrova, +7 900 123-45-67, anna@example.com")
                .await?;
            alice.expect("vCard: Иван Петров, +7 900 000-00-00").await?;
            let link = format!(
                r#"<a href="trueconf:carol@{}&do=profile">Carol</a>"#,
                sim.domain()
            );
            println!("{:>8} > [profile link] carol", alice.name);
            alice.user.send_html(&alice.chat, &link).await?;
            alice.expect("TrueConf contact: Carol (carol@").await?;
            println!("{:>8} > [file] broken.vcf", alice.name);
            alice
                .user
                .upload_file(&alice.chat, "broken.vcf", "BEGIN:VCARD\nFN:half a card\n")
                .await?;
            alice
                .expect("unreadable: BEGIN:VCARD without END:VCARD")
                .await?;
            alice.say("hello").await?;
            alice.expect("Share a contact").await?;
            Ok(())
        })
        .await
}
