//! Property tests for the small text parsers: quantities, durations, cgroup paths and kernel log
//! lines. No input panics; errors are one line; values that can be spelled round-trip exactly;
//! quantities past the i64 range are errors, never wrapped numbers.

use std::time::Duration;

use proptest::prelude::*;
use vmmem::parse::cgroup_path::{kube_cgroup, CgroupLevel};
use vmmem::parse::duration;
use vmmem::parse::kernel_log::kernel_lines;
use vmmem::units::{
    human, parse_bytes, parse_memory, parse_millis, to_quantity_string, Quantity, MAX_MEMORY_BYTES,
};

const SUFFIXES: [(&str, i128, i128); 17] = [
    ("", 1, 1),
    ("Ki", 1 << 10, 1),
    ("Mi", 1 << 20, 1),
    ("Gi", 1 << 30, 1),
    ("Ti", 1 << 40, 1),
    ("Pi", 1 << 50, 1),
    ("Ei", 1 << 60, 1),
    ("n", 1, 1_000_000_000),
    ("u", 1, 1_000_000),
    ("m", 1, 1000),
    ("k", 1000, 1),
    ("M", 1_000_000, 1),
    ("G", 1_000_000_000, 1),
    ("T", 1_000_000_000_000, 1),
    ("P", 1_000_000_000_000_000, 1),
    ("E", 1_000_000_000_000_000_000, 1),
    ("e3", 1000, 1),
];

/// Ceiling of num/den, like `Quantity.Value()`.
fn ceil_div(num: i128, den: i128) -> i128 {
    let q = num.div_euclid(den);
    if num.rem_euclid(den) == 0 {
        q
    } else {
        q + 1
    }
}

#[test]
fn odd_quantities() {
    let ok: [(&str, i64); 14] = [
        ("1.5Gi", 1_610_612_736),
        ("1e3", 1000),
        ("0.1", 1),
        ("-1", -1),
        ("-0.5", 0),
        ("1Ei", 1 << 60),
        ("7Ei", 7 << 60),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
        ("-8Ei", i64::MIN),
        ("8E", 8_000_000_000_000_000_000),
        ("1n", 1),
        ("0.000Gi", 0),
        ("00001Ki", 1024),
    ];
    for (s, want) in ok {
        assert_eq!(parse_bytes(s), Ok(want), "{s}");
    }
    // Past i64 (and past u64): errors, never wrapped or saturated numbers.
    for s in [
        "8Ei",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "16Ei",
        "10E",
        "1e19",
        "1e30",
        "1e31",
        "-9223372036854775809",
        "999999999999999999999999999999",
        "9999999999999999999999999999999",
        "99999999999999999999999999999.9Ei",
    ] {
        let e = parse_bytes(s).expect_err(s);
        assert!(
            e.to_string().contains("is not a Kubernetes quantity"),
            "{e}"
        );
    }
    assert!(parse_millis("9223372036854775807").is_err());
    assert_eq!(parse_memory("8Pi"), Ok(MAX_MEMORY_BYTES));
    let e = parse_memory("-8Pi").unwrap_err().to_string();
    assert!(e.contains("a memory size cannot be negative"), "{e}");
    let e = parse_memory("7Ei").unwrap_err().to_string();
    assert!(e.contains("larger than any memory size"), "{e}");
    assert!(parse_millis("9223372036854776").is_err());
    assert_eq!(
        parse_millis("9223372036854775"),
        Ok(9_223_372_036_854_775_000)
    );
}

fn one_line(s: &str) -> bool {
    !s.contains('\n') && !s.contains('\r')
}

/// Strings shaped like quantities, with every part optional or mangled.
fn quantity_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("-"), Just("+"), Just("--"), Just(" ")],
        "[0-9]{0,40}",
        prop_oneof![Just(String::new()), "\\.[0-9]{0,35}", Just(".".to_string())],
        prop_oneof![
            proptest::sample::select(SUFFIXES.iter().map(|s| s.0).collect::<Vec<_>>())
                .prop_map(str::to_string),
            "[eE][+-]?[0-9]{0,12}",
            "[a-zA-Zµ]{1,3}",
        ],
        prop_oneof![Just(""), Just("\""), Just("'"), Just(" ")],
    )
        .prop_map(|(sign, int, frac, suf, quote)| format!("{quote}{sign}{int}{frac}{suf}{quote}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn quantity_spelling_round_trips(x in any::<i64>()) {
        prop_assert_eq!(parse_bytes(&to_quantity_string(x)), Ok(x));
        // As a memory size: exact from 0 up to 8Pi, an error below or beyond (never a negative
        // size, never a number the model overflows on).
        let q = Quantity::new(to_quantity_string(x));
        if (0..=MAX_MEMORY_BYTES).contains(&x) {
            prop_assert_eq!(q.bytes(), Ok(x));
        } else {
            prop_assert!(q.bytes().is_err());
            prop_assert!(parse_memory(&to_quantity_string(x)).is_err());
        }
    }

    #[test]
    fn quantity_spelling_round_trips_near_units(k in -8192i64..8192, unit in 0u32..7) {
        let x = k.saturating_mul(1i64 << (10 * unit));
        prop_assert_eq!(parse_bytes(&to_quantity_string(x)), Ok(x));
    }

    #[test]
    fn human_never_panics(x in any::<i64>()) {
        let h = human(x);
        prop_assert!(h.ends_with('B'), "{}", h);
        prop_assert_eq!(h.starts_with('-'), x < 0, "{}", h);
        prop_assert!(!h.contains(' '), "{}", h);
    }

    #[test]
    fn quantity_like_strings_are_exact_or_a_one_line_error(s in quantity_like()) {
        match parse_bytes(&s) {
            Ok(_) => {}
            Err(e) => prop_assert!(one_line(&e.to_string()), "{}", e),
        }
        let _ = parse_millis(&s);
    }

    #[test]
    fn number_times_suffix_is_exact_or_out_of_range(
        neg in any::<bool>(),
        int in 0u64..u64::MAX,
        frac in "[0-9]{0,9}",
        suffix in 0usize..SUFFIXES.len(),
    ) {
        let (suf, mul, div) = SUFFIXES[suffix];
        let dot = if frac.is_empty() { String::new() } else { format!(".{frac}") };
        let text = format!("{}{int}{dot}{suf}", if neg { "-" } else { "" });
        let den = 10i128.pow(frac.len() as u32) * div;
        let num = (i128::from(int) * 10i128.pow(frac.len() as u32)
            + frac.parse::<i128>().unwrap_or(0)).checked_mul(mul);
        let want = num
            .map(|n| if neg { -n } else { n })
            .and_then(|n| i64::try_from(ceil_div(n, den)).ok());
        match (parse_bytes(&text), want) {
            (Ok(got), Some(w)) => prop_assert_eq!(got, w, "{}", text),
            (Err(_), None) => {}
            (got, w) => prop_assert!(false, "{text}: got {got:?}, want {w:?}"),
        }
    }

    #[test]
    fn quantities_from_any_json_value(v in json_scalar()) {
        if let Ok(q) = serde_json::from_value::<Quantity>(v) {
            let _ = q.bytes();
            let _ = q.millis();
        }
    }

    #[test]
    fn durations_never_panic(s in "\\PC{0,40}") {
        if let Err(e) = duration::parse(&s) {
            prop_assert!(one_line(&e.to_string()));
        }
    }

    #[test]
    fn duration_like_strings_never_panic(
        parts in proptest::collection::vec(
            ("[0-9]{0,25}(\\.[0-9]{0,5})?", proptest::sample::select(
                vec!["ns", "us", "µs", "ms", "s", "m", "h", "", "x", "µ", "d"])),
            0..6,
        ),
    ) {
        let s: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
        if let Ok(d) = duration::parse(&s) {
            // What it read is finite and fits a Duration; printing it back never panics.
            let _ = duration::format(d);
        }
    }

    #[test]
    fn duration_spelling_round_trips(ms in 0u64..(1u64 << 40)) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(duration::parse(&duration::format(d)), Ok(d));
    }

    #[test]
    fn cgroup_paths_never_panic(s in "\\PC{0,300}") {
        let _ = kube_cgroup(&s);
    }

    #[test]
    fn cgroup_paths_of_any_layout_are_read(
        uid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        cid in "[0-9a-f]{64}",
        qos in proptest::sample::select(vec!["", "burstable", "besteffort"]),
        systemd in any::<bool>(),
        runtime in proptest::sample::select(vec!["cri-containerd-", "crio-", "docker-"]),
        prefix in "(/[a-z0-9.-]{1,12}){0,3}",
        container in any::<bool>(),
    ) {
        let path = if systemd {
            let q = if qos.is_empty() { String::new() } else { format!("kubepods-{qos}.slice/") };
            let qp = if qos.is_empty() { "kubepods".to_string() } else { format!("kubepods-{qos}") };
            let mut p = format!("{prefix}/kubepods.slice/{q}{qp}-pod{}.slice", uid.replace('-', "_"));
            if container {
                p.push_str(&format!("/{runtime}{cid}.scope"));
            }
            p
        } else {
            let q = if qos.is_empty() { String::new() } else { format!("{qos}/") };
            let mut p = format!("{prefix}/kubepods/{q}pod{uid}");
            if container {
                p.push_str(&format!("/{cid}"));
            }
            p
        };
        let k = kube_cgroup(&path);
        prop_assert_eq!(k.pod_uid.as_deref(), Some(uid.as_str()), "{}", path);
        if container {
            prop_assert_eq!(k.level, CgroupLevel::Container);
            prop_assert_eq!(k.container_id.as_deref(), Some(cid.as_str()));
        } else {
            prop_assert_eq!(k.level, CgroupLevel::Pod);
            prop_assert_eq!(k.container_id, None);
        }
    }

    #[test]
    fn kernel_lines_never_panic(s in kernel_soup()) {
        let total = s.lines().count();
        for line in kernel_lines(&s) {
            prop_assert!(line.number >= 1 && line.number <= total, "{line:?} of {total}");
            prop_assert!(!line.msg.contains('\n'), "{line:?}");
        }
    }
}

fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
        quantity_like().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
    ]
}

/// Text made of the prefixes every supported kernel log format starts its lines with.
fn kernel_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(vec![
            "[ 8758.722811] ", "[Thu May  9 14:52:38 2024] ", "<4>[    1.2] ", "<6>",
            "4,1234,458325923,-;", "6,1,2,c;", "\\x0a", "\\x", "\\x0", " SUBSYSTEM=memory",
            "Feb 03 19:57:08 host kernel: ", "May  9 14:52:38 ** kernel: ", "kernel: ",
            "2024-05-09T14:52:38.123456+00:00 node kernel: ", "2024-05-09T14:52:38,123456+0000 ",
            "Feb 03 19:57:08 host sshd[12]: ", "\n", "\n ", "\n\t", "\r\n", "[", "]", ";",
            "oom-kill:", " invoked oom-killer", "µ", "\u{feff}",
        ]).prop_map(str::to_string),
        1 => "[0-9]{1,22}",
        1 => "\\PC{1,6}",
    ];
    proptest::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}
