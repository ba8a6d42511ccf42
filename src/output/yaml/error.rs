//! What can go wrong writing YAML.

use serde::ser;

/// Why a value could not be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("writing YAML: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write YAML: {0}")]
    Unsupported(String),
}

impl ser::Error for YamlError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        YamlError::Unsupported(msg.to_string())
    }
}
