//! The pictures of the dashboard in the documents are what `scripts/capture-screens.sh` captured
//! from the running demo, and they are current with the dashboard's layout:
//!
//! - docs/how-it-works.md shows the captured text pictures (`assets/dashboard.txt`,
//!   `assets/detail.txt`) exactly;
//! - the README's screenshot `assets/dashboard.png` was rendered from the committed colour
//!   capture `assets/dashboard.ansi` at the terminal size it names (both are written into the
//!   PNG), and that capture is the text picture with its colours;
//! - a fresh capture of the demo dashboard in tmux at that size has the same layout as the
//!   committed one: the same lines in the same places, the same column headings, key bar,
//!   as many demo VMs, and the same colours for the same risks. The figures are not compared: the demo's
//!   memory moves as it runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::tmux::Tmux;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The fenced block after `<!-- picture: FILE -->`, for each marker: (FILE, block text).
fn pictures(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line
            .strip_prefix("<!-- picture: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```text"),
            "{file}: no ```text block after the marker"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        out.push((file.to_string(), block.join("\n")));
    }
    out
}

#[test]
fn docs_show_the_captured_dashboard_and_detail_view() {
    let doc = read("docs/how-it-works.md");
    let found = pictures(&doc);
    let files: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, ["assets/dashboard.txt", "assets/detail.txt"]);
    for (file, block) in &found {
        let captured = read(file);
        assert_eq!(
            block.trim_end(),
            captured.trim_end(),
            "docs/how-it-works.md's picture differs from {file}: run scripts/capture-screens.sh"
        );
        assert!(!captured.contains('\x1b'), "{file} holds escape codes");
    }
    assert!(found[0].1.contains("memhold-vm") && found[0].1.contains("OOMS"));
    assert!(found[1].1.contains("OOM history") && found[1].1.contains("Memory model"));
}

// ---- the PNG ----

/// A PNG's chunks: (type, data), with each chunk's CRC checked.
fn png_chunks(png: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let body = &png[at + 4..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc32(body), crc, "chunk at byte {at}: bad CRC");
        out.push((
            String::from_utf8_lossy(&body[..4]).into_owned(),
            body[4..].to_vec(),
        ));
        at += 12 + len;
    }
    assert_eq!(at, png.len(), "trailing bytes after the last chunk");
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The PNG's uncompressed international text chunks: keyword → text.
fn itxt(chunks: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
    chunks
        .iter()
        .filter(|(kind, _)| kind == "iTXt")
        .map(|(_, data)| {
            let nul = data.iter().position(|&b| b == 0).unwrap();
            let key = String::from_utf8(data[..nul].to_vec()).unwrap();
            assert_eq!(&data[nul + 1..nul + 3], [0, 0], "{key}: compressed iTXt");
            // Empty language tag and translated keyword: two more NULs.
            let text = &data[nul + 5..];
            (key, String::from_utf8(text.to_vec()).unwrap())
        })
        .collect()
}

/// Cell size and margin of `scripts/screen-to-png.py` (CELL_W, CELL_H, PAD).
const CELL: (u32, u32) = (9, 18);
const PAD: u32 = 10;

/// The terminal size the PNG was captured at, from its `vmmem-terminal` chunk.
fn png_terminal() -> (u16, u16) {
    let png = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/dashboard.png"))
        .expect("assets/dashboard.png: run scripts/capture-screens.sh");
    let text = itxt(&png_chunks(&png));
    let size = &text["vmmem-terminal"];
    let (c, r) = size.split_once('x').unwrap();
    (c.parse().unwrap(), r.parse().unwrap())
}

/// A capture with its escape codes removed and trailing blanks cut, as the text pictures are.
fn plain(ansi: &str) -> String {
    let mut out = String::new();
    for line in ansi.lines() {
        out.push_str(strip_sgr(line).trim_end());
        out.push('\n');
    }
    out.trim_end().to_string()
}

fn strip_sgr(line: &str) -> String {
    styled(line).into_iter().map(|(c, _)| c).collect()
}

#[test]
fn readme_screenshot_is_the_committed_capture() {
    let readme = read("README.md");
    assert!(
        readme.contains("](assets/dashboard.png)"),
        "the README shows assets/dashboard.png"
    );
    let png =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/dashboard.png")).unwrap();
    let chunks = png_chunks(&png);
    assert_eq!(chunks[0].0, "IHDR");
    let width = u32::from_be_bytes(chunks[0].1[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(chunks[0].1[4..8].try_into().unwrap());
    let (cols, rows) = png_terminal();
    assert_eq!(
        (width, height),
        (
            u32::from(cols) * CELL.0 + 2 * PAD,
            u32::from(rows) * CELL.1 + 2 * PAD
        ),
        "the PNG is not the {cols}x{rows} terminal at {CELL:?} pixels a cell"
    );
    assert!(chunks.iter().any(|(k, d)| k == "IDAT" && !d.is_empty()));
    let text = itxt(&chunks);
    let ansi = read("assets/dashboard.ansi");
    assert_eq!(
        text["vmmem-capture"], ansi,
        "assets/dashboard.png was not rendered from assets/dashboard.ansi: run scripts/capture-screens.sh"
    );
    assert!(
        ansi.contains("\x1b["),
        "the capture has the terminal's colours"
    );
    assert_eq!(ansi.lines().count(), usize::from(rows));
    assert_eq!(
        plain(&ansi),
        read("assets/dashboard.txt").trim_end(),
        "the colour capture and the text picture are not the same screen"
    );
}

// ---- the layout of a fresh capture ----

/// The SGR state a character is drawn with, as text ("fg=2 bold").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sgr {
    fg: Option<String>,
    bg: Option<String>,
    flags: [bool; 5], // bold, dim, italic, underline, reverse
}

impl Sgr {
    fn apply(&mut self, params: &str) {
        let codes: Vec<u32> = params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Sgr::default(),
                c @ (1 | 2 | 3 | 4 | 7) => {
                    let at = [1, 2, 3, 4, 7].iter().position(|&x| x == c).unwrap();
                    self.flags[at] = true;
                }
                22 => (self.flags[0], self.flags[1]) = (false, false),
                23 => self.flags[2] = false,
                24 => self.flags[3] = false,
                27 => self.flags[4] = false,
                c @ (30..=37 | 90..=97) => self.fg = Some(c.to_string()),
                c @ (40..=47 | 100..=107) => self.bg = Some(c.to_string()),
                39 => self.fg = None,
                49 => self.bg = None,
                c @ (38 | 48) => {
                    let n = if codes.get(i + 1) == Some(&5) { 2 } else { 4 };
                    let value = codes[i + 1..(i + 1 + n).min(codes.len())]
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(";");
                    if c == 38 {
                        self.fg = Some(value);
                    } else {
                        self.bg = Some(value);
                    }
                    i += n;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// A line of a colour capture as (character, style) pairs.
fn styled(line: &str) -> Vec<(char, Sgr)> {
    let mut out = Vec::new();
    let mut sgr = Sgr::default();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if let Some(seq) = rest.strip_prefix("\x1b[") {
            let end = seq.find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':'));
            let end = end.expect("an unterminated escape sequence");
            if seq[end..].starts_with('m') {
                sgr.apply(&seq[..end]);
            }
            rest = &seq[end + 1..];
            continue;
        }
        out.push((c, sgr.clone()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// What a screen's layout is, figures left out.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    /// Each line that is not a VM row: its text with figures masked and blanks collapsed.
    lines: Vec<(usize, String)>,
    /// The column headings' and key bar's styles, one a run (widths vary with the figures).
    chrome_styles: Vec<Vec<Sgr>>,
    /// The VMs in the table.
    vms: Vec<String>,
    /// The lines the VM rows are on.
    row_lines: Vec<usize>,
}

fn mask(text: &str) -> String {
    let mut out = String::new();
    let mut in_figure = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_figure && c == '.') {
            if !in_figure {
                out.push('#');
            }
            in_figure = true;
        } else {
            in_figure = false;
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn layout(ansi: &str) -> (Layout, BTreeMap<String, Sgr>) {
    let lines: Vec<Vec<(char, Sgr)>> = ansi.lines().map(styled).collect();
    let text = |l: &Vec<(char, Sgr)>| -> String { l.iter().map(|(c, _)| *c).collect() };
    let header = lines
        .iter()
        .position(|l| text(l).trim_start().starts_with("NAMESPACE"))
        .expect("no column headings");
    let heading = text(&lines[header]);
    let risk_at = heading.find("RISK").expect("no RISK column");
    let (mut out, mut risks) = (
        Layout {
            lines: Vec::new(),
            chrome_styles: Vec::new(),
            vms: Vec::new(),
            row_lines: Vec::new(),
        },
        BTreeMap::new(),
    );
    let footer = lines
        .iter()
        .rposition(|l| !text(l).trim().is_empty())
        .unwrap();
    for (i, l) in lines.iter().enumerate() {
        let t = text(l);
        let words: Vec<&str> = t.split_whitespace().collect();
        let is_row = i > header && i < footer && words.len() > 3;
        if !is_row {
            out.lines.push((i, mask(&t)));
            continue;
        }
        out.row_lines.push(i);
        out.vms.push(format!("{}/{}", words[0], words[1]));
        // The risk word under the RISK heading, and its style.
        let cells: Vec<&(char, Sgr)> = l.iter().skip(risk_at.min(l.len())).collect();
        let word: String = cells
            .iter()
            .take_while(|(c, _)| !c.is_whitespace())
            .map(|(c, _)| *c)
            .collect();
        if let Some((_, style)) = cells.first() {
            risks.insert(word.trim_end_matches('*').to_string(), style.clone());
        }
    }
    for i in [header, footer] {
        let mut runs: Vec<Sgr> = lines[i].iter().map(|(_, s)| s.clone()).collect();
        runs.dedup();
        out.chrome_styles.push(runs);
    }
    out.vms.sort();
    (out, risks)
}

/// The demo's dashboard in tmux at `cols`x`rows` with colours, once every VM has live data.
fn fresh_capture(cols: u16, rows: u16) -> String {
    let bin = env!("CARGO_BIN_EXE_kubectl-vmmem");
    let socket = format!("vmmem-pictures-{}", std::process::id());
    let script = format!("{bin} top --demo --refresh 1s; sleep 30");
    let tmux = Tmux::start(
        socket,
        &script,
        (cols, rows),
        &[("NO_COLOR", ""), ("VMMEM_DEMO_SPEED", "4")],
        (Duration::from_secs(90), Duration::from_millis(200)),
    );
    tmux.wait_for("every demo VM with live data", |s| {
        s.contains("VMs: 23 ") && s.matches(" agent").count() >= 15
    });
    let ansi = tmux.tmux(&["capture-pane", "-e", "-p", "-t", "0"]);
    tmux.keys(&["q"]);
    ansi
}

#[test]
fn a_fresh_capture_of_the_demo_has_the_committed_layout() {
    let (cols, rows) = png_terminal();
    let committed = read("assets/dashboard.ansi");
    let fresh = fresh_capture(cols, rows);
    let (want, want_risks) = layout(&committed);
    let (got, got_risks) = layout(&fresh);
    let help = "the dashboard's layout changed: run scripts/capture-screens.sh";
    assert_eq!(got.lines, want.lines, "{help}\n{fresh}");
    // As many VM rows, each a demo VM: which ones fill the screen depends on the moment (rows are
    // sorted by headroom, and the demo's VMs fill up as it runs, so the capture script's later
    // moment shows others at the bottom than the first screen with live data does).
    assert_eq!(got.vms.len(), want.vms.len(), "{help}");
    let demo: std::collections::BTreeSet<String> = vmmem_sim::Scenario::demo()
        .unwrap()
        .vms
        .iter()
        .map(|vm| format!("{}/{}", vm.namespace, vm.name))
        .collect();
    for vm in &got.vms {
        assert!(demo.contains(vm), "{vm} is no demo VM\n{fresh}");
    }
    assert_eq!(got.row_lines, want.row_lines, "{help}");
    assert_eq!(
        got.chrome_styles, want.chrome_styles,
        "{help} (headings or key bar style)"
    );
    let both: Vec<&String> = want_risks
        .keys()
        .filter(|k| got_risks.contains_key(*k))
        .collect();
    assert!(
        both.iter().any(|k| k.as_str() == "ok"),
        "no risk seen in both captures"
    );
    for risk in both {
        assert_eq!(
            got_risks[risk], want_risks[risk],
            "{help}: the colour of {risk}"
        );
    }
}
