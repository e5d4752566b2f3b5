//! Typed command arguments: parsing the text after a command, and the report a bad parse
//! leaves for the command's hook.
//!
//! Nothing here knows about events, contexts or handlers, which is what lets the handler
//! layer carry a [`BadArgs`] without importing the command matcher that produces it.

use std::fmt;
use std::str::FromStr;

/// Why command arguments did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    /// A readable reason naming the argument and the bad value.
    pub message: String,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgsError {}

/// Typed command arguments: implemented for `()` (ignores arguments), `String` (the whole
/// argument text), `Vec<T>` (every whitespace-separated word) and tuples of up to six
/// [`FromStr`] types (exactly that many words).
pub trait FromCommandArgs: Sized {
    /// Parses the argument text.
    fn parse_args(args: &str) -> Result<Self, ArgsError>;
}

impl FromCommandArgs for () {
    fn parse_args(_: &str) -> Result<Self, ArgsError> {
        Ok(())
    }
}

impl FromCommandArgs for String {
    fn parse_args(args: &str) -> Result<Self, ArgsError> {
        Ok(args.trim().to_string())
    }
}

fn parse_word<T: FromStr>(word: &str, position: usize) -> Result<T, ArgsError>
where
    T::Err: fmt::Display,
{
    word.parse().map_err(|e| ArgsError {
        message: format!(
            "argument {position} `{word}` is not a valid {}: {e}",
            short_type_name::<T>()
        ),
    })
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

impl<T: FromStr> FromCommandArgs for Vec<T>
where
    T::Err: fmt::Display,
{
    fn parse_args(args: &str) -> Result<Self, ArgsError> {
        args.split_whitespace()
            .enumerate()
            .map(|(i, w)| parse_word(w, i + 1))
            .collect()
    }
}

macro_rules! impl_args_tuple {
    ($n:expr; $($t:ident),+) => {
        impl<$($t: FromStr),+> FromCommandArgs for ($($t,)+)
        where
            $($t::Err: fmt::Display,)+
        {
            #[allow(non_snake_case)]
            fn parse_args(args: &str) -> Result<Self, ArgsError> {
                let words: Vec<&str> = args.split_whitespace().collect();
                if words.len() != $n {
                    return Err(ArgsError {
                        message: format!(
                            "expected {} argument{}, got {}",
                            $n,
                            if $n == 1 { "" } else { "s" },
                            words.len()
                        ),
                    });
                }
                let mut it = words.into_iter().enumerate();
                $(
                    let (i, w) = it.next().ok_or_else(|| ArgsError { message: "missing argument".into() })?;
                    let $t: $t = parse_word(w, i + 1)?;
                )+
                Ok(($($t,)+))
            }
        }
    };
}

impl_args_tuple!(1; A);
impl_args_tuple!(2; A, B);
impl_args_tuple!(3; A, B, C);
impl_args_tuple!(4; A, B, C, D);
impl_args_tuple!(5; A, B, C, D, E);
impl_args_tuple!(6; A, B, C, D, E, F);

/// What the bad-arguments hook receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadArgs {
    /// The command name.
    pub command: String,
    /// The argument text that did not parse.
    pub args: String,
    /// Why.
    pub error: ArgsError,
    /// The usage line set with [`CommandFilter::usage`](super::CommandFilter::usage).
    pub usage: Option<String>,
}

impl fmt::Display for BadArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad arguments to /{}: {}", self.command, self.error)?;
        if let Some(u) = &self.usage {
            write!(f, " (usage: {u})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arguments() {
        assert_eq!(<(u32, u32)>::parse_args("2  3"), Ok((2, 3)));
        let e = <(u32, u32)>::parse_args("2 x").unwrap_err();
        assert!(e.message.contains("argument 2 `x`"), "{e}");
        assert!(e.message.contains("u32"), "{e}");
        assert!(
            <(u32,)>::parse_args("")
                .unwrap_err()
                .message
                .contains("expected 1")
        );
        assert!(<(u32, String)>::parse_args("1 a b").is_err());
        assert_eq!(
            <(String, f64)>::parse_args("pi 3.5"),
            Ok(("pi".into(), 3.5))
        );
        assert_eq!(Vec::<i64>::parse_args("1 -2 3"), Ok(vec![1, -2, 3]));
        assert_eq!(
            String::parse_args("  hello world "),
            Ok("hello world".into())
        );
    }
}
