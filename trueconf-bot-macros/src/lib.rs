//! Procedural macros for [trueconf-bot](https://docs.rs/trueconf-bot), re-exported by it
//! (feature `macros`, on by default) as `trueconf_bot::dispatch::{BotCommands, debug_handler}`.
//! Use them through that path; the generated code names `::trueconf_bot`.

#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, FnArg, ItemFn, LitStr, Type};

/// Derives `trueconf_bot::dispatch::BotCommands` (and `FromEvent`, so handlers take the enum)
/// for an enum of commands. See the trait's documentation for the attributes:
/// `#[command(description = "..", rename_rule = "lowercase" | "snake_case" | "kebab-case" |
/// "UPPERCASE" | "identity")]` on the enum; `#[command(description = "..", rename = "..",
/// alias = "..", hide)]` on a variant.
#[proc_macro_derive(BotCommands, attributes(command))]
pub fn derive_bot_commands(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    bot_commands(input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Checks a handler where it is written, so that a handler the router refuses gets an error
/// pointing at the cause instead of a generic "not a valid event handler" at the route:
/// the function must be an `async fn` with at most six parameters, each a `FromEvent`
/// extractor, returning `()` or a `Result<(), E>`, and its future must be `Send` (the
/// usual culprit: a `std::sync::MutexGuard`, `RefCell` borrow or `Rc` alive across an
/// `.await`). The function itself is left unchanged; the check costs nothing at run time.
#[proc_macro_attribute]
pub fn debug_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = syn::parse_macro_input!(item as ItemFn);
    let checks = if attr.is_empty() {
        handler_checks(&item).unwrap_or_else(Error::into_compile_error)
    } else {
        Error::new(attr.span(), "`#[debug_handler]` takes no arguments").into_compile_error()
    };
    quote!(#item #checks).into()
}

fn handler_checks(f: &ItemFn) -> syn::Result<TokenStream2> {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span(),
            "a handler must be an `async fn` (or a closure returning a `Send` future)",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "`#[debug_handler]` cannot check a generic function",
        ));
    }
    let mut types = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => {
                return Err(Error::new(
                    r.span(),
                    "a handler cannot take `self`: use a free `async fn`",
                ));
            }
            FnArg::Typed(t) => types.push(&*t.ty),
        }
    }
    if types.len() > 6 {
        return Err(Error::new(
            sig.inputs.span(),
            "a handler takes at most 6 parameters: group some into a `FromEvent` type, or take \
             `Dep<(A, B)>` for several dependencies",
        ));
    }
    let name = &sig.ident;
    let param_checks = types.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            __trueconf_from_event::<#ty>();
        }
    });
    let diverge = types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::core::panic!()));
    let send_check = quote_spanned! {name.span()=>
        __trueconf_send(&__future);
    };
    let output_check = quote_spanned! {sig.output.span()=>
        __trueconf_output(&__future);
    };
    let check_fn = format_ident!("__trueconf_debug_handler_{}", name);
    Ok(quote! {
        #[allow(warnings, unreachable_code, clippy::all, non_snake_case)]
        #[doc(hidden)]
        fn #check_fn() {
            fn __trueconf_from_event<T: ::trueconf_bot::dispatch::FromEvent>() {}
            fn __trueconf_send<T: ::core::marker::Send>(_: &T) {}
            fn __trueconf_output<F, R>(_: &F)
            where
                F: ::core::future::Future<Output = R>,
                R: ::trueconf_bot::dispatch::IntoHandlerResult,
            {
            }
            #(#param_checks)*
            let __future = #name(#(#diverge),*);
            #send_check
            #output_check
        }
    })
}

struct Variant<'a> {
    ident: &'a syn::Ident,
    names: Vec<String>,
    description: String,
    hide: bool,
    fields: &'a Fields,
}

#[derive(Clone, Copy)]
enum Rule {
    Lower,
    Upper,
    Snake,
    Kebab,
    Identity,
}

fn words(ident: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, c) in ident.char_indices() {
        if c == '_' {
            out.push(String::new());
        } else if c.is_uppercase() && i > 0 {
            out.push(c.to_lowercase().collect());
        } else if let Some(last) = out.last_mut() {
            last.extend(c.to_lowercase());
        } else {
            out.push(c.to_lowercase().collect());
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

impl Rule {
    fn parse(s: &LitStr) -> syn::Result<Self> {
        Ok(match s.value().as_str() {
            "lowercase" => Rule::Lower,
            "UPPERCASE" => Rule::Upper,
            "snake_case" => Rule::Snake,
            "kebab-case" => Rule::Kebab,
            "identity" => Rule::Identity,
            other => {
                return Err(Error::new(
                    s.span(),
                    format!(
                        "unknown rename_rule `{other}`: use lowercase, UPPERCASE, snake_case, \
                         kebab-case or identity"
                    ),
                ));
            }
        })
    }

    fn apply(self, ident: &str) -> String {
        match self {
            Rule::Lower => ident.to_lowercase(),
            Rule::Upper => ident.to_uppercase(),
            Rule::Snake => words(ident).join("_"),
            Rule::Kebab => words(ident).join("-"),
            Rule::Identity => ident.to_string(),
        }
    }
}

fn bot_commands(input: DeriveInput) -> syn::Result<TokenStream2> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(
            input.ident.span(),
            "`BotCommands` can only be derived for an enum",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(Error::new(
            input.generics.span(),
            "`BotCommands` cannot be derived for a generic enum",
        ));
    }
    let mut header: Option<String> = None;
    let mut rule = Rule::Lower;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("command")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("description") {
                header = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("rename_rule") {
                rule = Rule::parse(&meta.value()?.parse::<LitStr>()?)?;
            } else {
                return Err(meta.error("expected `description` or `rename_rule`"));
            }
            Ok(())
        })?;
    }
    let mut variants = Vec::new();
    let mut seen = std::collections::HashMap::<String, Span>::new();
    for v in &data.variants {
        let mut name = rule.apply(&v.ident.to_string());
        let mut aliases = Vec::new();
        let mut description = String::new();
        let mut hide = false;
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("command")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("description") {
                    description = meta.value()?.parse::<LitStr>()?.value();
                } else if meta.path.is_ident("rename") {
                    name = meta.value()?.parse::<LitStr>()?.value();
                } else if meta.path.is_ident("alias") {
                    aliases.push(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("hide") {
                    hide = true;
                } else {
                    return Err(meta.error("expected `description`, `rename`, `alias` or `hide`"));
                }
                Ok(())
            })?;
        }
        let mut names = vec![name];
        names.extend(aliases);
        for n in &names {
            if n.is_empty() || n.chars().any(char::is_whitespace) || n.contains('@') {
                return Err(Error::new(
                    v.ident.span(),
                    format!("`{n}` cannot be a command name (empty, whitespace or `@`)"),
                ));
            }
            if seen.insert(n.to_lowercase(), v.ident.span()).is_some() {
                return Err(Error::new(
                    v.ident.span(),
                    format!("the command name `{n}` is used twice"),
                ));
            }
        }
        if v.fields.len() > 6 {
            return Err(Error::new(
                v.fields.span(),
                "a command takes at most 6 arguments",
            ));
        }
        variants.push(Variant {
            ident: &v.ident,
            names,
            description,
            hide,
            fields: &v.fields,
        });
    }

    let ident = &input.ident;
    let krate = quote!(::trueconf_bot::dispatch);
    let all_names = variants.iter().flat_map(|v| v.names.iter());
    let arms = variants.iter().map(|v| {
        let names = &v.names;
        let build = build_variant(v, &krate);
        quote! {
            if #( name.eq_ignore_ascii_case(#names) )||* {
                return #build;
            }
        }
    });
    let descriptions = variants.iter().filter(|v| !v.hide).map(|v| {
        let name = &v.names[0];
        let description = &v.description;
        let args = match v.fields {
            Fields::Named(f) => f
                .named
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .map(|i| format!("<{i}>"))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        quote! {
            #krate::CommandDescription { name: #name, args: #args, description: #description }
        }
    });
    let header = match header {
        Some(h) => quote!(::core::option::Option::Some(#h)),
        None => quote!(::core::option::Option::None),
    };
    Ok(quote! {
        impl #krate::BotCommands for #ident {
            fn names() -> &'static [&'static str] {
                &[#(#all_names),*]
            }

            fn from_parts(
                name: &str,
                args: &str,
            ) -> ::core::result::Result<Self, #krate::ParseError> {
                #(#arms)*
                ::core::result::Result::Err(#krate::ParseError::UnknownCommand(
                    ::std::string::ToString::to_string(name),
                ))
            }

            fn descriptions() -> #krate::CommandDescriptions {
                #krate::CommandDescriptions {
                    header: #header,
                    commands: &[#(#descriptions),*],
                }
            }
        }

        impl #krate::FromEvent for #ident {
            fn from_event(
                ctx: &#krate::Ctx,
            ) -> ::core::result::Result<Self, #krate::ExtractError> {
                <Self as #krate::BotCommands>::from_ctx(ctx)
            }
        }
    })
}

/// Whether a single field takes the whole argument text (`String`, `Vec<T>`) rather than
/// exactly one word.
fn takes_whole_text(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "String" || s.ident == "Vec"),
        _ => false,
    }
}

fn build_variant(v: &Variant<'_>, krate: &TokenStream2) -> TokenStream2 {
    let ident = &v.ident;
    let types: Vec<&Type> = v.fields.iter().map(|f| &f.ty).collect();
    let vars: Vec<_> = (0..types.len())
        .map(|i| format_ident!("__a{}", i))
        .collect();
    let construct = match v.fields {
        Fields::Unit => return quote!(::core::result::Result::Ok(Self::#ident)),
        Fields::Unnamed(_) => quote!(Self::#ident(#(#vars),*)),
        Fields::Named(f) => {
            let names = f.named.iter().filter_map(|f| f.ident.as_ref());
            quote!(Self::#ident { #(#names: #vars),* })
        }
    };
    let (parse_ty, pattern) = if types.len() == 1 && takes_whole_text(types[0]) {
        (types[0].to_token_stream(), quote!(__a0))
    } else {
        (quote!((#(#types,)*)), quote!((#(#vars,)*)))
    };
    quote! {
        <#parse_ty as #krate::FromCommandArgs>::parse_args(args)
            .map(|#pattern| #construct)
            .map_err(#krate::ParseError::BadArgs)
    }
}
