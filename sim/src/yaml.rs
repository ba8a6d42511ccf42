//! Reading YAML (scenario files, apply-patch bodies) with `serde-saphyr`, set up to read what
//! the deprecated `serde_yaml` 0.9 read before it: YAML 1.2 booleans only (`yes`, `on` stay
//! text), `007` and `1_000` kept as text, repeated keys handed on (maps keep the last, structs
//! refuse), `<<` an ordinary key (no merging), `.inf` and `.nan` numbers (JSON has none: null),
//! no size budget. Messages are one line (no source snippet).

use serde::de::DeserializeOwned;

pub use serde_saphyr::Error;

/// The reader's settings (see the module's note).
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: None,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        null_as_string: true,
        with_snippet: false,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
    }
}

/// One YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// One YAML document from bytes.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_saphyr::from_slice_with_options(bytes, options())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    /// What `serde_yaml` 0.9.34 read into a JSON value for `v: <text>` (run before it was
    /// replaced): YAML 1.2 booleans, `0o`/`0x`/`0b` integers, leading-zero and underscored
    /// digits as text, non-finite floats as null (JSON has none), `<<` as an ordinary key.
    #[test]
    fn reads_values_as_serde_yaml_did() {
        let cases: [(&str, Value); 38] = [
            ("yes", json!("yes")),
            ("no", json!("no")),
            ("on", json!("on")),
            ("off", json!("off")),
            ("y", json!("y")),
            ("True", json!(true)),
            ("false", json!(false)),
            ("0o17", json!(15)),
            ("017", json!("017")),
            ("0x1F", json!(31)),
            ("0b101", json!(5)),
            ("1e3", json!(1000.0)),
            ("1.5", json!(1.5)),
            (".5", json!(0.5)),
            ("1.", json!(1.0)),
            ("-0.0", json!(-0.0)),
            ("-0", json!(0)),
            ("+1", json!(1)),
            ("1_000", json!("1_000")),
            ("~", Value::Null),
            ("null", Value::Null),
            ("", Value::Null),
            (".inf", Value::Null),
            (".nan", Value::Null),
            ("'quoted'", json!("quoted")),
            ("2024-01-01", json!("2024-01-01")),
            ("12:30:00", json!("12:30:00")),
            ("18446744073709551615", json!(18_446_744_073_709_551_615u64)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("!!str 123", json!("123")),
            ("!!int '5'", json!(5)),
            ("!!float 5", json!(5.0)),
            ("\"\\u00e9\"", json!("é")),
            ("[1, yes, ~]", json!([1, "yes", null])),
            ("{x: 017}", json!({"x": "017"})),
            ("'007'", json!("007")),
            ("\"1e3\"", json!("1e3")),
            ("<<", json!("<<")),
        ];
        for (text, want) in cases {
            let got: Value = super::from_str(&format!("v: {text}\n")).unwrap();
            assert_eq!(got["v"], want, "v: {text}");
        }
    }

    #[test]
    fn maps_keep_the_last_of_repeated_keys_and_do_not_merge() {
        let got: Value = super::from_str("a: 1\na: 2\nb: &x {c: 1}\nd: {<<: *x}\n").unwrap();
        assert_eq!(got, json!({"a": 2, "b": {"c": 1}, "d": {"<<": {"c": 1}}}));
    }

    #[test]
    fn refuses_what_serde_yaml_refused() {
        for bad in ["a: 1\n---\nb: 2\n", "a: [", "{a: 1", "v: !!bool yes"] {
            assert!(super::from_str::<Value>(bad).is_err(), "{bad:?}");
        }
    }
}
