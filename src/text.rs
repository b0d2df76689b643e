//! Text on its way to a terminal. Product names, file names, user names and error messages can
//! come from anyone's CSV or database; an escape sequence in them would run in the user's
//! terminal (set the clipboard, clear the screen, fake output). [`sanitize`] is the one gate
//! every front end passes such text through; [`truncate`] shortens it for a column.

use std::borrow::Cow;

/// True for characters that must never reach a terminal as themselves: C0 and C1 controls
/// (ESC, BEL, CSI ...), DEL, and the bidirectional overrides that reorder what is shown.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The URL if a terminal may be handed it as a hyperlink target (OSC 8): `http` or `https`,
/// printable ASCII only (so it cannot end the escape sequence early), at most 2,000 bytes
/// (terminals drop longer targets). Anything else is shown as text and never linked.
pub fn link_target(url: &str) -> Option<&str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    (web && url.len() <= 2000 && url.bytes().all(|b| (b'!'..=b'~').contains(&b))).then_some(url)
}

/// The text with every unsafe character shown as a visible escape (`\u{1b}`), on one line.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_safe(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`sanitize`], but keeps line breaks and tabs: for multi-line messages and tables.
pub fn sanitize_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' || c == '\t' {
            out.push(c);
        } else {
            push_safe(&mut out, c);
        }
    }
    Cow::Owned(out)
}

fn push_safe(out: &mut String, c: char) {
    if is_unsafe(c) {
        out.push_str(&format!("\\u{{{:x}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// Columns `s` takes in a terminal: wide (CJK, full-width, most emoji) characters take two,
/// combining marks none.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Shortens `s` to at most `max` terminal columns, ending in an ellipsis when shortened. Text
/// is measured in columns, not characters, so a Japanese or full-width name lines up with the
/// columns after it.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// `s` padded with spaces to `cols` terminal columns (wide characters count twice).
pub fn pad(s: &str, cols: usize) -> String {
    let mut out = s.to_string();
    out.push_str(&" ".repeat(cols.saturating_sub(width(s))));
    out
}

/// At most `max_chars` characters of `s`, with "…" when shortened: for
/// echoing untrusted input (a 10 KB user name) in a one-line message.
pub fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    if s.chars().count() <= max_chars {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(truncate(s, max_chars))
    }
}

/// `%XX` escapes decoded (URLs' paths and passwords); invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_web_urls_become_link_targets() {
        assert_eq!(
            link_target("https://shop.example/p/1?x=2"),
            Some("https://shop.example/p/1?x=2")
        );
        assert_eq!(link_target("HTTP://shop.example/"), Some("HTTP://shop.example/"));
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://a.example/\x1b]8;;\x1b\\evil",
            "https://a.example/\u{7}",
            "https://a.example/with space",
            "https://a.example/é",
            "shop.example/p/1",
        ] {
            assert_eq!(link_target(bad), None, "{bad:?}");
        }
        assert_eq!(link_target(&format!("https://a.example/{}", "x".repeat(2000))), None);
    }

    #[test]
    fn escapes_controls_bidi_and_c1_but_keeps_text() {
        assert_eq!(sanitize("Red shoe é 靴"), "Red shoe é 靴");
        let evil = "\u{1b}]52;c;aGk=\u{7}\u{1b}[2Jm.jpg";
        let s = sanitize(evil);
        assert!(!s.chars().any(is_unsafe), "{s}");
        assert_eq!(s, "\\u{1b}]52;c;aGk=\\u{7}\\u{1b}[2Jm.jpg");
        assert_eq!(sanitize("a\u{9b}b\u{202e}c\nd"), "a\\u{9b}b\\u{202e}c\\u{a}d");
        assert_eq!(sanitize_lines("a\n\tb\u{1b}"), "a\n\tb\\u{1b}");
    }

    #[test]
    fn wide_names_are_cut_by_columns_with_an_ellipsis() {
        let jp = "ユニクロ メンズ ウルトラライトダウンジャケット";
        let t = truncate(jp, 20);
        assert!(width(&t) <= 20 && t.ends_with('…'), "{t} is {} columns", width(&t));
        assert!(t.starts_with("ユニクロ"));
        let fw = "Ｆｕｌｌｗｉｄｔｈ　Ｔシャツ　白";
        assert_eq!(width(fw), 2 * fw.chars().count());
        assert!(width(&truncate(fw, 9)) <= 9);
        assert_eq!(truncate("👗👗👗", 5), "👗👗…");
        assert_eq!(width(&pad("白", 4)), 4);
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn truncates_and_clips_by_characters() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("ab", 4), "ab");
        assert_eq!(clip("ééééé", 3), "éé…");
    }
}
