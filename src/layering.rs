//! The layering of `src/`, checked: every `crate::…` and `super::…` path in every file is
//! resolved to the file it names, and the test fails on an edge between folders that the data
//! flow forbids (`units` ← `parse`/`model` ← `cluster`/`node` ← `session` ← `cli`/`tui`) or on a
//! circle of imports between files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Folders and what they must not use.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "units",
        &[
            "cli", "cluster", "fix", "model", "node", "output", "parse", "session", "sim", "tui",
        ],
    ),
    (
        "model",
        &[
            "cli", "cluster", "fix", "node", "output", "parse", "session", "sim", "tui",
        ],
    ),
    (
        "parse",
        &[
            "cli", "cluster", "fix", "node", "output", "session", "sim", "tui",
        ],
    ),
    (
        "cluster",
        &["cli", "fix", "output", "session", "sim", "tui"],
    ),
    ("node", &["cli", "fix", "output", "session", "sim", "tui"]),
    (
        "output",
        &["cli", "cluster", "fix", "node", "session", "sim", "tui"],
    ),
    ("fix", &["cli", "output", "session", "sim", "tui"]),
    ("session", &["cli", "tui"]),
    ("tui", &["cli", "cluster", "fix", "node", "sim"]),
    ("cli", &["tui"]),
];

/// Files left out of the circle check: the simulator, a test instrument on its way into its own
/// crate.
const CIRCLES_IGNORED: &[&str] = &["sim"];

/// Every `.rs` file under `src/`, by path relative to it.
fn sources(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(rel.replace('\\', "/"), text);
            }
        }
    }
    out
}

/// The module path of a file: `tui/view/mod.rs` → [tui, view]; lib.rs and main.rs → [].
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] || parts == ["main"] {
        parts.pop();
    }
    parts
}

/// The code of a file with comments, strings and character literals blanked out (so a path in
/// a comment or a string is not a use, and braces in them do not count).
fn code_of(text: &str) -> Vec<char> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::with_capacity(c.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        let ident_before = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                out.push(blank(c[i]));
                i += 1;
            }
            out.extend([' ', ' ']);
            i += 2;
        } else if c[i] == 'r' && !ident_before && matches!(next, Some('#') | Some('"')) {
            // r"…", r#"…"#: ends at a quote followed by as many hashes.
            let mut hashes = 0;
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            let ends = |k: usize| c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'));
            while j < c.len() && !ends(j) {
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            out.extend(c[i..end].iter().map(|&ch| blank(ch)));
            i = end;
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            out.extend([' ', ' ', ' ']);
            i += 3;
        } else if c[i] == '\'' && next == Some('\\') {
            let end = (i + 2..c.len())
                .find(|&k| c[k] == '\'')
                .unwrap_or(c.len() - 1);
            out.extend(c[i..=end].iter().map(|_| ' '));
            i = end + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths written at `at`: `a::b::c`, or `a::{b, c::{d, e}}` expanded.
fn paths_at(code: &[char], mut at: usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        let start = at;
        while at < code.len() && is_ident(code[at]) {
            at += 1;
        }
        if at > start {
            prefix.push(code[start..at].iter().collect::<String>());
        }
        if code.get(at) == Some(&':') && code.get(at + 1) == Some(&':') {
            at += 2;
            if code.get(at) == Some(&'{') {
                return group_at(code, at + 1)
                    .into_iter()
                    .map(|tail| prefix.iter().cloned().chain(tail).collect())
                    .collect();
            }
            continue;
        }
        return vec![prefix];
    }
}

/// The paths of a `{…}` group starting after its brace.
fn group_at(code: &[char], mut at: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = at;
    while at < code.len() {
        match code[at] {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.extend(paths_at(code, skip_space(code, item_start)));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.extend(paths_at(code, skip_space(code, item_start)));
                item_start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    out.into_iter()
        .map(|p| p.into_iter().filter(|s| s != "self").collect())
        .collect()
}

fn skip_space(code: &[char], mut at: usize) -> usize {
    while at < code.len() && code[at].is_whitespace() {
        at += 1;
    }
    at
}

/// What a use is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The product's code.
    Code,
    /// A `pub use` re-export: a module's façade, not something its code depends on.
    Reexport,
    /// Test code (an inline `mod tests`, a file of a `tests` folder or `tests.rs`).
    Test,
}

/// The files each file uses through `crate::` and `super::` paths and paths through its child
/// modules, of the kinds in `kinds`.
fn edges(files: &BTreeMap<String, String>, kinds: &[Kind]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, &String> = files.keys().map(|f| (module_of(f), f)).collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).copied())
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in files {
        for full in uses_in(file, text, kinds) {
            if let Some(target) = resolve(&full).filter(|t| *t != file) {
                out.entry(file.clone()).or_default().insert(target.clone());
            }
        }
    }
    out
}

/// The module paths `file` uses (unresolved), of the kinds in `kinds`.
fn uses_in(file: &str, text: &str, kinds: &[Kind]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code = code_of(text);
    let file_module = module_of(file);
    let children = child_modules(&code);
    let test_file = file.contains("/tests/") || file.ends_with("/tests.rs");
    let mut inline = InlineModules::default();
    let mut at = 0;
    while at < code.len() {
        let word_start = at == 0 || !is_ident(code[at - 1]);
        inline.follow(&code, at, word_start);
        let after_path = at >= 2 && code[at - 1] == ':' && code[at - 2] == ':';
        let rest: String = code[at..(at + 7).min(code.len())].iter().collect();
        let anchor = ["crate::", "super::"]
            .into_iter()
            .find(|a| word_start && rest == *a);
        let child = children
            .iter()
            .find(|c| word_start && !after_path && starts_path(&code, at, c));
        let wanted = (anchor.is_some() || child.is_some())
            && kinds.contains(&kind_at(&code, at, test_file || inline.in_test()));
        match (anchor, child) {
            _ if !wanted => at += 1,
            (Some(anchor), _) => {
                let here: Vec<String> = file_module.iter().cloned().chain(inline.names()).collect();
                out.extend(anchored_paths(&code, at, anchor, &here));
                at += anchor.len();
            }
            (None, Some(child)) => {
                // A path through one of the file's own child modules (`detail::draw`).
                for path in paths_at(&code, at) {
                    out.push(file_module.iter().cloned().chain(path).collect());
                }
                at += child.len();
            }
            (None, None) => at += 1,
        }
    }
    out
}

/// What the use at `code[at]` is part of: test code (`in_test`), a re-export, or code.
fn kind_at(code: &[char], at: usize, in_test: bool) -> Kind {
    if in_test {
        Kind::Test
    } else if statement_before(code, at).starts_with("pub use")
        || statement_before(code, at).starts_with("pub(crate) use")
    {
        Kind::Reexport
    } else {
        Kind::Code
    }
}

/// Inline modules (`mod tests { … }`) open at a brace depth: `super` inside one is the
/// file's own module.
#[derive(Default)]
struct InlineModules {
    /// The open ones, outermost first: name, the depth it opened at, whether `#[cfg(test)]`.
    open: Vec<(String, usize, bool)>,
    depth: usize,
}

impl InlineModules {
    /// Follow the braces and the inline modules opening at `code[at]`.
    fn follow(&mut self, code: &[char], at: usize, word_start: bool) {
        match code[at] {
            '{' => self.depth += 1,
            '}' => {
                self.depth -= 1;
                if self.open.last().is_some_and(|(_, d, _)| *d == self.depth) {
                    self.open.pop();
                }
            }
            _ => {}
        }
        if word_start {
            if let Some(name) = inline_module_at(code, at) {
                self.open.push((name, self.depth, is_cfg_test(code, at)));
            }
        }
    }

    /// Inside a `#[cfg(test)]` inline module.
    fn in_test(&self) -> bool {
        self.open.iter().any(|(_, _, test)| *test)
    }

    /// The names of the open inline modules, outermost first.
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.open.iter().map(|(n, _, _)| n.clone())
    }
}

/// The full module paths of the `crate::` or `super::` (`anchor`) paths at `code[at]`, in the
/// module `here`.
fn anchored_paths(code: &[char], at: usize, anchor: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for path in paths_at(code, at) {
        let mut full: Vec<String> = Vec::new();
        let mut segs = path.iter().peekable();
        if anchor == "crate::" {
            segs.next();
        } else {
            full = here.to_vec();
            // `super` from `a/b.rs` (module a::b) is `a`; from `a/mod.rs` (module a)
            // it is the crate.
            while segs.peek().is_some_and(|s| *s == "super") {
                segs.next();
                full.pop();
            }
        }
        full.extend(segs.cloned());
        out.push(full);
    }
    out
}

/// The modules a file declares in files of their own (`mod NAME;`).
fn child_modules(code: &[char]) -> Vec<String> {
    let text: String = code.iter().collect();
    text.split(';')
        .filter_map(|stmt| {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mod")?;
            (words.len() == at + 2).then(|| words[at + 1].to_string())
        })
        .collect()
}

/// Whether `name::` is written at `at`.
fn starts_path(code: &[char], at: usize, name: &str) -> bool {
    let n = name.chars().count();
    code.len() >= at + n + 2
        && code[at..at + n].iter().copied().eq(name.chars())
        && code[at + n] == ':'
        && code[at + n + 1] == ':'
}

/// The statement `at` is in, from its start (after the last `;`, `{` or `}`), attributes and
/// leading space removed.
fn statement_before(code: &[char], at: usize) -> String {
    let start = (0..at)
        .rev()
        .find(|&i| matches!(code[i], ';' | '{' | '}'))
        .map_or(0, |i| i + 1);
    let text: String = code[start..at].iter().collect();
    let mut rest = text.trim_start();
    while rest.starts_with("#[") {
        rest = rest.find(']').map_or("", |i| rest[i + 1..].trim_start());
    }
    rest.to_string()
}

/// Whether the item at `at` carries `#[cfg(test)]`.
fn is_cfg_test(code: &[char], at: usize) -> bool {
    let start = (0..at)
        .rev()
        .find(|&i| matches!(code[i], ';' | '{' | '}'))
        .map_or(0, |i| i + 1);
    let text: String = code[start..at].iter().collect();
    text.replace(' ', "").contains("#[cfg(test)]")
}

/// `mod NAME {` at `at`: the name of an inline module.
fn inline_module_at(code: &[char], at: usize) -> Option<String> {
    let word: String = code[at..(at + 4).min(code.len())].iter().collect();
    if word != "mod " {
        return None;
    }
    let start = skip_space(code, at + 4);
    let mut end = start;
    while end < code.len() && is_ident(code[end]) {
        end += 1;
    }
    (end > start && code.get(skip_space(code, end)) == Some(&'{'))
        .then(|| code[start..end].iter().collect())
}

fn folder(file: &str) -> &str {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_forbidden_edge_between_folders() {
    let edges = edges(&sources(&src()), &[Kind::Code, Kind::Reexport, Kind::Test]);
    let mut bad = Vec::new();
    for (from, targets) in &edges {
        let Some((_, banned)) = FORBIDDEN.iter().find(|(f, _)| *f == folder(from)) else {
            continue;
        };
        for to in targets {
            if banned.contains(&folder(to)) {
                bad.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "forbidden uses between folders:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_circle_of_imports_between_files() {
    let mut edges = edges(&sources(&src()), &[Kind::Code]);
    edges.retain(|f, _| !CIRCLES_IGNORED.contains(&folder(f)));
    let circles = circles(&edges);
    assert!(
        circles.is_empty(),
        "files that use each other (in circles):\n{}",
        circles
            .iter()
            .map(|c| c.join(" → "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The strongly connected groups of more than one file (Tarjan's algorithm).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn the_checker_sees_uses() {
    let files: BTreeMap<String, String> = [
        ("tui/app.rs", "use crate::{cli::args::X, model::{a, b}};"),
        (
            "tui/view/mod.rs",
            "use super::super::cli::list; // crate::fix::x\nconst S: &str = \"crate::fix::x {\";",
        ),
        (
            "cli/args.rs",
            "pub struct X; fn f() { crate::tui::app::g(); }",
        ),
        ("cli/list.rs", "mod tests { use super::X; }"),
        (
            "model/mod.rs",
            "pub mod a;\npub mod b;\nfn f() { a::g(); x::a::h(); }",
        ),
        ("model/a.rs", "use super::b::Y;\npub use super::c::W;"),
        (
            "model/c.rs",
            "#[cfg(test)]\nmod tests { use crate::model::a::Y; }",
        ),
        ("model/b.rs", "use super::a::Z;"),
        ("fix/x.rs", ""),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let e = edges(&files, &[Kind::Code, Kind::Reexport]);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        e["tui/app.rs"],
        set(&["cli/args.rs", "model/a.rs", "model/b.rs"])
    );
    assert_eq!(
        e["tui/view/mod.rs"],
        set(&["cli/list.rs"]),
        "comments are not uses"
    );
    assert_eq!(e["cli/args.rs"], set(&["tui/app.rs"]));
    assert!(
        !e.contains_key("cli/list.rs"),
        "super in an inline module is the file's own"
    );
    assert_eq!(
        e["model/mod.rs"],
        set(&["model/a.rs"]),
        "a path through a child module"
    );
    let c = circles(&e);
    assert!(c.contains(&vec!["cli/args.rs".to_string(), "tui/app.rs".to_string()]));
    assert!(c.contains(&vec!["model/a.rs".to_string(), "model/b.rs".to_string()]));
}
