//! Text a policy produced is untrusted: it is bounded when it leaves the guest
//! ([`truncate`]) and escaped before it reaches a terminal ([`escape`], [`block`]).
//! JSON output and the audit log keep the exact (bounded) text.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must never reach a terminal raw: C0 controls except newline (so also
/// ESC, CR, TAB), DEL, C1 controls, Unicode bidi controls and line/paragraph separators.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every unsafe character shown escaped (`\x1b`, `\r`, `\u{202e}`); newlines stay.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// A JSON document with its C1, bidi and line-separator characters written as `\uXXXX`
/// (serde_json escapes only C0 controls): the same document to a parser, inert on a
/// terminal. Outside strings JSON is ASCII, so this only ever touches string contents.
pub fn inert_json(json: String) -> String {
    if !json.chars().any(|c| !c.is_ascii() && unsafe_char(c)) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if !c.is_ascii() && unsafe_char(c) {
            // Every such character is in the Basic Multilingual Plane: one \u escape.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` escaped on one line: newlines shown as `\n` (for table cells and one-line notes).
pub fn one_line(s: &str) -> String {
    escape(s).replace('\n', "\\n")
}

/// `s` escaped, with every line after the first prefixed by `indent` and `| `, so a
/// line the policy wrote can never start where the host's own lines start.
pub fn block(s: &str, indent: &str) -> String {
    let escaped = escape(s.trim_end_matches('\n'));
    let mut lines = escaped.split('\n');
    let mut out = lines.next().unwrap_or_default().to_string();
    for l in lines {
        out.push('\n');
        out.push_str(indent);
        out.push_str("| ");
        out.push_str(l);
    }
    out
}

/// `s` cut to at most `max` bytes (on a character boundary) with a visible
/// `…(truncated, N bytes)` marker, N being the original length; `s` itself when it fits.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.shrink_to_fit();
    let _ = write!(s, "…(truncated, {total} bytes)");
    s
}

/// `upgrade` → `Upgrade`.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped_newlines_kept() {
        let forged = "ok\x1b[2K\r\x1b[32mprecheck passed\x1b[0m\x1b]0;title\x07 \u{202e}gnp.exe\u{2066}\u{9b}\n2nd";
        let e = escape(forged);
        assert_eq!(
            e,
            "ok\\x1b[2K\\r\\x1b[32mprecheck passed\\x1b[0m\\x1b]0;title\\x07 \\u{202e}gnp.exe\\u{2066}\\u{9b}\n2nd"
        );
        assert!(matches!(escape("plain — ünïcode ✓"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
    }

    #[test]
    fn json_stays_the_same_document_without_raw_bidi() {
        let v = serde_json::json!({"m": "a\u{202e}b\u{9b}c\x1b\u{2028}é"});
        let text = inert_json(serde_json::to_string_pretty(&v).unwrap());
        assert!(text.is_ascii() || !text.chars().any(unsafe_char), "{text}");
        assert!(text.contains("a\\u202eb\\u009bc\\u001b\\u2028é"), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }

    #[test]
    fn continuation_lines_are_indented_and_marked() {
        assert_eq!(
            block("first\nprecheck passed\n\x1b[1mx\n", "    "),
            "first\n    | precheck passed\n    | \\x1b[1mx"
        );
        assert_eq!(block("one line", "  "), "one line");
    }

    #[test]
    fn truncation_is_visible_and_on_a_char_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(truncate("abcdef".into(), 3), "abc…(truncated, 6 bytes)");
        // 'é' is two bytes: cutting at 2 would split it.
        assert_eq!(truncate("aé…z".into(), 2), "a…(truncated, 7 bytes)");
        let big = "x".repeat(50 << 20);
        let t = truncate(big, 4096);
        assert!(t.len() < 4200 && t.ends_with("(truncated, 52428800 bytes)"));
    }
}
