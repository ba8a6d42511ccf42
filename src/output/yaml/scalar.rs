//! Scalars: which style a string asks for (`serde_yaml`'s rule) and which styles libyaml allows
//! for it (`yaml_emitter_analyze_scalar`), then the style it gets
//! (`yaml_emitter_select_scalar_style`).

/// A scalar's presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Let the emitter choose (plain when it may).
    Any,
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// The style `serde_yaml` asks for a string: literal when it holds a line feed; single-quoted
/// when, written plain, it would read back as null, a bool or a number (or is digits with a
/// leading zero); otherwise whatever the emitter allows.
pub fn requested_style(v: &str) -> Style {
    if v.contains('\n') {
        Style::Literal
    } else if reads_as_non_string(v) || digits_but_not_number(v) {
        Style::SingleQuoted
    } else {
        Style::Any
    }
}

fn reads_as_non_string(v: &str) -> bool {
    v.is_empty()
        || matches!(
            v,
            "null" | "Null" | "NULL" | "~" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        )
        || reads_as_int(v)
        || (!digits_but_not_number(v) && reads_as_float(v))
}

/// Leading zeros followed by digits: a string in YAML 1.2.
fn digits_but_not_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `serde_yaml`'s integer reading: optional sign, `0x`/`0o`/`0b` or decimal, up to 128 bits.
fn reads_as_int(v: &str) -> bool {
    unsigned(v) || negative(v)
}

fn radix_digits(rest: &str, radix: u32) -> bool {
    !rest.starts_with(['+', '-']) && u128::from_str_radix(rest, radix).is_ok()
}

fn unsigned(v: &str) -> bool {
    let u = v.strip_prefix('+').unwrap_or(v);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = u.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return false;
            }
            if radix_digits(rest, radix) {
                return true;
            }
        }
    }
    !u.starts_with(['+', '-']) && !digits_but_not_number(v) && u.parse::<u128>().is_ok()
}

fn negative(v: &str) -> bool {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = v.strip_prefix(prefix) {
            if i128::from_str_radix(&format!("-{rest}"), radix).is_ok() {
                return true;
            }
        }
    }
    !digits_but_not_number(v) && v.parse::<i128>().is_ok()
}

fn reads_as_float(v: &str) -> bool {
    let u = match v.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return false,
        Some(rest) => rest,
        None => v,
    };
    matches!(u, ".inf" | ".Inf" | ".INF")
        || matches!(v, "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN")
        || u.parse::<f64>().is_ok_and(f64::is_finite)
}

/// What libyaml's analysis allows for a scalar.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub multiline: bool,
    pub block_plain: bool,
    pub single_quoted: bool,
    pub block: bool,
}

/// libyaml's printable set (its unicode output on).
pub fn printable(c: char) -> bool {
    matches!(c, '\n' | '\x20'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{10000}'..)
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
}

pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn blank_or_end(c: Option<char>) -> bool {
    matches!(c, None | Some(' ' | '\t' | '\0')) || c.is_some_and(is_break)
}

/// Flags about the whole scalar gathered in one pass, as `yaml_emitter_analyze_scalar` does.
#[derive(Default)]
struct Scan {
    block_indicators: bool,
    line_breaks: bool,
    special: bool,
    leading_space_or_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
}

fn scan(v: &str) -> Scan {
    let mut s = Scan {
        block_indicators: v.starts_with("---") || v.starts_with("..."),
        ..Scan::default()
    };
    let chars: Vec<char> = v.chars().collect();
    let (mut preceded_by_ws, mut prev_space, mut prev_break) = (true, false, false);
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = blank_or_end(chars.get(i + 1).copied());
        let last = i + 1 == chars.len();
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) || (c == '-' && followed_by_ws) {
                s.block_indicators = true;
            }
            if (c == '?' || c == ':') && followed_by_ws {
                s.block_indicators = true;
            }
        } else if (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws) {
            s.block_indicators = true;
        }
        s.special |= !printable(c);
        s.line_breaks |= is_break(c);
        if c == ' ' {
            s.leading_space_or_break |= i == 0;
            s.trailing_space |= last;
            s.break_space |= prev_break;
            (prev_space, prev_break) = (true, false);
        } else if is_break(c) {
            s.leading_space_or_break |= i == 0;
            s.trailing_break |= last;
            s.space_break |= prev_space;
            (prev_space, prev_break) = (false, true);
        } else {
            (prev_space, prev_break) = (false, false);
        }
        preceded_by_ws = blank_or_end(Some(c));
    }
    s
}

/// `yaml_emitter_analyze_scalar` for block context (flow context is never used).
pub fn analyze(v: &str) -> Allowed {
    if v.is_empty() {
        return Allowed {
            multiline: false,
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let s = scan(v);
    let mut a = Allowed {
        multiline: s.line_breaks,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if s.leading_space_or_break || s.trailing_space || s.trailing_break || s.line_breaks {
        a.block_plain = false;
    }
    if s.trailing_space {
        a.block = false;
    }
    if s.break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if s.space_break || s.special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if s.block_indicators {
        a.block_plain = false;
    }
    a
}

/// `yaml_emitter_select_scalar_style` in block context.
pub fn select(requested: Style, v: &str, a: &Allowed, simple_key: bool) -> Style {
    let mut style = if requested == Style::Any {
        Style::Plain
    } else {
        requested
    };
    if simple_key && a.multiline {
        style = Style::DoubleQuoted;
    }
    if style == Style::Plain && (!a.block_plain || (v.is_empty() && simple_key)) {
        style = Style::SingleQuoted;
    }
    if style == Style::SingleQuoted && !a.single_quoted {
        style = Style::DoubleQuoted;
    }
    if style == Style::Literal && (!a.block || simple_key) {
        style = Style::DoubleQuoted;
    }
    style
}

/// A character of a double-quoted scalar that libyaml writes as an escape, and the escape.
pub fn double_quoted_escape(c: char) -> Option<String> {
    if printable(c) && c != '\u{feff}' && !is_break(c) && c != '"' && c != '\\' {
        return None;
    }
    let short = match c {
        '\0' => Some('0'),
        '\x07' => Some('a'),
        '\x08' => Some('b'),
        '\t' => Some('t'),
        '\n' => Some('n'),
        '\x0b' => Some('v'),
        '\x0c' => Some('f'),
        '\r' => Some('r'),
        '\x1b' => Some('e'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        '\u{85}' => Some('N'),
        '\u{a0}' => Some('_'),
        '\u{2028}' => Some('L'),
        '\u{2029}' => Some('P'),
        _ => None,
    };
    Some(match (short, u32::from(c)) {
        (Some(s), _) => format!("\\{s}"),
        (None, n) if n <= 0xff => format!("\\x{n:02X}"),
        (None, n) if n <= 0xffff => format!("\\u{n:04X}"),
        (None, n) => format!("\\U{n:08X}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_read_as_other_types_ask_for_quotes() {
        for v in [
            "", "null", "~", "True", "12", "-3", "0x1F", "0o17", "1.5", ".inf", "1e3", "007",
        ] {
            assert_eq!(requested_style(v), Style::SingleQuoted, "{v:?}");
        }
        for v in ["yes", "on", "1_000", "0x", "1.2.3", "v1.3.0", "100Mi", "-"] {
            assert_eq!(requested_style(v), Style::Any, "{v:?}");
        }
        assert_eq!(requested_style("a\nb"), Style::Literal);
    }

    #[test]
    fn indicators_and_whitespace_rule_out_plain() {
        for v in [
            "- a", "a: b", "#x", "x #y", "@a", " lead", "trail ", "---", "? x", "[a",
        ] {
            assert!(!analyze(v).block_plain, "{v:?}");
        }
        for v in ["a-b", "a:b", "a#b", "-a", "http://x:1/y", "default/vm-1"] {
            assert!(analyze(v).block_plain, "{v:?}");
        }
        assert!(!analyze("tab\there").single_quoted);
        assert_eq!(double_quoted_escape('\t').as_deref(), Some("\\t"));
        assert_eq!(double_quoted_escape('\u{7f}').as_deref(), Some("\\x7F"));
        assert_eq!(double_quoted_escape('é'), None);
    }
}
