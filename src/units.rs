//! Kubernetes resource quantities (`2Gi`, `1.5G`, `100m`, `1e9`, `"1024"`) as exact byte counts.
//!
//! Follows `k8s.io/apimachinery/pkg/api/resource`: a signed decimal number, optionally with a
//! fraction, followed by a binary suffix (`Ki`…`Ei`), a decimal SI suffix (`n u m k M G T P E`) or a
//! decimal exponent (`e3`, `E-2`). Conversion to bytes rounds up, like `Quantity.Value()`.

use std::fmt;

/// Why a string is not a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Kubernetes quantity: {reason} (expected e.g. 2Gi, 1500M, 1.5Gi, 1e9)")]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

fn err(input: &str, reason: &'static str) -> QuantityError {
    QuantityError {
        input: input.to_string(),
        reason,
    }
}

/// Parse a quantity into bytes (rounded up to a whole byte, like Kubernetes' `Value()`).
pub fn parse_bytes(input: &str) -> Result<i64, QuantityError> {
    let exact = parse_exact(input)?;
    exact
        .ceil_to_i64()
        .ok_or_else(|| err(input, "value is out of range"))
}

/// The largest memory size the tool reads: 8 PiB (2^53 bytes), far past any machine, and small
/// enough that sums and differences of a few memory numbers never leave the i64 range.
pub const MAX_MEMORY_BYTES: i64 = 1 << 53;

/// Parse a memory size: like [`parse_bytes`], and an error when negative (`-5Gi` is a valid
/// quantity but no memory size: a guest of −5 GiB would turn every sum after it around) or beyond
/// [`MAX_MEMORY_BYTES`] (a valid quantity such as `7Ei` would overflow the model's arithmetic).
pub fn parse_memory(input: &str) -> Result<i64, QuantityError> {
    if parse_exact(input)?.num < 0 {
        return Err(err(input, "a memory size cannot be negative"));
    }
    let bytes = parse_bytes(input)?;
    if bytes > MAX_MEMORY_BYTES {
        return Err(err(
            input,
            "it is larger than any memory size (at most 8Pi)",
        ));
    }
    Ok(bytes)
}

/// Parse a CPU quantity into millicores (rounded up), e.g. `125m` → 125, `2` → 2000.
pub fn parse_millis(input: &str) -> Result<i64, QuantityError> {
    let exact = parse_exact(input)?;
    let scaled = Exact {
        num: exact
            .num
            .checked_mul(1000)
            .ok_or_else(|| err(input, "value is out of range"))?,
        den: exact.den,
    };
    scaled
        .ceil_to_i64()
        .ok_or_else(|| err(input, "value is out of range"))
}

/// Billionths in one unit: Kubernetes holds a quantity exact to 10^-9 (`resource.Nano`).
pub const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// A quantity in billionths of its unit, as Kubernetes holds it: `ParseQuantity` rounds a finer
/// fraction up (away from zero) to 10^-9, and `Quantity.Add` and `Quantity.Cmp` are exact on
/// that value. Sums and comparisons on it are KubeVirt's, where whole bytes would round each
/// term (`0.5` + `0.5` is 1 byte, not 2).
pub fn parse_nanos(input: &str) -> Result<i128, QuantityError> {
    let exact = parse_exact(input)?;
    let g = gcd(exact.num.unsigned_abs(), exact.den.unsigned_abs());
    let g = i128::try_from(g).unwrap_or(1).max(1);
    let (num, den) = (exact.num / g, exact.den / g);
    let scaled = num
        .checked_mul(NANOS_PER_UNIT)
        .ok_or_else(|| err(input, "value is out of range"))?;
    let (q, r) = (scaled / den, scaled % den);
    Ok(if r == 0 { q } else { q + scaled.signum() })
}

/// Whole units from billionths, rounded up like Kubernetes' `Quantity.Value()`.
pub fn nanos_to_units_ceil(nanos: i128) -> i128 {
    nanos.div_euclid(NANOS_PER_UNIT) + i128::from(nanos.rem_euclid(NANOS_PER_UNIT) != 0)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A quantity as an exact rational number num/den (den > 0).
#[derive(Debug, Clone, Copy)]
struct Exact {
    num: i128,
    den: i128,
}

impl Exact {
    fn ceil_to_i64(self) -> Option<i64> {
        let q = self.num.div_euclid(self.den);
        let r = self.num.rem_euclid(self.den);
        let v = if r == 0 { q } else { q + 1 };
        i64::try_from(v).ok()
    }
}

const MAX_DIGITS: usize = 30;

fn parse_exact(input: &str) -> Result<Exact, QuantityError> {
    let s = unquoted(input.trim());
    if s.is_empty() {
        return Err(err(input, "it is empty"));
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let Exact { mut num, mut den } = decimal(input, number)?;
    let (mul, div) = unit_factor(input, suffix)?;
    num = num
        .checked_mul(mul)
        .ok_or_else(|| err(input, "value is out of range"))?;
    den = den
        .checked_mul(div)
        .ok_or_else(|| err(input, "value is out of range"))?;
    if negative {
        num = -num;
    }
    Ok(Exact { num, den })
}

/// `s` without one pair of surrounding double or single quotes.
fn unquoted(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(s)
}

/// The digits (with at most one decimal point) of `input`'s number as an exact fraction.
fn decimal(input: &str, number: &str) -> Result<Exact, QuantityError> {
    if number.is_empty() || number == "." {
        return Err(err(input, "it does not start with a number"));
    }
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => {
            if f.contains('.') {
                return Err(err(input, "it has more than one decimal point"));
            }
            (i, f)
        }
        None => (number, ""),
    };
    let digits = int_part.len() + frac_part.len();
    if digits > MAX_DIGITS {
        return Err(err(input, "it has too many digits"));
    }
    let mut num: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        num = num * 10 + i128::from(c - b'0');
    }
    let den: i128 = 10i128.pow(frac_part.len() as u32);
    Ok(Exact { num, den })
}

/// The unit `suffix` as a multiplier and a divisor: a binary or decimal SI suffix, or a
/// decimal exponent (`e3`, `E-2`).
fn unit_factor(input: &str, suffix: &str) -> Result<(i128, i128), QuantityError> {
    Ok(match suffix {
        "" => (1, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1000),
        "k" => (1000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        other if other.starts_with(['e', 'E']) => exponent_factor(input, &other[1..])?,
        _ => return Err(err(input, "its unit is unknown")),
    })
}

/// A decimal exponent's digits `exp` (after the `e`) as a multiplier and a divisor.
fn exponent_factor(input: &str, exp: &str) -> Result<(i128, i128), QuantityError> {
    let (eneg, edigits) = match exp.as_bytes().first() {
        Some(b'-') => (true, &exp[1..]),
        Some(b'+') => (false, &exp[1..]),
        _ => (false, exp),
    };
    if edigits.is_empty() || !edigits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err(input, "its exponent is not a whole number"));
    }
    let e: u32 = edigits
        .parse()
        .map_err(|_| err(input, "its exponent is too large"))?;
    if e > 30 {
        return Err(err(input, "its exponent is too large"));
    }
    Ok(if eneg {
        (1, 10i128.pow(e))
    } else {
        (10i128.pow(e), 1)
    })
}

/// A quantity as it appeared in an object, keeping its original spelling (so an undo can
/// restore it byte for byte). YAML/JSON numbers are accepted too.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Quantity(pub String);

impl Quantity {
    pub fn new(s: impl Into<String>) -> Self {
        Quantity(s.into())
    }
    /// The value in bytes (rounded up), as a memory size (at most [`MAX_MEMORY_BYTES`]).
    pub fn bytes(&self) -> Result<i64, QuantityError> {
        parse_memory(&self.0)
    }
    /// The value in billionths, exact as Kubernetes compares and adds quantities; a memory
    /// size beyond [`MAX_MEMORY_BYTES`] is an error, as for [`Quantity::bytes`].
    pub fn memory_nanos(&self) -> Result<i128, QuantityError> {
        self.bytes()?;
        parse_nanos(&self.0)
    }
    /// The value in billionths (CPU or any other resource), exact.
    pub fn nanos(&self) -> Result<i128, QuantityError> {
        parse_nanos(&self.0)
    }
    /// The value in millis (CPU), rounded up.
    pub fn millis(&self) -> Result<i64, QuantityError> {
        parse_millis(&self.0)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({:?})", self.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity (string or number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(format!("{v}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Spell a byte count the way Kubernetes users write it: the largest binary unit that divides
/// it exactly (`2Gi`, `1948Mi`, `256Ki`), else plain bytes.
pub fn to_quantity_string(bytes: i64) -> String {
    const UNITS: [(&str, i64); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    if bytes != 0 {
        for (suffix, size) in UNITS {
            if bytes % size == 0 {
                return format!("{}{}", bytes / size, suffix);
            }
        }
    }
    bytes.to_string()
}

/// Human size in binary units for tables (`1.9GiB`, `252.7MiB`), negative values with a minus.
/// No space inside, so table columns stay one word each.
pub fn human(bytes: i64) -> String {
    use humansize::{format_size, BINARY};
    let opts = BINARY
        .decimal_places(1)
        .decimal_zeroes(0)
        .space_after_value(false);
    let s = format_size(bytes.unsigned_abs(), opts);
    if bytes < 0 {
        format!("-{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(parse_bytes("2Gi").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_bytes("1948Mi").unwrap(), 1948 * 1024 * 1024);
        assert_eq!(parse_bytes("1Ki").unwrap(), 1024);
        assert_eq!(parse_bytes("1Ti").unwrap(), 1 << 40);
        assert_eq!(parse_bytes("1Pi").unwrap(), 1 << 50);
        assert_eq!(parse_bytes("1Ei").unwrap(), 1 << 60);
        assert_eq!(parse_bytes("60M").unwrap(), 60_000_000);
        assert_eq!(parse_bytes("1k").unwrap(), 1000);
        assert_eq!(parse_bytes("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("1T").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_bytes("1P").unwrap(), 1_000_000_000_000_000);
        assert_eq!(parse_bytes("1E").unwrap(), 1_000_000_000_000_000_000);
    }

    #[test]
    fn fractions_exponents_millis_and_quotes() {
        assert_eq!(parse_bytes("1.5Gi").unwrap(), 1_610_612_736);
        assert_eq!(parse_bytes("0.5Ki").unwrap(), 512);
        assert_eq!(parse_bytes("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("2E3").unwrap(), 2000);
        assert_eq!(parse_bytes("1.5e3").unwrap(), 1500);
        assert_eq!(parse_bytes("12e-1").unwrap(), 2); // 1.2 rounds up
        assert_eq!(parse_bytes("100m").unwrap(), 1); // 0.1 byte rounds up
        assert_eq!(parse_bytes("2000m").unwrap(), 2);
        assert_eq!(parse_bytes("\"1024\"").unwrap(), 1024);
        assert_eq!(parse_bytes("'1Mi'").unwrap(), 1 << 20);
        assert_eq!(parse_bytes(" 1024 ").unwrap(), 1024);
        assert_eq!(parse_bytes("+1Ki").unwrap(), 1024);
        assert_eq!(parse_bytes("-100Mi").unwrap(), -100 * 1024 * 1024);
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert_eq!(parse_bytes(".5Ki").unwrap(), 512);
        assert_eq!(parse_millis("125m").unwrap(), 125);
        assert_eq!(parse_millis("2").unwrap(), 2000);
        assert_eq!(parse_millis("1.5").unwrap(), 1500);
    }

    #[test]
    fn nanos_are_exact_like_kubernetes() {
        assert_eq!(parse_nanos("1").unwrap(), 1_000_000_000);
        assert_eq!(parse_nanos("1.5Gi").unwrap(), 1_610_612_736 * 1_000_000_000);
        assert_eq!(
            parse_nanos("1731199801.3").unwrap(),
            1_731_199_801_300_000_000
        );
        assert_eq!(parse_nanos("100m").unwrap(), 100_000_000);
        // Finer than a billionth rounds up, away from zero, as ParseQuantity does.
        assert_eq!(parse_nanos("0.0000000001").unwrap(), 1);
        assert_eq!(parse_nanos("-0.0000000001").unwrap(), -1);
        assert_eq!(parse_nanos("1e-12").unwrap(), 1);
        assert_eq!(parse_nanos("0").unwrap(), 0);
        // 2.5 + 2.5 bytes is 5 bytes, though each alone rounds up to 3.
        let sum = parse_nanos("2.5").unwrap() + parse_nanos("2.5").unwrap();
        assert_eq!(nanos_to_units_ceil(sum), 5);
        assert_eq!(nanos_to_units_ceil(parse_nanos("2.5").unwrap()), 3);
        assert_eq!(nanos_to_units_ceil(-1_500_000_000), -1);
        // Equal values in different spellings are equal; a fraction of a byte is not.
        assert_eq!(
            parse_nanos("1Gi").unwrap(),
            parse_nanos("1073741824").unwrap()
        );
        assert_ne!(
            parse_nanos("1073741823.5").unwrap(),
            parse_nanos("1073741824").unwrap()
        );
        assert_eq!(parse_nanos("1.5").unwrap(), parse_nanos("1500m").unwrap());
        assert!(Quantity::new("9Ei").memory_nanos().is_err());
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        for bad in [
            "",
            "Gi",
            "abc",
            "1.2.3Gi",
            "1GB",
            "1gi",
            "1 Gi",
            "1e",
            "1eX",
            "--1",
            "1e99",
            "99999999999999999999999999999999Ei",
            "12Ei",
            ".",
        ] {
            let e = parse_bytes(bad).unwrap_err();
            assert!(
                e.to_string().contains("is not a Kubernetes quantity"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn memory_sizes_are_never_negative() {
        for bad in ["-5Gi", "-1", "-0.5", "-8Pi", "-1e3", "\"-2Gi\""] {
            let e = parse_memory(bad).unwrap_err().to_string();
            assert!(e.contains("a memory size cannot be negative"), "{bad}: {e}");
            assert!(Quantity::new(bad).bytes().is_err(), "{bad}");
        }
        assert_eq!(parse_memory("-0"), Ok(0));
        assert_eq!(parse_memory("+5Gi"), Ok(5 << 30));
        let e = parse_memory("9Pi").unwrap_err().to_string();
        assert!(e.contains("larger than any memory size"), "{e}");
    }

    #[test]
    fn spelling_round_trips() {
        assert_eq!(to_quantity_string(2 << 30), "2Gi");
        assert_eq!(to_quantity_string(1948 << 20), "1948Mi");
        assert_eq!(to_quantity_string(1000), "1000");
        assert_eq!(to_quantity_string(0), "0");
        assert_eq!(to_quantity_string(-(256 << 20)), "-256Mi");
        for b in [0i64, 1, 1024, 1 << 20, 3 << 30, 123_456_789] {
            assert_eq!(parse_bytes(&to_quantity_string(b)).unwrap(), b);
        }
    }

    #[test]
    fn human_sizes_are_binary() {
        assert_eq!(human(2 << 30), "2GiB");
        assert_eq!(human(264_937_472), "252.7MiB");
        assert_eq!(human(-(64 << 20)), "-64MiB");
        assert_eq!(human(512), "512B");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_bytes(&s);
            let _ = parse_millis(&s);
            let _ = parse_nanos(&s);
        }
        #[test]
        fn integers_with_binary_suffix_are_exact(n in 0i64..1_000_000, i in 0usize..4) {
            let (suf, m) = [("Ki", 1i64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("", 1)][i];
            proptest::prop_assert_eq!(parse_bytes(&format!("{n}{suf}")).unwrap(), n * m);
        }
    }
}
