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

/// Query parameter names whose values are credentials (compared without
/// case, by substring): presigned URLs, SAS tokens, API keys.
const SECRET_QUERY_KEYS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "signature",
    "sig",
    "key",
    "credential",
    "auth",
];

/// `url` with its credentials masked, for logs and messages: the userinfo
/// (`user:password@`) becomes `***@`, and the value of every query
/// parameter whose name looks like a credential becomes `***`. Text that
/// is not a URL is masked the same way wherever `://` starts a URL in it.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ',' | ']'))
            .unwrap_or(after.len());
        out.push_str(&redact_one(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// One URL after its `://`.
fn redact_one(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let mut out = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let (path, fragment) = path.split_once('#').map_or((path, None), |(p, f)| (p, Some(f)));
    match path.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) if is_secret_key(name) => {
                        out.push_str(name);
                        out.push_str("=***");
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(path),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_QUERY_KEYS.iter().any(|k| name.contains(k))
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn userinfo_and_credential_parameters_are_masked() {
        assert_eq!(
            redact_url("http://admin:S3cret@host:8000/base"),
            "http://***@host:8000/base"
        );
        assert_eq!(
            redact_url("s3://bucket/prefix?X-Amz-Signature=abc&region=eu&X-Amz-Credential=k#f"),
            "s3://bucket/prefix?X-Amz-Signature=***&region=eu&X-Amz-Credential=***#f"
        );
        assert_eq!(
            redact_url("error sending request for url (https://u:p@h/x?token=t): refused"),
            "error sending request for url (https://***@h/x?token=***): refused"
        );
        assert_eq!(redact_url("file:///var/lib/hlscdn"), "file:///var/lib/hlscdn");
        assert_eq!(redact_url("no url here"), "no url here");
        assert_eq!(
            redact_url("http://h/p?a@b=c"),
            "http://h/p?a@b=c",
            "an @ after the authority is not userinfo"
        );
    }
}
