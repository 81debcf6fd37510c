//! A configured secret (a bearer token, a `KID:SECRET` signing key) that
//! never shows in `Debug` output, so that a configuration or a server state
//! can be logged or printed in a panic without leaking it. Read it with
//! [`Secret::expose`] where it is used, and nowhere else.

use std::fmt;

use serde::Deserialize;

/// A secret string: `Debug` prints `Secret(<redacted>)`; there is no `Display`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let secret = Secret::from("hunter2-but-longer");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(
            format!("{:?}", Some(vec![secret.clone()])),
            "Some([Secret(<redacted>)])"
        );
        assert_eq!(secret.expose(), "hunter2-but-longer");
        let parsed: Secret = toml::from_str::<std::collections::BTreeMap<String, Secret>>("t = \"abc\"")
            .expect("toml")
            .remove("t")
            .expect("key");
        assert_eq!(parsed.expose(), "abc");
    }
}
