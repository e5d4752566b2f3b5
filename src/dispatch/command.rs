//! Text commands (`/start`, `/add 2 3`, `/help@bot`): matching them, and the extractors that
//! hand the match to handlers.
//!
//! Parsing the argument text is [`args`](super::args)' job; this file only decides whether a
//! text is a given command and keeps what it found on the context.

use std::fmt;
use std::sync::Arc;

use super::args::{BadArgs, FromCommandArgs};
use super::handler::{BoxedHandler, Ctx, ExtractError, FromEvent, Handler, MatchedCommand};

/// Matches text commands: a prefix (default `/`), a name, an optional `@bot` mention and
/// arguments. Build one from a name (`"start".into()`) or with [`CommandFilter::new`].
#[derive(Clone)]
pub struct CommandFilter {
    names: Vec<String>,
    prefixes: String,
    ignore_case: bool,
    usage: Option<Arc<str>>,
    on_bad_args: Option<BoxedHandler>,
}

impl fmt::Debug for CommandFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandFilter")
            .field("names", &self.names)
            .field("prefixes", &self.prefixes)
            .field("ignore_case", &self.ignore_case)
            .finish_non_exhaustive()
    }
}

impl From<&str> for CommandFilter {
    fn from(name: &str) -> Self {
        CommandFilter::new(name)
    }
}

impl From<String> for CommandFilter {
    fn from(name: String) -> Self {
        CommandFilter::new(name)
    }
}

impl CommandFilter {
    /// A command named `name` (without prefix), prefix `/`, case-sensitive.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            names: vec![name.into()],
            prefixes: "/".into(),
            ignore_case: false,
            usage: None,
            on_bad_args: None,
        }
    }

    /// Also answer to `name`.
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into());
        self
    }

    /// The characters a command may start with (default `"/"`).
    pub fn prefixes(mut self, prefixes: impl Into<String>) -> Self {
        self.prefixes = prefixes.into();
        self
    }

    /// Match names regardless of case.
    pub fn ignore_case(mut self) -> Self {
        self.ignore_case = true;
        self
    }

    /// A usage line handed to the bad-arguments hook in [`BadArgs::usage`].
    pub fn usage(mut self, usage: impl Into<String>) -> Self {
        self.usage = Some(Arc::from(usage.into()));
        self
    }

    /// Runs `hook` instead of the handler when the handler's [`CommandArgs`] do not parse;
    /// the hook can take [`BadArgs`] to reply with the usage. Without a hook a parse failure
    /// goes to the error handler.
    pub fn on_bad_args<H: Handler<A>, A>(mut self, hook: H) -> Self {
        self.on_bad_args = Some(BoxedHandler::new(hook));
        self
    }

    /// Parses `text` as this command; `self_id` is the bot's TrueConf ID for `/cmd@bot`.
    pub(crate) fn parse(&self, text: &str, self_id: Option<&str>) -> Option<MatchedCommand> {
        let parsed = split_command(text, &self.prefixes)?;
        let hit = self.names.iter().any(|n| {
            if self.ignore_case {
                n.eq_ignore_ascii_case(parsed.name)
            } else {
                n == parsed.name
            }
        });
        if !hit {
            return None;
        }
        if let (Some(mention), Some(me)) = (parsed.mention, self_id) {
            let login = me.split('@').next().unwrap_or(me);
            if !mention.eq_ignore_ascii_case(me) && !mention.eq_ignore_ascii_case(login) {
                return None;
            }
        }
        Some(MatchedCommand {
            name: parsed.name.to_string(),
            args: parsed.args.to_string(),
            usage: self.usage.clone(),
            on_bad_args: self.on_bad_args.clone(),
        })
    }
}

struct Split<'a> {
    name: &'a str,
    mention: Option<&'a str>,
    args: &'a str,
}

fn split_command<'a>(text: &'a str, prefixes: &str) -> Option<Split<'a>> {
    let text = text.trim_start();
    let first = text.chars().next()?;
    if !prefixes.contains(first) {
        return None;
    }
    let rest = &text[first.len_utf8()..];
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (name, mention) = match head.split_once('@') {
        Some((n, m)) => (n, Some(m)),
        None => (head, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(Split {
        name,
        mention,
        args,
    })
}

/// The command that matched: its name (without prefix) and raw argument text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCommand {
    /// The command name as typed, without prefix or mention.
    pub name: String,
    /// Everything after the command, trimmed.
    pub args: String,
}

fn matched_or_default(ctx: &Ctx) -> Option<MatchedCommand> {
    if let Some(m) = ctx.matched_command() {
        return Some((*m).clone());
    }
    let split = split_command(ctx.update().text()?, "/")?;
    Some(MatchedCommand {
        name: split.name.to_string(),
        args: split.args.to_string(),
        usage: None,
        on_bad_args: None,
    })
}

impl FromEvent for BotCommand {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        let m = matched_or_default(ctx).ok_or_else(|| ExtractError::Missing {
            method: ctx.update().method().to_string(),
            what: "command",
        })?;
        Ok(BotCommand {
            name: m.name,
            args: m.args,
        })
    }
}

/// The parsed arguments of the matched command. When they do not parse, the handler does not
/// run: the command's bad-arguments hook does (see [`CommandFilter::on_bad_args`]), or the
/// error handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandArgs<T>(pub T);

impl<T: FromCommandArgs + Send + 'static> FromEvent for CommandArgs<T> {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        let m = matched_or_default(ctx).ok_or_else(|| ExtractError::Missing {
            method: ctx.update().method().to_string(),
            what: "command",
        })?;
        T::parse_args(&m.args).map(CommandArgs).map_err(|error| {
            ExtractError::BadArgs(BadArgs {
                command: m.name,
                args: m.args,
                error,
                usage: m.usage.as_deref().map(str::to_string),
            })
        })
    }
}

impl FromEvent for BadArgs {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.bad_args
            .get()
            .cloned()
            .ok_or_else(|| ExtractError::Missing {
                method: ctx.update().method().to_string(),
                what: "bad-arguments report (only a bad-arguments hook receives one)",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefix_name_mention_and_args() {
        let f = CommandFilter::new("add");
        let m = f.parse("  /add 2 3 ", None).unwrap();
        assert_eq!((m.name.as_str(), m.args.as_str()), ("add", "2 3"));
        assert!(f.parse("/addx 1", None).is_none());
        assert!(f.parse("add 1", None).is_none());
        assert!(f.parse("/ADD 1", None).is_none());
        assert!(f.clone().ignore_case().parse("/ADD 1", None).is_some());
        assert!(f.clone().prefixes("!/").parse("!add", None).is_some());
        let me = Some("calc@video.example.com");
        assert!(f.parse("/add@calc 1", me).is_some());
        assert!(f.parse("/add@calc@video.example.com 1", me).is_some());
        assert!(f.parse("/add@other 1", me).is_none());
        assert!(f.parse("/", None).is_none());
        assert!(f.parse("", None).is_none());
    }
}
