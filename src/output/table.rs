//! kubectl-style aligned tables: upper-case headers, columns separated by three spaces,
//! `<none>` for unknown values, optional colour per cell.

use std::borrow::Cow;

use crate::escape::escape;

/// A colour hint for a cell; rendered only when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
}

impl Tone {
    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("\x1b[32m"),
            Tone::Warn => Some("\x1b[33m"),
            Tone::Bad => Some("\x1b[1;31m"),
            Tone::Dim => Some("\x1b[2m"),
        }
    }
}

/// The placeholder kubectl prints for an unknown value.
pub const NONE: &str = "<none>";

#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Tone)>>,
}

impl Table {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(headers: I) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Tone)>) {
        self.rows.push(cells);
    }

    pub fn plain_row<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, cells: I) {
        self.rows
            .push(cells.into_iter().map(|c| (c.into(), Tone::Plain)).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Render with three spaces between columns; trailing spaces trimmed. Every cell is
    /// [`escape`]d: cells hold names from the cluster, files and kernel logs.
    pub fn render(&self, colour: bool) -> String {
        let n = self.headers.len();
        let headers: Vec<Cow<str>> = self.headers.iter().map(|h| escape(h)).collect();
        let rows: Vec<Vec<(Cow<str>, Tone)>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|(c, t)| (escape(c), *t)).collect())
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (i, (c, _)) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(&str, Tone)>, out: &mut String| {
            let mut s = String::new();
            for (i, (c, tone)) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                match tone.ansi().filter(|_| colour) {
                    Some(code) => {
                        s.push_str(code);
                        s.push_str(c);
                        s.push_str("\x1b[0m");
                    }
                    None => s.push_str(c),
                }
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad + 3));
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(
            headers.iter().map(|h| (h.as_ref(), Tone::Plain)).collect(),
            &mut out,
        );
        for r in &rows {
            let mut cells: Vec<(&str, Tone)> = r.iter().map(|(c, t)| (c.as_ref(), *t)).collect();
            cells.resize(n, ("", Tone::Plain));
            line(cells, &mut out);
        }
        out
    }
}

/// Whether to colour output written to stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn colour_for_stdout() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_like_kubectl() {
        let mut t = Table::new(["NAME", "RISK", "X"]);
        t.row(vec![
            ("vm-a".into(), Tone::Plain),
            ("ok".into(), Tone::Good),
            ("1".into(), Tone::Plain),
        ]);
        t.row(vec![
            ("b".into(), Tone::Plain),
            ("critical".into(), Tone::Bad),
            (NONE.into(), Tone::Plain),
        ]);
        assert_eq!(
            t.render(false),
            "NAME   RISK       X\nvm-a   ok         1\nb      critical   <none>\n"
        );
        assert!(t.render(true).contains("\x1b[1;31mcritical\x1b[0m"));
    }

    #[test]
    fn cells_are_escaped_before_alignment_and_colour() {
        let mut t = Table::new(["NAME", "RISK"]);
        t.row(vec![
            ("vm\x1b[2J".into(), Tone::Plain),
            ("bad\u{9b}".into(), Tone::Bad),
        ]);
        t.plain_row(["x", "y"]);
        let plain = t.render(false);
        assert_eq!(
            plain,
            "NAME        RISK\nvm\\x1b[2J   bad\\u{9b}\nx           y\n"
        );
        let coloured = t.render(true);
        assert!(
            coloured.contains("\x1b[1;31mbad\\u{9b}\x1b[0m"),
            "{coloured:?}"
        );
        assert!(!coloured.contains("\x1b[2J") && !coloured.contains('\u{9b}'));
    }
}
