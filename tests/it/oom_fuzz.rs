//! No input makes the OOM parser (or the verdict and the renderers after it) panic: arbitrary
//! text, text made of kernel-log fragments, and real reports cut, shuffled and corrupted.

use crate::oom_fixtures::{fixture, fixture_names};
use proptest::prelude::*;
use vmmem::model::oom_verdict::explain;
use vmmem::output::oom::{to_json, to_table};
use vmmem::parse::oom::parse_kernel_log;

/// Parse, explain and render; returns the number of events.
fn everything(text: &str) -> usize {
    let events = parse_kernel_log(text);
    let explained = explain(&events, None, None);
    to_json(&explained).expect("JSON encoding never fails");
    to_table(&explained);
    events.len()
}

const FRAGMENTS: [&str; 34] = [
    "CPU 1/KVM invoked oom-killer: gfp_mask=0xcc0",
    " invoked oom-killer",
    "CPU: 4 PID: ",
    " Comm: ",
    " Not tainted",
    "memory: usage ",
    "memory+swap: usage ",
    "swap: ",
    "kmem: ",
    "kB, limit ",
    "kB, failcnt ",
    "99999999999999999999999",
    "18446744073709551615",
    "-1",
    "Memory cgroup stats for ",
    "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss name",
    "[  24790]",
    "[4294967296]",
    "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=",
    ",task_memcg=/kubepods/pod",
    ",task=",
    ",pid=",
    ",uid=",
    "global_oom,",
    "Memory cgroup out of memory: Killed process ",
    "Out of memory: Kill process ",
    " (qemu-system-x86) total-vm:",
    "anon-rss:",
    "Task in / killed as a result of limit of ",
    "\\x0a",
    "4,1,2,-;",
    "Feb 03 19:57:08 h kernel: ",
    "[Thu May  9 14:52:38 2024] ",
];

fn fragment_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(FRAGMENTS.to_vec()).prop_map(str::to_string),
        2 => "[0-9]{1,25}",
        1 => "[ \t\n(),:=/_kB\\-]{1,4}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..120).prop_map(|v| v.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    DeleteLines(usize, usize),
    SwapLines(usize, usize),
    DuplicateLine(usize),
    Insert(usize, String),
    BigNumbers(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Mutation::DeleteLines(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), "\\PC{0,12}").prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::BigNumbers),
    ]
}

fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::Truncate(at) => return text[..floor_boundary(text, *at)].to_string(),
        Mutation::DeleteLines(a, k) => {
            let start = a % n;
            let end = (start + k).min(lines.len());
            if start < end {
                lines.drain(start..end);
            }
        }
        Mutation::SwapLines(a, b) => {
            if !lines.is_empty() {
                let len = lines.len();
                lines.swap(a % len, b % len);
            }
        }
        Mutation::DuplicateLine(a) => {
            if !lines.is_empty() {
                let l = lines[a % lines.len()].clone();
                lines.insert(a % lines.len(), l);
            }
        }
        Mutation::Insert(at, s) => {
            let i = floor_boundary(text, *at);
            return format!("{}{s}{}", &text[..i], &text[i..]);
        }
        Mutation::BigNumbers(a) => {
            if !lines.is_empty() {
                let i = a % lines.len();
                lines[i] = lines[i]
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect::<String>()
                    .replace('9', "99999");
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        everything(&s);
    }

    #[test]
    fn kernel_fragments_never_panic(s in fragment_text()) {
        everything(&s);
    }

    #[test]
    fn mutated_reports_never_panic(
        which in any::<proptest::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let names = fixture_names();
        let mut text = fixture(which.get::<String>(&names));
        for m in &muts {
            text = apply(&text, m);
        }
        everything(&text);
    }

    /// Cutting a log anywhere keeps every report before the last one intact.
    #[test]
    fn a_cut_log_keeps_earlier_reports(
        which in any::<proptest::sample::Index>(),
        at in any::<usize>(),
    ) {
        let names = fixture_names();
        let full = fixture(which.get::<String>(&names));
        let whole = parse_kernel_log(&full);
        let cut = parse_kernel_log(&full[..floor_boundary(&full, at)]);
        prop_assert!(cut.len() <= whole.len());
        if let Some(keep) = cut.len().checked_sub(1) {
            prop_assert_eq!(&cut[..keep], &whole[..keep]);
        }
    }
}
