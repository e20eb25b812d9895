//! A type for credential values that never shows them.

use std::fmt;

/// A secret string (token, password, private key). `Debug` and `Display` print `[redacted]`;
/// there is no `Serialize`, so it cannot leak into JSON, YAML, metrics or `/status` by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value and registers it with the process-wide redactor
    /// ([`crate::redact::register`]), so that no output shows it in any form. Surrounding
    /// whitespace (a trailing newline in a mounted file) is removed, since no credential the
    /// forges issue contains it.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        crate::redact::register(&value);
        let trimmed = value.trim();
        if trimmed.len() == value.len() {
            SecretString(value)
        } else {
            SecretString(trimmed.to_string())
        }
    }

    /// The secret itself, for building an authentication header. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an unset variable or an empty file).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = SecretString::new("ghp_abcdef\n");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "SecretString([redacted])");
        assert_eq!(
            format!("{:?}", Some(&secret)),
            "Some(SecretString([redacted]))"
        );
        assert_eq!(secret.expose(), "ghp_abcdef");
    }
}
