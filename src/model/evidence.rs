//! Evidence of how much memory outside guest RAM a VM has needed: each item says what it is,
//! how many bytes, when, where it came from, and whether it is a measurement or only a bound.
//! The recommendation ([`super::recommend`]) and the risk are decided from these items, so the
//! same evidence gives the same answer in `list`, the dashboard, `fix` and JSON.

use serde::{Serialize, Serializer};

/// What an evidence item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// The overhead used in this reading.
    Now,
    /// The highest overhead used seen by this process (the dashboard's session; `list` has one
    /// round).
    SessionPeak,
    /// The cgroup's own peak counter minus the guest resident now.
    CgroupPeak,
    /// The memory outside guest RAM at an OOM kill of this VM.
    OomKill,
    /// The highest overhead remembered on this machine from earlier runs.
    History,
    /// The peak over the history window from Prometheus.
    Prometheus,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Now => "now",
            EvidenceKind::SessionPeak => "session-peak",
            EvidenceKind::CgroupPeak => "cgroup-peak",
            EvidenceKind::OomKill => "oom-kill",
            EvidenceKind::History => "history",
            EvidenceKind::Prometheus => "prometheus",
        }
    }
}

/// How an item's bytes relate to what the VM really used outside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// Measured: cgroup usage less page cache less qemu's guest resident.
    Measured,
    /// At least this much was needed (an OOM kill: the kill came before the need was met).
    Lower,
    /// At most this much (a peak counter that includes page cache): shown, never decides.
    Upper,
}

/// Which limit an item was measured against: at the pod level the containers beside `compute`
/// share the limit (and their memory is in the figure); at the container level they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pod,
    Container,
}

/// When an item was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// Wall-clock time, Unix seconds.
    Unix(i64),
    /// A kernel log's own timestamp, as printed (seconds since boot, or a syslog date).
    Printed(String),
}

impl At {
    /// Plain words: `2026-12-07 06:40 UTC`, or `10166 s after boot` for a kernel timestamp.
    pub fn words(&self) -> String {
        match self {
            At::Unix(t) => utc_minute(*t),
            At::Printed(p) => match p.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => format!("{} s after boot", s.floor() as u64),
                _ => p.trim().to_string(),
            },
        }
    }
}

impl Serialize for At {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            At::Unix(t) => s.serialize_str(&rfc3339(*t)),
            At::Printed(p) => s.serialize_str(p),
        }
    }
}

/// A VM within a report: its namespace and name (what stays the same across its pods).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmKey {
    pub namespace: String,
    pub name: String,
}

impl VmKey {
    pub fn new(namespace: &str, name: &str) -> VmKey {
        VmKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
    /// The key of a row (a full report row or a table row).
    pub fn of(row: &impl Keyed) -> VmKey {
        VmKey::new(row.namespace(), row.name())
    }
    pub fn matches(&self, row: &impl Keyed) -> bool {
        self.namespace == row.namespace() && self.name == row.name()
    }
}

impl std::fmt::Display for VmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Something that belongs to one VM: a report row, a table row.
pub trait Keyed {
    fn namespace(&self) -> &str;
    fn name(&self) -> &str;
}

/// One item of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Memory outside guest RAM, bytes.
    pub bytes: i64,
    pub at: Option<At>,
    /// Where it came from, in words (`node-1's agent`, `kernel log of node-1`, `this machine`).
    pub source: String,
    pub bound: Bound,
    pub level: Level,
}

impl Evidence {
    /// Whether this item may decide a reservation or raise the risk (a bound from above cannot:
    /// it says how much was at most needed, not how much was).
    pub fn decides(&self) -> bool {
        self.bound != Bound::Upper
    }

    /// The item in plain words, for reasons: `the OOM kill at 10166 s after boot`.
    pub fn words(&self) -> String {
        let when = self.at.as_ref().map(At::words);
        let at = |what: &str| match &when {
            Some(w) => format!("{what} at {w}"),
            None => what.to_string(),
        };
        match self.kind {
            EvidenceKind::Now => "the reading now".to_string(),
            EvidenceKind::SessionPeak => at("the peak this session"),
            EvidenceKind::CgroupPeak => {
                "the cgroup's peak counter (an upper bound: it includes page cache)".to_string()
            }
            EvidenceKind::OomKill => at("the OOM kill"),
            EvidenceKind::History => match &when {
                Some(w) => format!("the peak remembered on this machine from {w}"),
                None => "the peak remembered on this machine".to_string(),
            },
            EvidenceKind::Prometheus => match &self.at {
                Some(At::Unix(t)) => {
                    format!("Prometheus's peak on {} {}", weekday(*t), utc_minute(*t))
                }
                _ => "Prometheus's peak".to_string(),
            },
        }
    }
}

/// The item that needs the most, among those that may decide: `need` gives each item's need.
pub fn worst_by<F: Fn(&Evidence) -> i64>(evidence: &[Evidence], need: F) -> Option<&Evidence> {
    evidence
        .iter()
        .filter(|e| e.decides())
        .max_by_key(|e| (need(e), std::cmp::Reverse(e.kind)))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn parts(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    (y, mo, d, s / 3600, s % 3600 / 60, s % 60)
}

/// `2026-12-07T06:40:12Z`.
pub fn rfc3339(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// (year, month, day) → days since 1970-01-01 (the inverse of `civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-07T06:40:12Z` (fractions and a `+hh:mm` offset allowed, as Kubernetes writes
/// times) → Unix seconds; None for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let sep = |i: usize, c: &[u8]| t.as_bytes().get(i).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 || rest.len() != 6 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// The day of the week of Unix time `t` in UTC (1970-01-01 was a Thursday).
pub fn weekday(t: i64) -> &'static str {
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    DAYS[t.div_euclid(86_400).rem_euclid(7) as usize]
}

/// `2026-12-07 06:40 UTC`.
pub fn utc_minute(t: i64) -> String {
    let (y, mo, d, h, mi, _) = parts(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: EvidenceKind, bytes: i64, bound: Bound) -> Evidence {
        Evidence {
            kind,
            bytes,
            at: None,
            source: "test".into(),
            bound,
            level: Level::Pod,
        }
    }

    #[test]
    fn times_in_words() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_625_612), "2026-12-07T06:40:12Z");
        assert_eq!(utc_minute(1_796_625_612), "2026-12-07 06:40 UTC");
        assert_eq!(weekday(1_796_625_612), "Monday");
        assert_eq!(weekday(0), "Thursday");
        assert_eq!(weekday(-1), "Wednesday");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            At::Printed("10166.123456".into()).words(),
            "10166 s after boot"
        );
        assert_eq!(
            At::Printed("Feb 03 19:57:08".into()).words(),
            "Feb 03 19:57:08"
        );
    }

    #[test]
    fn rfc3339_read_back() {
        for t in [0, 951_782_400, 1_796_625_612, -1, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(
            parse_rfc3339("2026-12-07T07:40:12.5+01:00"),
            Some(1_796_625_612)
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T06:40:12-00:30"),
            Some(1_796_627_412)
        );
        for bad in [
            "",
            "2026-12-07",
            "2026-13-07T06:40:12Z",
            "2026-12-07T06:40:12",
            "2026-12-07T06:40:12+1",
            "2026-1a-07T06:40:12Z",
            "२०२६-12-07T06:40:12Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn upper_bounds_never_decide() {
        let ev = vec![
            item(EvidenceKind::Now, 100, Bound::Measured),
            item(EvidenceKind::CgroupPeak, 900, Bound::Upper),
            item(EvidenceKind::OomKill, 500, Bound::Lower),
        ];
        assert_eq!(
            worst_by(&ev, |e| e.bytes).unwrap().kind,
            EvidenceKind::OomKill
        );
        assert!(worst_by(&ev[1..2], |e| e.bytes).is_none());
    }

    #[test]
    fn kinds_serialise_as_the_contract_says() {
        let mut e = item(EvidenceKind::SessionPeak, 5, Bound::Measured);
        e.at = Some(At::Unix(0));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "session-peak");
        assert_eq!(v["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["source"], "test");
        assert_eq!(EvidenceKind::CgroupPeak.as_str(), "cgroup-peak");
    }
}
