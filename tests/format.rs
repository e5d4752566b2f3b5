//! Formatting: escaping, builders, visible length, splitting, mentions and reply quotes.

use proptest::prelude::*;
use trueconf_bot::format::{
    self, ContactLink, MAX_TEXT_LEN, contact_link, html, is_all_mention, markdown, mentioned_ids,
    mentions, reply_quote, split_text, strip_reply_quote, visible_len, visible_text,
};
use trueconf_bot::types::ParseMode;

const HTML: ParseMode = ParseMode::Html;
const MD: ParseMode = ParseMode::Markdown;
const TEXT: ParseMode = ParseMode::Text;

// Expected numbers computed with python-trueconf-bot 1.5.4:
// `trueconf.utils.split_text.visible_len(s)`.
#[test]
fn visible_len_matches_python_client() {
    let cases: [(&str, ParseMode, usize); 8] = [
        ("<b>hello</b> world", HTML, 11),
        ("<a href=\"https://x.io\">site</a>!", HTML, 18),
        ("<i>x</i><br>y", HTML, 2),
        ("<a href=\"trueconf:bob@srv\">Bob</a> hi", HTML, 23),
        ("**bold** and _it_ snake_case_name", MD, 27),
        ("[docs](https://t.co) end", MD, 21),
        ("~~gone~~ __u__ a__b", MD, 11),
        ("Привет, **мир** 😀", MD, 13),
    ];
    for (text, mode, want) in cases {
        assert_eq!(visible_len(text, &mode), want, "{text:?} in {mode:?}");
    }
}

// Random mixes of one mode's markup (no entities, no escapes, and for HTML no line starting
// with `>`, which the Python client strips in every mode). Generated with python-trueconf-bot
// 1.5.4 `visible_len`; 6000 such strings agreed when this was written.
#[test]
fn visible_len_matches_python_client_on_random_markup() {
    let cases: &[(&str, ParseMode, usize)] = &[
        ("\n<s/><< 😀", HTML, 5),
        ("</s> word,", HTML, 6),
        ("</s></i><<a href='trueconf:b@s'>Bob</a><u><i>\n", HTML, 18),
        ("<a>,</b>Привет<p><,</br>Привет", HTML, 18),
        ("</s>Привет<b> <i></b></b><br>", HTML, 7),
        ("Привет<b><s/><", HTML, 7),
        ("<😀<br> <a href=\"https://ex.com/p\">", HTML, 3),
        (
            "<a href='trueconf:b@s'>Bob</a>word<b><B><i><,</a>",
            HTML,
            22,
        ),
        ("\n<i><a></a><quote class=\"reply\"><s/>", HTML, 1),
        (" <a href='trueconf:b@s'>Bob</a><b><i>", HTML, 17),
        (
            "<s/></i><p></i><a href='trueconf:b@s'>Bob</a><p><i>",
            HTML,
            22,
        ),
        ("<B><b><br>", HTML, 0),
        ("</b>word<p><a>", HTML, 7),
        ("<b x<i>😀,<br><s/>", HTML, 2),
        (
            "</a><quote class=\"reply\"><i><a href='trueconf:b@s'>Bob</a><quote class=\"reply\"><b><b x<s/>",
            HTML,
            16,
        ),
        ("~]é", MD, 2),
        ("***\n>", MD, 1),
        ("a_b~~😀2*3[\n>snake__case[a~b", MD, 24),
        ("~> \n[**b**](u)__[**b**](u)> [*", MD, 12),
        ("[ x ](u)word)*[", MD, 10),
        ("[**b**](u) \nword", MD, 9),
        ("**~[", MD, 1),
        ("(*_* ]()", MD, 5),
        ("___[word\n", MD, 6),
        ("* [t](https://u.io)[t](https://u.io)", MD, 29),
        ("\n>~worda_bword~[**b**](u)", MD, 15),
        ("\n~)]", MD, 3),
        (" ]a~b[~~a~b\n2*3[", MD, 14),
        ("[**b**](u)a_b _> **____", MD, 9),
        ("snake__case(]", MD, 13),
    ];
    for (text, mode, want) in cases {
        assert_eq!(visible_len(text, mode), *want, "{text:?} in {mode:?}");
    }
}

#[test]
fn visible_len_differs_from_python_where_the_reader_sees_less() {
    // Python counts `&amp;` as 5 chars (9 here); a reader sees one `&`.
    assert_eq!(visible_len("a &amp; b", &HTML), 5);
    assert_eq!(visible_len("&#x1F600;&lt;", &HTML), 2);
    // Unknown entities are shown verbatim.
    assert_eq!(visible_len("&bogus;", &HTML), 7);
    // Each mode strips only its own markup; text mode strips nothing.
    assert_eq!(visible_len("**b**", &HTML), 5);
    assert_eq!(visible_len("<b>b</b>", &MD), 8);
    assert_eq!(visible_len("<b>**b**</b>", &TEXT), 12);
    // A Markdown escape shows one character.
    assert_eq!(visible_len(r"1\.5 \*", &MD), 5);
    assert_eq!(visible_text(r"1\.5 \*", &MD), "1.5 *");
}

#[test]
fn visible_text_renders_links_and_tags() {
    assert_eq!(
        visible_text(
            "<b>Hi</b> <a href=\"https://a.io/?x=1&amp;y=2\">site</a>",
            &HTML
        ),
        "Hi site https://a.io/?x=1&y=2"
    );
    assert_eq!(
        visible_text(">quoted **bold** [t](u)", &MD),
        "quoted bold t u"
    );
    assert_eq!(visible_text("snake_case *it*", &MD), "snake_case it");
    // Unknown tags are text, as in the Python client.
    assert_eq!(visible_len("<p>x</p>", &HTML), 8);
    assert_eq!(visible_len("<B>x</B><s/>", &HTML), 1);
}

#[test]
fn html_builders_escape_user_text() {
    assert_eq!(html::bold("a<b"), "<b>a&lt;b</b>");
    assert_eq!(html::italic("x"), "<i>x</i>");
    assert_eq!(html::underline("x"), "<u>x</u>");
    assert_eq!(html::strike("&"), "<s>&amp;</s>");
    assert_eq!(
        html::link("site", "https://a.io/?q=\"x\"&y"),
        "<a href=\"https://a.io/?q=&quot;x&quot;&amp;y\">site</a>"
    );
    assert_eq!(
        html::mention("bob@srv.example", "Bob <3"),
        "<a href=\"trueconf:bob@srv.example\">Bob &lt;3</a>"
    );
    assert_eq!(html::escape("plain"), "plain");
    assert_eq!(
        html::unescape("a &lt;b&gt; &amp;amp; &#39;&#x27; &nope;"),
        "a <b> &amp; '' &nope;"
    );
}

#[test]
fn markdown_builders_escape_user_text() {
    assert_eq!(markdown::bold("a*b"), r"**a\*b**");
    assert_eq!(markdown::italic("x_y"), r"*x\_y*");
    assert_eq!(markdown::strike("~"), r"~~\~~~");
    assert_eq!(
        markdown::link("a]b", "https://x.io/(1) 2"),
        r"[a\]b](https://x.io/%281%29%202)"
    );
    assert_eq!(
        markdown::mention("bob@srv", "Bob"),
        "[Bob](trueconf:bob@srv)"
    );
    assert_eq!(markdown::escape("1.5!"), r"1\.5\!");
    assert_eq!(markdown::unescape(r"1\.5\! \q"), r"1.5! \q");
}

const HOSTILE: [&str; 8] = [
    "<script>alert(1)</script>",
    "</b><a href=\"trueconf:admin@srv\">x</a>",
    "**not bold** __nor__ ~~this~~",
    "](trueconf:admin@srv) [x](y)",
    "&amp; &lt;b&gt; &#60;",
    ">not a quote\n>nor this",
    "\\*\\\\ trailing backslash \\",
    "<quote class=\"reply\">q</quote><br>",
];

#[test]
fn hostile_text_renders_literally_through_builders() {
    for evil in HOSTILE {
        for built in [
            html::bold(evil),
            html::italic(evil),
            html::strike(evil),
            html::link(evil, "https://a"),
        ] {
            let shown = visible_text(&built, &HTML);
            assert!(shown.starts_with(evil), "{built:?} shows {shown:?}");
            assert!(mentioned_ids(&built).is_empty() || built.contains("href=\"trueconf:admin"));
        }
        assert_eq!(visible_text(&html::bold(evil), &HTML), evil);
        assert_eq!(visible_text(&html::escape(evil), &HTML), evil);
        assert_eq!(visible_len(&html::bold(evil), &HTML), evil.chars().count());
        // The mention text cannot inject another mention.
        assert_eq!(mentioned_ids(&html::mention("bob@srv", evil)), ["bob@srv"]);

        for built in [
            markdown::bold(evil),
            markdown::italic(evil),
            markdown::strike(evil),
        ] {
            assert_eq!(visible_text(&built, &MD), evil, "{built:?}");
        }
        assert_eq!(visible_text(&markdown::escape(evil), &MD), evil);
        assert_eq!(
            visible_text(&markdown::link(evil, "https://a"), &MD),
            format!("{evil} https://a")
        );
        if !evil.contains("<a ") {
            // Mention detection does not know the parse mode, so a raw `<a href>` counts.
            assert_eq!(
                mentioned_ids(&markdown::mention("bob@srv", evil)),
                ["bob@srv"]
            );
        }
    }
    // A url cannot break out of the attribute or the parentheses.
    let html_link = html::link("x", "\"><script>");
    assert_eq!(visible_text(&html_link, &HTML), "x \"><script>");
    let md_link = markdown::link("x", "a) [y](trueconf:admin@srv");
    assert!(mentioned_ids(&md_link).is_empty(), "{md_link}");
}

#[test]
fn quote_reply_bodies() {
    assert_eq!(
        html::quote_reply("a < b", "<b>yes</b>"),
        "<quote class=\"reply\">a &lt; b</quote><br><br><b>yes</b>"
    );
    assert_eq!(
        html::quote_reply_text("q", "1 < 2"),
        "<quote class=\"reply\">q</quote><br><br>1 &lt; 2"
    );
    assert_eq!(markdown::quote_reply("line", "**ok**"), ">line\n\n**ok**");
    assert_eq!(markdown::quote_reply("a*\nb", "r"), ">a\\*\n>b\n\nr");
    // What we send is what we read back.
    let body = html::quote_reply("</quote><b>x", "reply");
    assert_eq!(
        strip_reply_quote(&body),
        (Some("</quote><b>x".to_owned()), "reply".to_owned())
    );
}

#[test]
fn strip_reply_quote_matches_python_message_text() {
    let (q, rest) =
        strip_reply_quote("<quote class=\"reply\">it&#x27;s &amp; it</quote><br><br>Answer");
    assert_eq!(q.as_deref(), Some("it's & it"));
    assert_eq!(rest, "Answer");
    // Python requires at least one <br> after the block before stripping.
    let text = "<quote class=\"reply\">q</quote>no break";
    assert_eq!(strip_reply_quote(text), (None, text.to_owned()));
    // Not at the start: nothing stripped, but `reply_quote` still finds it (Message.quote).
    let text = "x <quote  class=\"reply\">q</quote><br>";
    assert_eq!(strip_reply_quote(text), (None, text.to_owned()));
    assert_eq!(reply_quote(text).as_deref(), Some("q"));
    assert_eq!(reply_quote("plain"), None);
    assert_eq!(strip_reply_quote("plain"), (None, "plain".to_owned()));
}

#[test]
fn mention_detection() {
    let bot = "bot@srv.example/abc123";
    assert!(mentions(" @all \n", bot));
    assert!(is_all_mention("@all"));
    assert!(!is_all_mention("@all hi"));
    assert!(!mentions("hi @all", bot));
    assert!(mentions(
        "hey <a href=\"trueconf:bot@srv.example\">Bot</a>",
        bot
    ));
    assert!(mentions(
        "hey <a href='trueconf:BOT@srv.example&do=profile'>Bot</a>",
        bot
    ));
    assert!(mentions(
        "hey <a href=\"trueconf:bot@srv.example&amp;do=profile\">Bot</a>",
        bot
    ));
    assert!(mentions("hey [Bot](trueconf:bot@srv.example)", bot));
    assert!(!mentions(
        "hey <a href=\"trueconf:bot@srv.example.evil\">Bot</a>",
        bot
    ));
    assert!(!mentions("trueconf:bot@srv.example", bot));
    assert!(!mentions(
        "<a href=\"trueconf:bot@srv.example&x=1\">Bot</a>",
        bot
    ));
    assert_eq!(
        mentioned_ids(
            "<a href=\"trueconf:a@s\">A</a> [B](trueconf:b@s&do=profile) <a href=\"trueconf:a@s\">A</a>"
        ),
        ["a@s", "b@s"]
    );
}

#[test]
fn contact_card_detection() {
    assert_eq!(
        contact_link(" <a href=\"trueconf:ann@srv&do=profile\">Ann &amp; Co</a>\n"),
        Some(ContactLink {
            user_id: "ann@srv".into(),
            name: "Ann & Co".into()
        })
    );
    assert!(contact_link("<a href=\"trueconf:ann@srv\">Ann</a>").is_some());
    assert_eq!(
        contact_link("see <a href=\"trueconf:ann@srv\">Ann</a>"),
        None
    );
    assert_eq!(contact_link("<a href=\"https://x\">Ann</a>"), None);
    assert_eq!(
        contact_link("<a href=\"trueconf:a@s\">A</a> and <a href=\"trueconf:b@s\">B</a>"),
        None
    );
}

#[test]
fn split_prefers_paragraphs_then_lines_then_words() {
    let text = "first paragraph here\n\nsecond one\nwith lines and words";
    let parts = split_text(text, &TEXT, 30);
    assert_eq!(
        parts,
        [
            "first paragraph here\n\n",
            "second one\nwith lines and ",
            "words"
        ]
    );
    assert_eq!(parts.concat(), text);
    assert_eq!(split_text("", &TEXT, 10), Vec::<String>::new());
    assert_eq!(split_text("short", &HTML, MAX_TEXT_LEN), ["short"]);
}

#[test]
fn split_closes_and_reopens_markup() {
    let parts = split_text("<b>bold <i>and italic</i> text</b><br><br>next", &HTML, 12);
    assert_eq!(
        parts,
        [
            "<b>bold <i>and </i></b>",
            "<b><i>italic</i> text</b>",
            "next"
        ]
    );
    let parts = split_text("**bold words here** tail", &MD, 11);
    assert_eq!(parts, ["**bold words **", "**here** tail"]);
    let parts = split_text(">quoted line that is long\nafter", &MD, 12);
    assert_eq!(parts[0], ">quoted line ");
    assert!(parts[1].starts_with('>'), "{parts:?}");
}

#[test]
fn split_never_cuts_entities_or_tags_and_cuts_long_words() {
    let parts = split_text("aaa&amp;bbb", &HTML, 4);
    assert_eq!(parts, ["aaa&amp;", "bbb"]);
    let long = "x".repeat(25);
    let parts = split_text(&long, &TEXT, 10);
    assert_eq!(parts, ["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
    // A link longer than the limit is written out as text.
    let parts = split_text("<a href=\"https://e.io\">site</a>", &HTML, 6);
    assert_eq!(
        parts
            .iter()
            .map(|p| visible_text(p, &HTML))
            .collect::<String>(),
        "site https://e.io"
    );
}

fn fragment(mode: u8) -> impl Strategy<Value = String> {
    let common = [
        "word",
        " ",
        "  ",
        "\n",
        "\n\n",
        "😀",
        "é",
        "Привет",
        "averyveryverylongwordwithoutanyspaces",
        ".",
        ",",
        "x",
    ];
    let html = [
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<u>",
        "</u>",
        "<s>",
        "</s>",
        "<br>",
        "<br/>",
        "&amp;",
        "&lt;",
        "&#x1F600;",
        "&bogus;",
        "&",
        "<",
        ">",
        "<a href=\"https://ex.com/path\">",
        "</a>",
        "<a href=\"trueconf:bob@srv\">Bob</a>",
        "<quote class=\"reply\">",
        "</quote>",
        "<p>",
        "<b x",
        "<a ",
        "<B>",
        "</B>",
        "<b/>",
        "<b\n>",
        "<br >",
        "</br>",
        "<a href='q'>",
        "&#60;",
        "<s x/>",
        "<quote\tclass=\"reply\">",
        "\t",
        "\r\n",
    ];
    let md = [
        "*",
        "**",
        "_",
        "__",
        "~",
        "~~",
        "[",
        "]",
        "(",
        ")",
        "](",
        "[t](https://u.io)",
        "[Bob](trueconf:bob@srv)",
        "\\",
        "\\*",
        "\\.",
        ">",
        "\n>",
        "a_b",
        "snake__case",
        "2*3",
        "[x](u\n>)",
        "\t",
        "\r\n",
        "a~b",
        "_*",
        "*_",
        "__*",
        ">>",
        "\\>",
        "\\\\",
        "[**b**](u)",
    ];
    let pool: Vec<&'static str> = common
        .iter()
        .chain(if mode != 1 { &md[..] } else { &[][..] })
        .chain(if mode != 2 { &html[..] } else { &[][..] })
        .copied()
        .collect();
    prop::sample::select(pool).prop_map(str::to_owned)
}

fn doc(mode: u8) -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(mode), 0..60).prop_map(|v| v.concat())
}

fn check_split(text: &str, mode: &ParseMode, limit: usize) -> Result<(), TestCaseError> {
    let parts = split_text(text, mode, limit);
    prop_assert_eq!(parts.is_empty(), text.is_empty());
    for p in &parts {
        prop_assert!(!p.is_empty());
        let n = visible_len(p, mode);
        prop_assert!(
            n <= limit.max(1) || parts.len() == 1,
            "part {:?} has {} > {}",
            p,
            n,
            limit
        );
    }
    if parts.len() > 1 {
        for p in &parts {
            prop_assert!(visible_len(p, mode) > 0, "invisible part {:?}", p);
        }
    }
    if *mode == ParseMode::Text {
        prop_assert_eq!(parts.concat(), text);
    } else {
        let joined: String = parts.iter().map(|p| visible_text(p, mode)).collect();
        prop_assert_eq!(joined, visible_text(text, mode), "parts {:?}", parts);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn split_text_mode(text in doc(0), limit in 1usize..200) {
        check_split(&text, &TEXT, limit)?;
    }

    #[test]
    fn split_html(text in doc(1), limit in 1usize..200) {
        check_split(&text, &HTML, limit)?;
    }

    #[test]
    fn split_markdown(text in doc(2), limit in 1usize..200) {
        check_split(&text, &MD, limit)?;
    }

    #[test]
    fn split_small_limits(text in doc(0), limit in 1usize..8) {
        for mode in [TEXT, HTML, MD] {
            check_split(&text, &mode, limit)?;
        }
    }

    #[test]
    fn visible_len_is_visible_text_len(text in doc(0)) {
        for mode in [TEXT, HTML, MD] {
            prop_assert_eq!(visible_len(&text, &mode), visible_text(&text, &mode).chars().count());
        }
    }

    #[test]
    fn escaped_text_shows_verbatim(s in "\\PC*") {
        prop_assert_eq!(visible_text(&html::escape(&s), &HTML), s.clone());
        prop_assert_eq!(visible_text(&markdown::escape(&s), &MD), s.clone());
        prop_assert_eq!(format::visible_len(&html::bold(&s), &HTML), s.chars().count());
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile texts (security review, issue 21 item 4). A chat user controls what `mentions` and
// friends read, so none of them may go back over what it has already read: on 1 MiB a
// quadratic scan takes minutes, a linear one well under a second even in a debug build.
// ---------------------------------------------------------------------------------------------

/// About `n` bytes of `unit` (whole units).
fn fill(unit: &str, n: usize) -> String {
    unit.repeat(n / unit.len())
}

/// The texts of `benches/format.rs`, and more that defeat a one-way scanner, of about `n`
/// bytes each.
fn hostile_texts(n: usize) -> Vec<(&'static str, String)> {
    let ending = |body: String, end: &str| body + end;
    vec![
        ("plain", fill("lorem ipsum dolor sit amet ", n)),
        ("lbracket", fill("[", n)),
        // Every `[` finds the one `]`, none is a link.
        ("lbracket_close", ending(fill("[", n), "]")),
        ("lbracket_escapes", ending(fill("[\\\\", n), "]")),
        ("star", fill("*", n)),
        ("lt", fill("<", n)),
        (
            "lt_in_bold",
            format!("<b>{}{}", fill("<", n / 2), fill("x ", n / 2)),
        ),
        ("link_open", fill("[a](", n)),
        ("word", fill("x", n)),
        ("wide_word", fill("é😀", n)),
        ("spaces", fill(" ", n)),
        // Each `href="trueconf:` is inside the one unclosed `<a` tag.
        ("href", format!("<a {}", fill("href=\"trueconf:x ", n))),
        // Open tags that every part re-opens.
        ("nested_b", fill("<b>", 16 << 10) + &fill("x ", n)),
        (
            "long_opener",
            format!("<b {}>{}", fill("x", 16 << 10), fill("y ", n)),
        ),
        ("long_link", format!("[{}](u)", fill("x", n))),
        (
            "long_anchor",
            format!("<a href=\"u\">{}</a>", fill("x ", n)),
        ),
        ("quotes", fill("<quote   ", n)),
    ]
}

type Probe = fn(&str) -> usize;

fn split_len(t: &str, mode: &ParseMode, limit: usize) -> usize {
    split_text(t, mode, limit).len()
}

const PROBES: [(&str, Probe); 24] = [
    ("mentions", |t| usize::from(mentions(t, "bot@srv"))),
    ("mentioned_ids", |t| mentioned_ids(t).len()),
    ("contact_link", |t| usize::from(contact_link(t).is_some())),
    ("is_all_mention", |t| usize::from(is_all_mention(t))),
    ("strip_reply_quote", |t| strip_reply_quote(t).1.len()),
    ("reply_quote", |t| reply_quote(t).map_or(0, |q| q.len())),
    ("visible_len md", |t| visible_len(t, &MD)),
    ("visible_len html", |t| visible_len(t, &HTML)),
    ("visible_text md", |t| visible_text(t, &MD).len()),
    ("visible_text html", |t| visible_text(t, &HTML).len()),
    ("split_text text", |t| split_len(t, &TEXT, MAX_TEXT_LEN)),
    ("split_text md", |t| split_len(t, &MD, MAX_TEXT_LEN)),
    ("split_text html", |t| split_len(t, &HTML, MAX_TEXT_LEN)),
    ("split_text text 64", |t| split_len(t, &TEXT, 64)),
    ("split_text md 64", |t| split_len(t, &MD, 64)),
    ("split_text html 64", |t| split_len(t, &HTML, 64)),
    ("split_text text in 3", |t| split_len(t, &TEXT, t.len() / 3)),
    ("split_text md in 3", |t| split_len(t, &MD, t.len() / 3)),
    ("split_text html in 3", |t| split_len(t, &HTML, t.len() / 3)),
    ("markdown::escape", |t| markdown::escape(t).len()),
    ("markdown::unescape", |t| markdown::unescape(t).len()),
    ("html::escape", |t| html::escape(t).len()),
    ("html::unescape", |t| html::unescape(t).len()),
    ("markdown::link", |t| markdown::link(t, t).len()),
];

#[test]
fn hostile_texts_take_linear_time() {
    use std::sync::{Arc, mpsc};
    use std::time::Duration;
    // Generous: linear code needs a fraction of a second per call in a debug build on a busy
    // machine; the quadratic code this guards against needed minutes.
    const BOUND: Duration = Duration::from_secs(5);
    for (kind, text) in hostile_texts(1 << 20) {
        let text = Arc::new(text);
        for (name, probe) in PROBES {
            let (tx, rx) = mpsc::channel();
            let t = Arc::clone(&text);
            // A thread, so a regression fails after BOUND instead of hanging the suite (and
            // fails at once: the stray thread keeps a core busy until the process ends).
            std::thread::spawn(move || tx.send(probe(&t)));
            match rx.recv_timeout(BOUND) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{name} on 1 MiB of {kind} took over {BOUND:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name} on {kind} panicked"),
            }
        }
    }
}

#[test]
fn split_parts_stay_proportional_to_the_text() {
    // Escaping may grow a text a few times over (`&` is `&amp;`), and each part re-opens and
    // closes the formatting open at its cut; neither may grow with the number of open tags
    // or with the length of one opening tag.
    for (kind, text) in hostile_texts(64 << 10) {
        for mode in [TEXT, MD, HTML] {
            for limit in [64, MAX_TEXT_LEN] {
                let parts = split_text(&text, &mode, limit);
                let bytes: usize = parts.iter().map(String::len).sum();
                let bound = 5 * text.len() + parts.len() * 8192;
                assert!(
                    bytes <= bound,
                    "{kind} in {mode:?} at {limit}: {} parts, {bytes} bytes from {}",
                    parts.len(),
                    text.len()
                );
            }
        }
    }
}

/// Texts from the characters scanners trip on, with a few whole constructs so links, tags,
/// mentions and escapes actually occur.
fn dangerous() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        "[", "]", "(", ")", "*", "_", "~", "`", "<", ">", "&", ";", "\\", "/", "=", "\"", "a", "b",
        "i", "x", "Z", " ", "  ", "\n", "\t", "é", "😀", "Ж",
    ]);
    let constructs = prop::sample::select(vec![
        "<b>",
        "</b>",
        "<i x>",
        "<a href=\"trueconf:bot@srv\">",
        "<a href='trueconf:Bot@srv&do=profile'>",
        " href=\"trueconf:x@s\"",
        "</a>",
        "[a](",
        "](trueconf:bot@srv)",
        "](u)",
        "\\]",
        "\\\\",
        "**",
        "__",
        "~~",
        "&amp;",
        "&#60;",
        "<br>",
        "<quote class=\"reply\">",
        "</quote>",
        "\n>",
    ]);
    let unit = prop_oneof![4 => chars, 1 => constructs];
    prop::collection::vec(unit, 0..48).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The linear scanners give what the plain definitions give (`format::reference`:
    /// searches from scratch, and the split and mention search from before they were made
    /// linear).
    #[test]
    fn linear_scanners_agree_with_the_reference(text in dangerous(), limit in 1usize..40) {
        use trueconf_bot::format::reference;
        for mode in [TEXT, MD, HTML] {
            prop_assert_eq!(visible_len(&text, &mode), reference::visible_len(&text, &mode));
            prop_assert_eq!(visible_text(&text, &mode), reference::visible_text(&text, &mode));
            prop_assert_eq!(
                split_text(&text, &mode, limit),
                reference::split_text(&text, &mode, limit),
                "{:?} at {}", mode, limit
            );
        }
        prop_assert_eq!(mentioned_ids(&text), reference::mentioned_ids(&text));
        prop_assert_eq!(mentions(&text, "bot@srv/x"), reference::mentions(&text, "bot@srv/x"));
        let md: String = text
            .chars()
            .flat_map(|c| {
                let special = "_*[]()~`>#+-=|{}.!\\".contains(c);
                special.then_some('\\').into_iter().chain([c])
            })
            .collect();
        prop_assert_eq!(markdown::escape(&text), md.as_str());
        prop_assert_eq!(markdown::unescape(&md), text.as_str());
        let h = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        prop_assert_eq!(html::escape(&text), h.as_str());
        prop_assert_eq!(html::unescape(&h), text.as_str());
    }
}

/// The escapers as plainly as they can be written: char by char. The library's work on
/// bytes (for speed on hostile texts) must give the same strings.
fn escape_by_chars(text: &str, escapes: &[(char, &str)]) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match escapes.iter().find(|(k, _)| *k == c) {
            Some((_, with)) => out.push_str(with),
            None => out.push(c),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn escapers_agree_with_char_by_char(text in "(\\PC|[<>&\"'*_\\[\\]()\\\\`~#+=|{}.!-]){0,40}") {
        let html_set = [('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;")];
        let attr_set = [('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;"), ('"', "&quot;"), ('\'', "&#x27;")];
        let md: Vec<(char, String)> =
            "_*[]()~`>#+-=|{}.!\\".chars().map(|c| (c, format!("\\{c}"))).collect();
        let md_set: Vec<(char, &str)> = md.iter().map(|(c, s)| (*c, s.as_str())).collect();
        prop_assert_eq!(html::escape(&text), escape_by_chars(&text, &html_set));
        prop_assert_eq!(html::escape_attr(&text), escape_by_chars(&text, &attr_set));
        prop_assert_eq!(markdown::escape(&text), escape_by_chars(&text, &md_set));
        let escaped = markdown::escape(&text);
        prop_assert_eq!(markdown::unescape(&escaped), text.as_str());
    }
}
