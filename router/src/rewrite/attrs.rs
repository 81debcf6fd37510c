//! RFC 8216 §4.2 attribute lists: `NAME=VALUE` pairs separated by commas,
//! where a value is either a quoted string (which may hold commas, never a
//! double quote or a line break) or an unquoted token that runs to the next
//! comma.
//!
//! The parser is strict about structure and lenient about whitespace: spaces
//! or tabs around names, `=` and commas are skipped (packagers write
//! `BANDWIDTH=1, CODECS=...`), a trailing comma is accepted, and anything
//! else that does not fit the grammar — an unterminated quote, bytes after a
//! closing quote, a name without `=`, a name with characters outside
//! `[A-Za-z0-9_-]` — makes the whole list malformed. A tag with a malformed
//! list gets no URI slot at all: what cannot be read for sure is left alone.

use std::ops::Range;

/// One attribute: byte ranges relative to the start of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// The name, without surrounding whitespace.
    pub(crate) name: Range<usize>,
    /// The value: inside the quotes for a quoted string, trimmed otherwise.
    pub(crate) value: Range<usize>,
    /// Whether the value was a quoted string.
    pub(crate) quoted: bool,
}

/// The list was not an RFC 8216 attribute list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Parses `list` (the bytes after a tag's colon, without the line ending)
/// into `out`, which is cleared first.
pub(crate) fn parse(list: &[u8], out: &mut Vec<Attr>) -> Result<(), Malformed> {
    out.clear();
    let len = list.len();
    let mut i = 0;
    loop {
        while i < len && is_space(list[i]) {
            i += 1;
        }
        if i == len {
            // Empty list, or a trailing comma.
            return Ok(());
        }
        let name_start = i;
        while i < len && is_name_byte(list[i]) {
            i += 1;
        }
        let name_end = i;
        while i < len && is_space(list[i]) {
            i += 1;
        }
        if name_start == name_end || i == len || list[i] != b'=' {
            return Err(Malformed);
        }
        i += 1;
        while i < len && is_space(list[i]) {
            i += 1;
        }
        let (value, quoted) = if i < len && list[i] == b'"' {
            let start = i + 1;
            let close = list[start..].iter().position(|&b| b == b'"').ok_or(Malformed)?;
            let end = start + close;
            i = end + 1;
            while i < len && is_space(list[i]) {
                i += 1;
            }
            (start..end, true)
        } else {
            let start = i;
            while i < len && list[i] != b',' {
                if list[i] == b'"' {
                    // A quote inside an unquoted value: not the grammar.
                    return Err(Malformed);
                }
                i += 1;
            }
            let mut end = i;
            while end > start && is_space(list[end - 1]) {
                end -= 1;
            }
            (start..end, false)
        };
        out.push(Attr {
            name: name_start..name_end,
            value,
            quoted,
        });
        if i == len {
            return Ok(());
        }
        if list[i] != b',' {
            return Err(Malformed);
        }
        i += 1;
    }
}

/// The value of the first attribute called `name`, if any.
pub(crate) fn find<'a>(list: &'a [u8], attrs: &[Attr], name: &[u8]) -> Option<&'a [u8]> {
    attrs
        .iter()
        .find(|a| &list[a.name.clone()] == name)
        .map(|a| &list[a.value.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &str) -> Result<Vec<(String, String, bool)>, Malformed> {
        let mut out = Vec::new();
        parse(list.as_bytes(), &mut out)?;
        Ok(out
            .iter()
            .map(|a| {
                (
                    list[a.name.clone()].to_owned(),
                    list[a.value.clone()].to_owned(),
                    a.quoted,
                )
            })
            .collect())
    }

    fn p(name: &str, value: &str, quoted: bool) -> (String, String, bool) {
        (name.to_owned(), value.to_owned(), quoted)
    }

    #[test]
    fn quoted_values_keep_commas_and_equals() {
        assert_eq!(
            pairs(r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",NAME="a=b, URI=c""#),
            Ok(vec![
                p("BANDWIDTH", "1280000", false),
                p("CODECS", "avc1.4d401f,mp4a.40.2", true),
                p("NAME", "a=b, URI=c", true),
            ])
        );
    }

    #[test]
    fn whitespace_and_trailing_comma_are_tolerated() {
        assert_eq!(
            pairs(" METHOD = AES-128 , URI = \"k.key\" ,"),
            Ok(vec![p("METHOD", "AES-128", false), p("URI", "k.key", true)])
        );
        assert_eq!(pairs(""), Ok(vec![]));
        assert_eq!(pairs("   "), Ok(vec![]));
    }

    #[test]
    fn empty_values() {
        assert_eq!(pairs(r#"A=,B="""#), Ok(vec![p("A", "", false), p("B", "", true)]));
    }

    #[test]
    fn malformed_lists() {
        assert_eq!(pairs(r#"URI="unterminated"#), Err(Malformed));
        assert_eq!(pairs(r#"URI="a"b,X=1"#), Err(Malformed));
        assert_eq!(pairs("10.0,title"), Err(Malformed));
        assert_eq!(pairs("=x"), Err(Malformed));
        assert_eq!(pairs("A=1,,B=2"), Err(Malformed));
        assert_eq!(pairs(r#"A=x"y""#), Err(Malformed));
        assert_eq!(pairs(r#"N"AME=1"#), Err(Malformed));
    }

    #[test]
    fn find_matches_whole_names_only() {
        let list = br#"X-URI="a",URI="b",XURI="c""#;
        let mut attrs = Vec::new();
        assert!(parse(list, &mut attrs).is_ok());
        assert_eq!(find(list, &attrs, b"URI"), Some(&b"b"[..]));
        assert_eq!(find(list, &attrs, b"SERVER-URI"), None);
    }
}
