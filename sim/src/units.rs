//! Kubernetes quantities as the simulated cluster reads and writes them: exact fractions (what
//! `k8s.io/apimachinery` `resource.Quantity` holds), whole bytes rounded up (its `Value()`), and
//! the spelling users write (`2Gi`). The simulator keeps its own reading so that it never shares
//! a mistake with the tool it tests.

use std::fmt;

/// One mebibyte.
pub const MI: i64 = 1 << 20;

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a Kubernetes quantity ({why})")]
pub struct QuantityError {
    pub text: String,
    pub why: &'static str,
}

/// A quantity as the fraction `num / den` (den > 0), exact like apimachinery's inf.Dec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    pub num: i128,
    pub den: i128,
}

impl Exact {
    pub const ZERO: Exact = Exact { num: 0, den: 1 };

    pub fn whole(n: i64) -> Exact {
        Exact {
            num: i128::from(n),
            den: 1,
        }
    }

    /// Read a quantity: sign, decimal number, then a binary (`Ki`…`Ei`) or decimal (`n`…`E`)
    /// suffix or an exponent (`e3`, `E-2`).
    pub fn parse(text: &str) -> Result<Exact, QuantityError> {
        let fail = |why| QuantityError {
            text: text.to_string(),
            why,
        };
        let s = text.trim();
        let (sign, s) = match s.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, s.strip_prefix('+').unwrap_or(s)),
        };
        let digits_end = s
            .find(|c: char| c != '.' && !c.is_ascii_digit())
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(fail("no number"));
        }
        if fraction.contains('.') || whole.len() + fraction.len() > 30 {
            return Err(fail("not a decimal number"));
        }
        let mut value = Exact::ZERO;
        for c in whole.bytes().chain(fraction.bytes()) {
            value.num = value.num * 10 + i128::from(c - b'0');
        }
        value.den = 10i128.pow(fraction.len() as u32);
        let (times, per) = scale_of(suffix).ok_or_else(|| fail("unknown suffix"))?;
        value.num = value
            .num
            .checked_mul(times)
            .ok_or_else(|| fail("too large"))?
            * sign;
        value.den = value
            .den
            .checked_mul(per)
            .ok_or_else(|| fail("too small"))?;
        Ok(value)
    }

    /// The smallest whole number not below this one (apimachinery's `Value()`).
    pub fn ceil(self) -> i64 {
        let q = self.num.div_euclid(self.den) + i128::from(self.num.rem_euclid(self.den) != 0);
        i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
    }

    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    pub fn plus(self, other: Exact) -> Exact {
        Exact {
            num: self.num * other.den + other.num * self.den,
            den: self.den * other.den,
        }
    }
}

/// Equal as numbers (`1Gi` and `1073741824`, `1` and `1000m`).
pub fn same(a: Exact, b: Exact) -> bool {
    a.num * b.den == b.num * a.den
}

/// (multiplier, divisor) of a suffix.
fn scale_of(suffix: &str) -> Option<(i128, i128)> {
    const NAMED: [(&str, i128, i128); 16] = [
        ("", 1, 1),
        ("Ki", 1 << 10, 1),
        ("Mi", 1 << 20, 1),
        ("Gi", 1 << 30, 1),
        ("Ti", 1 << 40, 1),
        ("Pi", 1 << 50, 1),
        ("Ei", 1 << 60, 1),
        ("n", 1, 1_000_000_000),
        ("u", 1, 1_000_000),
        ("m", 1, 1_000),
        ("k", 1_000, 1),
        ("M", 1_000_000, 1),
        ("G", 1_000_000_000, 1),
        ("T", 1_000_000_000_000, 1),
        ("P", 1_000_000_000_000_000, 1),
        ("E", 1_000_000_000_000_000_000, 1),
    ];
    if let Some(&(_, times, per)) = NAMED.iter().find(|(name, _, _)| *name == suffix) {
        return Some((times, per));
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let power: i32 = exponent.parse().ok().filter(|p: &i32| p.abs() <= 30)?;
    let ten = 10i128.pow(power.unsigned_abs());
    Some(if power < 0 { (1, ten) } else { (ten, 1) })
}

/// Whole bytes of a quantity string (rounded up), `None` when it is not one.
pub fn bytes_of(text: &str) -> Option<i64> {
    Exact::parse(text).ok().map(Exact::ceil)
}

/// A byte count as users write it: the largest binary unit that divides it (`2Gi`, `1948Mi`),
/// else plain bytes.
pub fn spell(bytes: i64) -> String {
    let units = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    units
        .iter()
        .find(|(_, shift)| bytes != 0 && bytes % (1i64 << shift) == 0)
        .map(|(unit, shift)| format!("{}{unit}", bytes >> shift))
        .unwrap_or_else(|| bytes.to_string())
}

/// A quantity in a scenario, kept as written (YAML numbers too).
#[derive(Clone, PartialEq, Eq)]
pub struct Quantity(String);

impl Quantity {
    pub fn new(text: impl Into<String>) -> Quantity {
        Quantity(text.into())
    }

    /// Whole bytes (rounded up).
    pub fn bytes(&self) -> Result<i64, QuantityError> {
        Exact::parse(&self.0).map(Exact::ceil)
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
        d.deserialize_any(QuantityVisitor)
    }
}

/// A quantity is a string, or a YAML number (`memory: 1073741824`) kept as the text the YAML
/// reader before this one (`serde_yaml` 0.9) made of it: integers in decimal (`0x10` is `16`),
/// floats as `ryu` writes them (`1e3` is `1000.0`, `.5` is `0.5`).
struct QuantityVisitor;

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as 2Gi")
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
        Ok(Quantity(if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v < 0.0 { "-.inf" } else { ".inf" }.to_string()
        } else {
            ryu::Buffer::new().format_finite(v).to_string()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubernetes_accepts() {
        assert_eq!(bytes_of("2Gi"), Some(2 << 30));
        assert_eq!(bytes_of("60M"), Some(60_000_000));
        assert_eq!(bytes_of("145.509G"), Some(145_509_000_000));
        assert_eq!(bytes_of("1.5Gi"), Some(1_610_612_736));
        assert_eq!(bytes_of("1e9"), Some(1_000_000_000));
        assert_eq!(bytes_of("12e-1"), Some(2));
        assert_eq!(bytes_of("100m"), Some(1));
        assert_eq!(bytes_of(".5Ki"), Some(512));
        assert_eq!(bytes_of("-100Mi"), Some(-100 * MI));
        for bad in ["", "Gi", "lots", "1.2.3", "1GB", "1 Gi", "1e"] {
            assert_eq!(bytes_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compares_and_adds_exactly() {
        let p = |s| Exact::parse(s).unwrap();
        assert!(same(p("1"), p("1000m")));
        assert!(same(p("1Gi"), p("1073741824")));
        assert!(!same(p("1G"), p("1Gi")));
        assert_eq!(p("100m").plus(p("100m")).plus(p("800m")).ceil(), 1);
    }

    #[test]
    fn spells_like_users_write() {
        assert_eq!(spell(2 << 30), "2Gi");
        assert_eq!(spell(1948 * MI), "1948Mi");
        assert_eq!(spell(1000), "1000");
        assert_eq!(spell(0), "0");
        assert_eq!(spell(-256 * MI), "-256Mi");
    }
}
