//! The one filter between untrusted text and a terminal.
//!
//! Names, namespaces, node names, process names (a container picks its own `comm`), annotation
//! values and kernel-log lines come from whoever controls a cluster object, a file or a process.
//! Written raw to a terminal, an ESC or CSI in them can clear the screen, hide the rest of a fix
//! plan, retitle the window or move the cursor. Every such string passes through [`escape`]
//! before it reaches stdout or stderr as text: C0 controls (including newline and tab), DEL, C1
//! controls (U+0080–U+009F, e.g. the one-character CSI U+009B) and the Unicode bidirectional
//! overrides (which reorder what the reader sees) are shown as `\x1b`, `\x7f`, `\u{9b}`; every
//! other character, printable Unicode included, is kept. JSON and YAML output is not filtered:
//! it stays exact, and its own quoting applies.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal raw.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The Unicode bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `s` holds a character that must not reach a terminal raw.
pub fn has_unsafe(s: &str) -> bool {
    s.chars().any(is_unsafe)
}

/// `s` with every control character shown escaped (`\x1b`, `\u{9b}`); borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    if !is_unsafe(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// [`escape`] for `format!` arguments: `format!("pod {}", Shown(name))`.
#[derive(Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// Text of several lines that we composed (a plan, a report) but that quotes untrusted values:
/// the line breaks stay, every other control character is escaped. Prefer [`escape`] on each
/// value where the values are at hand (a value's own newline would otherwise start a line).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_escaped() {
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("bel\x07"), "bel\\x07");
        assert_eq!(escape("del\x7f"), "del\\x7f");
        assert_eq!(escape("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(escape("nl\nt\tab"), "nl\\x0at\\x09ab");
        assert_eq!(escape("rtl\u{202e}gnp.exe"), "rtl\\u{202e}gnp.exe");
        assert_eq!(escape("\0"), "\\x00");
    }

    #[test]
    fn printable_text_is_kept_and_borrowed() {
        for s in ["vm-01", "déjà-vu", "名前", "emoji 🦀", "back\\slash", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape(s), s);
        }
        assert_eq!(Shown("x\x1by").to_string(), "x\\x1by");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(escape_lines("a\nb\x1b[8mc\n"), "a\nb\\x1b[8mc\n");
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn no_control_character_survives(s in "\\PC*|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z]*") {
            let e = escape(&s);
            proptest::prop_assert!(!e.chars().any(is_unsafe), "{e:?}");
            let l = escape_lines(&s);
            proptest::prop_assert!(!l.chars().any(|c| c != '\n' && is_unsafe(c)), "{l:?}");
        }
    }
}
