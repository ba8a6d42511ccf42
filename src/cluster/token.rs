//! A bearer token that never shows itself: `Debug` prints `Token(<redacted>)`, and only
//! [`Token::expose`] gives the text, where the client is built.

use std::fmt;

/// A bearer token (`--token`).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// The token's text: only for the request's `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl From<&str> for Token {
    fn from(s: &str) -> Token {
        Token::new(s)
    }
}

impl From<String> for Token {
    fn from(s: String) -> Token {
        Token(s)
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Token, Self::Err> {
        Ok(Token::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_text() {
        let t = Token::from("s3cr3t-token-value");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert_eq!(format!("{:?}", Some(t.clone())), "Some(Token(<redacted>))");
        assert_eq!(t.expose(), "s3cr3t-token-value");
    }
}
