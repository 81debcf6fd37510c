//! Configuration plumbing shared by every binary: TOML files read with
//! messages that never quote a secret, and `KEY=VALUE` arguments.

/// Reads an optional TOML file into `T` (its default when there is no
/// file); the message names the file, the line and, from serde, the key at
/// fault.
pub fn read_toml<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
) -> Result<T, String> {
    let Some(path) = path else { return Ok(T::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), toml_error(&text, &e)))
}

/// A TOML error as a one-line message that never quotes the file: the
/// excerpt `toml`'s `Display` adds is the offending line, and serde's
/// "invalid type" messages quote the value, either of which may be a secret
/// (`fleet_token = …`, `signing_keys = "k1:…"`).
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().trim().replace('\n', " ");
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let kind = found.split_whitespace().next().unwrap_or("value");
            message = format!("{prefix}{kind}, expected {expected}");
            break;
        }
    }
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Parses a `KEY=VALUE` command-line argument.
pub fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_name_the_line_but_never_quote_it() {
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Secrets {
            token: Option<String>,
            keys: Option<Vec<String>>,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, expect) in [
            ("tokn = \"SECRET-1\"\n", "line 1, column 1: unknown field `tokn`"),
            ("\ntoken = \"SECRET-1\n", "line 2"),
            ("token = \"SECRET-1\" x\n", "line 1"),
            (
                "keys = \"k1:SECRET-1\"\n",
                "line 1, column 8: invalid type: string, expected a sequence",
            ),
            ("token = 1234567890\n", "invalid type: integer, expected a string"),
        ] {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            let error = read_toml::<Secrets>(Some(&path)).err().unwrap_or_default();
            assert!(error.contains(expect), "{text:?}: {error}");
            assert!(
                !error.contains("SECRET") && !error.contains("1234567890"),
                "{error}"
            );
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}
