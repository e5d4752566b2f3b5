//! Text commands (`/start`, `/add 2 3`, `/help@bot`): matching them, and the extractors that
//! hand the match to handlers.
//!
//! Parsing the argument text is [`args`](super::args)' job; this file only decides whether a
//! text is a given command and keeps what it found on the context.

use std::fmt;
use std::sync::Arc;

use super::args::{ArgsError, BadArgs, FromCommandArgs};
use super::handler::{BoxedHandler, Ctx, ExtractError, FromEvent, Handler, MatchedCommand};

type ArgsPred = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Matches text commands: a prefix (default `/`), a name, an optional `@bot` mention and
/// arguments. Build one from a name (`"start".into()`), with [`CommandFilter::new`], from a
/// regular expression over the name ([`CommandFilter::regex`]) or from a command enum
/// ([`CommandFilter::of`]).
///
/// ```
/// use trueconf_bot::dispatch::{BotCommand, CommandFilter, Regex, Router};
///
/// async fn echo(cmd: BotCommand) { let _ = (cmd.name, cmd.args); }
///
/// let router = Router::new()
///     // /info, /about, /whoami
///     .command(CommandFilter::new("info").alias("about").alias("whoami"), echo)
///     // /echo_1, /echo_42, ... (the whole name must match)
///     .command(CommandFilter::regex(Regex::new(r"echo_\d+").unwrap()), echo)
///     // /upper with more than 3 characters of arguments
///     .command(CommandFilter::new("upper").args_when(|a| a.chars().count() > 3), echo);
/// # let _ = router;
/// ```
#[derive(Clone)]
pub struct CommandFilter {
    names: Vec<String>,
    patterns: Vec<regex::Regex>,
    prefixes: String,
    ignore_case: bool,
    usage: Option<Arc<str>>,
    on_bad_args: Option<BoxedHandler>,
    args_when: Option<ArgsPred>,
}

impl fmt::Debug for CommandFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandFilter")
            .field("names", &self.names)
            .field("patterns", &self.patterns)
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
            patterns: Vec::new(),
            prefixes: "/".into(),
            ignore_case: false,
            usage: None,
            on_bad_args: None,
            args_when: None,
        }
    }

    /// Commands whose whole name (without prefix or `@bot`) matches `re`: `echo_\d+` takes
    /// `/echo_1` and `/echo_42` but not `/echo_1x` (the official client's `re.Pattern`
    /// commands match at the start only). The handler's [`BotCommand`] has the name as typed.
    pub fn regex(re: regex::Regex) -> Self {
        let mut filter = Self::new("");
        filter.names.clear();
        filter.patterns.push(re);
        filter
    }

    /// Also answer to names matching `re` (see [`CommandFilter::regex`]).
    pub fn alias_regex(mut self, re: regex::Regex) -> Self {
        self.patterns.push(re);
        self
    }

    /// The commands of a [`BotCommands`] enum (usually `#[derive(BotCommands)]`): the handler
    /// takes the enum itself as a parameter, parsed with its arguments; arguments that do not
    /// parse go to [`CommandFilter::on_bad_args`] (or the error handler) with the command's
    /// usage line.
    pub fn of<C: BotCommands>() -> Self {
        let mut filter = Self::new("");
        filter.names = C::names().iter().map(|n| n.to_string()).collect();
        filter
    }

    /// Only when the argument text (trimmed; empty when there is none) satisfies `pred`: the
    /// official client's `Command(.., magic=F.args...)`. When it does not, the route does not
    /// match and later routes are tried.
    pub fn args_when(mut self, pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.args_when = Some(Arc::new(pred));
        self
    }

    /// Only when the command has arguments (the official client's `magic=F.args`).
    pub fn with_args(self) -> Self {
        self.args_when(|a| !a.is_empty())
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
        }) || self.patterns.iter().any(|re| {
            re.find(parsed.name)
                .is_some_and(|m| m.start() == 0 && m.end() == parsed.name.len())
        });
        if !hit {
            return None;
        }
        if let Some(pred) = &self.args_when
            && !pred(parsed.args)
        {
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

/// A command enum: usually `#[derive(BotCommands)]` (feature `macros`, on by default),
/// in the style of teloxide's `BotCommands`. Route it with
/// [`Router::commands`](super::Router::commands) (or [`CommandFilter::of`]) and take the enum
/// as a handler parameter; [`BotCommands::descriptions`] is the `/help` text.
///
/// The derive names each variant in lower case (`rename_rule = "snake_case"` or
/// `"identity"` on the enum, `rename = ".."` on a variant to change that; `alias = ".."` adds
/// names), and parses the argument text by the variant's fields: none (arguments ignored), a
/// `String` or `Vec<T>` (the whole text / every word), or up to six
/// [`FromStr`](std::str::FromStr) fields (exactly that many words, see
/// [`FromCommandArgs`]). `description = ".."` on the enum is the help header, on a variant
/// its line; `hide` leaves a variant out of the help.
///
/// ```
/// # #[cfg(feature = "macros")] {
/// use trueconf_bot::dispatch::{BotCommands, Router};
///
/// #[derive(BotCommands, Debug, PartialEq)]
/// #[command(description = "These commands are supported:")]
/// enum Cmd {
///     #[command(description = "show this text")]
///     Help,
///     #[command(description = "add two numbers", alias = "plus")]
///     Add { a: i64, b: i64 },
///     #[command(description = "say something back")]
///     Echo(String),
/// }
///
/// assert_eq!(Cmd::parse("/add 2 40", None), Ok(Cmd::Add { a: 2, b: 40 }));
/// assert_eq!(Cmd::parse("/plus 1 1", None), Ok(Cmd::Add { a: 1, b: 1 }));
/// assert_eq!(Cmd::parse("/echo hi there", None), Ok(Cmd::Echo("hi there".into())));
/// assert_eq!(
///     Cmd::descriptions().to_string(),
///     "These commands are supported:\n\
///      /help — show this text\n\
///      /add <a> <b> — add two numbers\n\
///      /echo — say something back"
/// );
///
/// async fn run(cmd: Cmd) {
///     match cmd {
///         Cmd::Help => { /* reply with Cmd::descriptions() */ }
///         Cmd::Add { a, b } => { let _ = a + b; }
///         Cmd::Echo(text) => { let _ = text; }
///     }
/// }
/// let router = Router::new().commands::<Cmd, _, _>(run);
/// # let _ = router;
/// # }
/// ```
///
/// Mistakes are compile errors: a name used twice (here `add` as a variant and an alias),
/// an unknown attribute, a struct, more than six fields.
///
/// ```compile_fail
/// # #[cfg(feature = "macros")] {
/// use trueconf_bot::dispatch::BotCommands;
///
/// #[derive(BotCommands)]
/// enum Cmd {
///     Add,
///     #[command(alias = "add")]
///     Plus,
/// }
/// # }
/// # #[cfg(not(feature = "macros"))] compile_error!("needs the macros feature");
/// ```
pub trait BotCommands: Sized + Send + 'static {
    /// Every name (without prefix) the enum answers to, aliases included.
    fn names() -> &'static [&'static str];

    /// The command named `name` (any case) with argument text `args`.
    fn from_parts(name: &str, args: &str) -> Result<Self, ParseError>;

    /// The help text: the header and one line per (not hidden) command.
    fn descriptions() -> CommandDescriptions;

    /// Parses a whole message text (prefix `/`, an optional `@bot` naming `self_id`).
    fn parse(text: &str, self_id: Option<&str>) -> Result<Self, ParseError> {
        let split = split_command(text, "/").ok_or(ParseError::NotACommand)?;
        if let (Some(mention), Some(me)) = (split.mention, self_id) {
            let login = me.split('@').next().unwrap_or(me);
            if !mention.eq_ignore_ascii_case(me) && !mention.eq_ignore_ascii_case(login) {
                return Err(ParseError::OtherBot(mention.to_string()));
            }
        }
        Self::from_parts(split.name, split.args)
    }

    /// The handler parameter: the command the route's filter matched, parsed. The derive's
    /// `FromEvent` implementation calls this.
    fn from_ctx(ctx: &Ctx) -> Result<Self, ExtractError> {
        let m = matched_or_default(ctx).ok_or_else(|| ExtractError::Missing {
            method: ctx.update().method().to_string(),
            what: "command",
        })?;
        Self::from_parts(&m.name, &m.args).map_err(|e| match e {
            ParseError::BadArgs(error) => ExtractError::BadArgs(BadArgs {
                usage: m
                    .usage
                    .as_deref()
                    .map(str::to_string)
                    .or_else(|| Self::descriptions().usage_of(&m.name)),
                command: m.name,
                args: m.args,
                error,
            }),
            other => ExtractError::Missing {
                method: ctx.update().method().to_string(),
                what: match other {
                    ParseError::UnknownCommand(_) => "known command",
                    _ => "command",
                },
            },
        })
    }
}

/// Why a text is not one of a [`BotCommands`] enum's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text does not start with a command prefix and name.
    #[error("not a command")]
    NotACommand,
    /// No command has this name.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// The command is addressed to another bot (`/cmd@other`).
    #[error("the command is for `{0}`")]
    OtherBot(String),
    /// The name is known but its arguments do not parse.
    #[error("{0}")]
    BadArgs(ArgsError),
}

/// One line of a [`BotCommands`] enum's help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDescription {
    /// The command name, without prefix.
    pub name: &'static str,
    /// The argument placeholders (`<a> <b>`), empty when there are none or they are unnamed.
    pub args: &'static str,
    /// What the command does.
    pub description: &'static str,
}

/// The help text of a [`BotCommands`] enum: `Display` writes the header, then
/// `/name <args> — description` per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDescriptions {
    /// The header line, if any.
    pub header: Option<&'static str>,
    /// One entry per command, hidden ones excluded.
    pub commands: &'static [CommandDescription],
}

impl CommandDescriptions {
    /// The usage line of command `name`: `/name <args>`.
    pub fn usage_of(&self, name: &str) -> Option<String> {
        let c = self
            .commands
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))?;
        Some(if c.args.is_empty() {
            format!("/{}", c.name)
        } else {
            format!("/{} {}", c.name, c.args)
        })
    }
}

impl fmt::Display for CommandDescriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if let Some(h) = self.header {
            f.write_str(h)?;
            first = false;
        }
        for c in self.commands {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "/{}", c.name)?;
            if !c.args.is_empty() {
                write!(f, " {}", c.args)?;
            }
            if !c.description.is_empty() {
                write!(f, " — {}", c.description)?;
            }
        }
        Ok(())
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

    #[test]
    fn regex_names_match_whole_names_and_args_predicates_filter() {
        let f = CommandFilter::regex(regex::Regex::new(r"echo_\d+").unwrap());
        let m = f.parse("/echo_42 hi", None).unwrap();
        assert_eq!((m.name.as_str(), m.args.as_str()), ("echo_42", "hi"));
        assert!(f.parse("/echo_42x", None).is_none());
        assert!(f.parse("/xecho_4", None).is_none());
        let caps = CommandFilter::regex(regex::Regex::new("caps?").unwrap()).with_args();
        assert!(caps.parse("/cap hello", None).is_some());
        assert!(caps.parse("/caps", None).is_none());
        let upper = CommandFilter::new("upper").args_when(|a| a.len() > 3);
        assert!(upper.parse("/upper abcd", None).is_some());
        assert!(upper.parse("/upper abc", None).is_none());
    }
}
