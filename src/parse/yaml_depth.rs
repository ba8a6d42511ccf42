//! How deep a YAML text nests flow collections (`[…]`, `{…}`), found in one linear pass before
//! the YAML parser sees it.
//!
//! libyaml (under serde_yaml) keeps state per open flow level and revisits it for every token:
//! `a: [[[[…` of 80 KB took 15 s, 200 KB over 20 s, before any recursion limit applies (the
//! whole document is scanned into events first). Kubernetes objects nest a few levels; no real
//! manifest comes near [`MAX_FLOW_DEPTH`].
//!
//! The scan follows YAML's lexical rules closely enough that brackets inside quoted scalars,
//! block scalars (`|`, `>`) and comments are not counted, and counts every other one.

/// Flow collections nested deeper than this are refused. serde_yaml refuses more than 128
/// nested collections of any style anyway; this stops flow nesting before libyaml scans it.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Where a text first nests flow collections deeper than `max`: its 1-based line.
pub fn too_deep(text: &str, max: usize) -> Option<usize> {
    let mut scan = Scan::default();
    for (i, line) in text.lines().enumerate() {
        if scan.line(line, max) {
            return Some(i + 1);
        }
    }
    None
}

#[derive(Default)]
struct Scan {
    depth: usize,
    quote: Option<u8>,
    /// Inside a block scalar: lines indented more than this belong to it.
    block_indent: Option<usize>,
}

impl Scan {
    /// Scan one line; true once the depth passes `max`.
    fn line(&mut self, line: &str, max: usize) -> bool {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|b| **b == b' ').count();
        if let Some(parent) = self.block_indent {
            if indent > parent || line.trim().is_empty() {
                return false;
            }
            self.block_indent = None;
        }
        // Where a scalar may begin: a quote or block indicator only means one there (`don't`
        // and `a: x |` are plain text). Anything unsure counts its brackets: it can only
        // refuse more, never hide nesting from this scan.
        let mut scalar_start = true;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if let Some(q) = self.quote {
                i += self.in_quote(q, &bytes[i..]);
                continue;
            }
            let next_blank = bytes.get(i + 1).is_none_or(|c| matches!(c, b' ' | b'\t'));
            match b {
                b' ' | b'\t' => {}
                b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => break,
                b'"' | b'\'' if scalar_start => self.quote = Some(b),
                b'|' | b'>' if scalar_start && self.depth == 0 => {
                    let header = line[i + 1..].split(" #").next().unwrap_or_default().trim();
                    if header
                        .bytes()
                        .all(|c| matches!(c, b'-' | b'+' | b'1'..=b'9'))
                    {
                        self.block_indent = Some(node_column(bytes, indent));
                        return false;
                    }
                }
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth > max {
                        return true;
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            scalar_start = match b {
                b' ' | b'\t' => scalar_start,
                b'[' | b'{' | b',' => true,
                b':' | b'-' | b'?' => next_blank,
                _ => false,
            };
            i += 1;
        }
        false
    }

    /// Consume bytes inside a quoted scalar; returns how many.
    fn in_quote(&mut self, q: u8, rest: &[u8]) -> usize {
        match (q, rest) {
            (b'"', [b'\\', _, ..]) => 2,
            (b'\'', [b'\'', b'\'', ..]) => 2,
            (_, [c, ..]) if *c == q => {
                self.quote = None;
                1
            }
            _ => 1,
        }
    }
}

/// The column of the node a line's block scalar belongs to: past the indentation and any
/// `- ` entries (`- key: |` belongs to `key`, whose text is indented past column 2).
fn node_column(bytes: &[u8], indent: usize) -> usize {
    let mut col = indent;
    while bytes.get(col) == Some(&b'-') && bytes.get(col + 1) == Some(&b' ') {
        col += 1;
        while bytes.get(col) == Some(&b' ') {
            col += 1;
        }
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_manifests_are_shallow() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    a: '[{\"x\": [1]}'\n    b: \"[[[[\"\n    c: |\n      [[[[[[\n      {{{{\n  labels: {app: x, tier: [a, b]}\nspec:\n  containers: [{name: c, args: [\"[\", \"{\"]}]\n  d: don't [\n# [[[[[ a comment\n";
        let mut scan = Scan::default();
        for line in text.lines() {
            assert!(!scan.line(line, 3), "{line}");
        }
        // `don't [` is a plain scalar holding a bracket: counted, one level.
        assert_eq!(scan.depth, 1);
        assert_eq!(too_deep(text, 3), None);
    }

    #[test]
    fn deep_flow_nesting_is_found_in_linear_time() {
        let deep = format!("a: {}", "[".repeat(1 << 20));
        let started = std::time::Instant::now();
        assert_eq!(too_deep(&deep, MAX_FLOW_DEPTH), Some(1));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let many_lines = "- [\n".repeat(200);
        assert_eq!(too_deep(&many_lines, MAX_FLOW_DEPTH), Some(129));
        let ok = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(&ok, MAX_FLOW_DEPTH), None);
    }

    #[test]
    fn quotes_and_block_scalars_do_not_hide_brackets_after_them() {
        // Inside a sequence entry, a block scalar ends at its key's column.
        let text = format!("- a: |\n    \"\n  b: {}", "[".repeat(200));
        assert_eq!(too_deep(&text, MAX_FLOW_DEPTH), Some(3));
        // A block scalar ends where the indentation returns.
        let text = format!("a: |\n  \"\nb: {}", "[".repeat(200));
        assert_eq!(too_deep(&text, MAX_FLOW_DEPTH), Some(3));
        // A quote closes, escapes and all.
        let text = format!("a: \"x\\\"y\"\nb: 'it''s'\nc: {}", "{".repeat(200));
        assert_eq!(too_deep(&text, MAX_FLOW_DEPTH), Some(3));
        // A quote inside a plain scalar starts nothing (libyaml reads `x 'y` as text).
        let text = format!("a: x 'y\nb: {}", "[".repeat(200));
        assert_eq!(too_deep(&text, MAX_FLOW_DEPTH), Some(2));
        // Nor does a bar at the end of a plain scalar start a block scalar.
        let text = format!("a: x |\nb: {}", "[".repeat(200));
        assert_eq!(too_deep(&text, MAX_FLOW_DEPTH), Some(2));
    }
}
