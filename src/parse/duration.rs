//! Durations as kubectl spells them: `5s`, `1m`, `1m30s`, `250ms`, `1h`, or a bare number of
//! seconds (`0` means "no limit" to the callers that say so).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration (try 5s, 1m, 1m30s, 250ms or 0)")]
pub struct DurationError {
    pub input: String,
}

/// Parse a Go-style duration (a sequence of number+unit with units ns, us, µs, ms, s, m, h) or a
/// bare non-negative number of seconds.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_string(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    // Exact integer nanoseconds: `37399730692ms` is exactly that many milliseconds (a float
    // would be off by a few nanoseconds), and sums past u64 seconds are errors, not panics.
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (int, frac) = match rest[..num_end].split_once('.') {
            Some((i, f)) => (i, f),
            None => (&rest[..num_end], ""),
        };
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(err());
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        total = total
            .checked_add(part_nanos(int, frac, scale).ok_or_else(err)?)
            .ok_or_else(err)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `INT.FRAC` times `scale` nanoseconds, the fraction truncated below a nanosecond (as Go does).
fn part_nanos(int: &str, frac: &str, scale: u128) -> Option<u128> {
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    let mut unit = scale;
    for d in frac.bytes() {
        if unit < 10 {
            break;
        }
        unit /= 10;
        nanos = nanos.checked_add(u128::from(d - b'0') * unit)?;
    }
    Some(nanos)
}

/// A duration as kubectl would print it back: `5s`, `1m30s`, `250ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_spellings() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse(" 10s ").unwrap(), Duration::from_secs(10));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "s",
            "5x",
            "soon",
            "-1s",
            "1m-",
            "5 s",
            "1.2.3s",
            "18446744073709551616s",
            "99999999999999999999h",
            "1e3s",
            "5µ",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("soon").unwrap_err().to_string(),
            "\"soon\" is not a duration (try 5s, 1m, 1m30s, 250ms or 0)"
        );
    }

    #[test]
    fn formats_back() {
        assert_eq!(format(Duration::from_secs(5)), "5s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
    }
}
