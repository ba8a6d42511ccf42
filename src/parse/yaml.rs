//! Reading YAML: `serde-saphyr` (the YAML crate kube-rs itself uses), set up to read what the
//! deprecated `serde_yaml` 0.9 read before it: no size budget (a 20,000-VM `kubectl get -o yaml`
//! is 40 MiB), repeated keys handed to the visitor (maps keep the last, structs refuse), YAML 1.2
//! booleans only, and `007`, `1_000` and plain `null` kept as text where a string is expected or
//! the type is inferred. Messages are one line (no source snippet).

use serde::de::DeserializeOwned;

pub use serde_saphyr::Error;

/// The reader's settings (see the module's note).
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: None,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        null_as_string: true,
        with_snippet: false,
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

/// Every document of a YAML stream that is not empty, in order; an error says which document
/// (counting from 1, empty documents not counted) it is in.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, (usize, Error)> {
    let mut reader = text.as_bytes();
    let mut out = Vec::new();
    for doc in serde_saphyr::read_with_options(&mut reader, options()) {
        match doc {
            Ok(d) => out.push(d),
            Err(e) => return Err((out.len() + 1, e)),
        }
    }
    Ok(out)
}
