//! The Prometheus text format (0.0.4) that every hls-cdn server renders at
//! `/metrics`, read back: each sample line as a metric name, its labels and
//! its value, and the lookups the tools make (a sum over matching labels,
//! one exact series).
//!
//! Comments (`# HELP`, `# TYPE`), blank lines and malformed lines are
//! skipped; a trailing timestamp is ignored.

use std::collections::BTreeMap;
use std::str::FromStr;

/// One sample: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (`hlscdn_edge_cache_hits_total`, `…_bucket`, …).
    pub name: String,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
    /// Value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// Whether every `(label, value)` of `with` is among the labels.
    pub fn has_labels(&self, with: &[(&str, &str)]) -> bool {
        with.iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|x| x == v))
    }
}

/// A series as written in the text format: `name` or `name{label="value",…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
}

/// Why a series could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Prometheus series (`name` or `name{{label=\"value\",…}}`): {0:?}")]
pub struct BadSeries(String);

impl FromStr for Series {
    type Err = BadSeries;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match read_series(s.trim()) {
            Some((series, "")) => Ok(series),
            _ => Err(BadSeries(s.to_owned())),
        }
    }
}

/// Every sample of a `/metrics` body, in order.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// The sum of every sample of `name` whose labels include all of `with`
/// (0 when there is none).
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && s.has_labels(with))
        .map(|s| s.value)
        .sum()
}

/// The value of exactly `series` (same name, same labels), if present.
pub fn value(samples: &[Sample], series: &Series) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == series.name && s.labels == series.labels)
        .map(|s| s.value)
}

/// A sample line; `None` for comments, blank and malformed lines.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let (Series { name, labels }, rest) = read_series(line)?;
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next()?.parse().ok()?;
    let timestamp_ok = fields.next().is_none_or(|t| t.parse::<i64>().is_ok());
    (timestamp_ok && fields.next().is_none() && rest.starts_with([' ', '\t'])).then_some(Sample {
        name,
        labels,
        value,
    })
}

/// Reads `name{labels}` at the start of `s`; returns it and what follows.
fn read_series(s: &str) -> Option<(Series, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &s[end..];
    if let Some(inner) = rest.strip_prefix('{') {
        rest = read_labels(inner, &mut labels)?;
    }
    Some((
        Series {
            name: name.to_owned(),
            labels,
        },
        rest,
    ))
}

/// Reads `label="value",…}` into `labels`; returns what follows the `}`.
fn read_labels<'a>(mut s: &'a str, labels: &mut BTreeMap<String, String>) -> Option<&'a str> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Some(rest);
        }
        let (name, rest) = s.split_once('=')?;
        let name = name.trim();
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return None;
        }
        let (value, rest) = read_quoted(rest.trim_start().strip_prefix('"')?)?;
        labels.insert(name.to_owned(), value);
        s = rest.trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

/// Reads an escaped label value up to its closing quote; returns it and
/// what follows the quote.
fn read_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            '"' => return Some((value, &s[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = r#"# HELP hlscdn_origin_requests_total Requests.
# TYPE hlscdn_origin_requests_total counter
hlscdn_origin_requests_total{method="GET",status="200"} 1234
hlscdn_origin_requests_total{method="GET",status="404"} 5
hlscdn_origin_requests_total{method="PUT",status="200"} 7
hlscdn_edge_cache_hits_total 42

hlscdn_x{a="q\"uo,te} 9",b="2"} 1.5e3
hlscdn_edge_fetch_seconds_bucket{result="ok",le="+Inf"} 9 1700000000
hlscdn_gauge{} -Inf
garbage line
hlscdn_no_value{a="1"}
hlscdn_unterminated{a="1} 3
"#;

    #[test]
    fn sums_by_name_and_labels() {
        let s = parse(BODY);
        assert_eq!(s.len(), 7, "{s:?}");
        assert_eq!(sum(&s, "hlscdn_origin_requests_total", &[]), 1246.0);
        assert_eq!(
            sum(&s, "hlscdn_origin_requests_total", &[("method", "GET")]),
            1239.0
        );
        assert_eq!(
            sum(
                &s,
                "hlscdn_origin_requests_total",
                &[("method", "GET"), ("status", "200")]
            ),
            1234.0
        );
        assert_eq!(sum(&s, "hlscdn_edge_cache_hits_total", &[]), 42.0);
        assert_eq!(sum(&s, "missing", &[]), 0.0);
        assert_eq!(sum(&s, "hlscdn_x", &[("a", "q\"uo,te} 9")]), 1500.0);
        assert_eq!(
            sum(&s, "hlscdn_edge_fetch_seconds_bucket", &[("le", "+Inf")]),
            9.0
        );
        assert_eq!(sum(&s, "hlscdn_gauge", &[]), f64::NEG_INFINITY);
    }

    #[test]
    fn looks_up_one_exact_series() {
        let s = parse(BODY);
        let series = |text: &str| text.parse::<Series>().expect("series");
        assert_eq!(
            value(
                &s,
                &series(r#"hlscdn_origin_requests_total{status="404",method="GET"}"#)
            ),
            Some(5.0)
        );
        assert_eq!(
            value(&s, &series(r#"hlscdn_origin_requests_total{method="GET"}"#)),
            None,
            "a subset of the labels is another series"
        );
        assert_eq!(value(&s, &series("hlscdn_edge_cache_hits_total")), Some(42.0));
        assert_eq!(value(&s, &series("hlscdn_gauge")), Some(f64::NEG_INFINITY));
        for bad in ["", "1abc", "a{b=1}", "a{b=\"1\"} 2", "a b"] {
            assert!(bad.parse::<Series>().is_err(), "{bad:?}");
        }
    }

    /// A sample as `metrics-exporter-prometheus` writes it.
    fn render(sample: &Sample) -> String {
        let labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| {
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let value = match sample.value {
            v if v.is_nan() => "NaN".to_owned(),
            f64::INFINITY => "+Inf".to_owned(),
            f64::NEG_INFINITY => "-Inf".to_owned(),
            v => v.to_string(),
        };
        format!("{}{labels} {value}", sample.name)
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", ".{0,12}", 0..4),
            proptest::num::f64::ANY,
        )
            .prop_map(|(name, labels, value)| Sample { name, labels, value })
    }

    proptest! {
        #[test]
        fn rendered_samples_read_back(samples in proptest::collection::vec(sample(), 0..8)) {
            let mut text = String::from("# TYPE x counter\n");
            for s in &samples {
                text.push_str(&render(s));
                text.push('\n');
            }
            let read = parse(&text);
            prop_assert_eq!(read.len(), samples.len());
            for (read, written) in read.iter().zip(&samples) {
                prop_assert_eq!(&read.name, &written.name);
                prop_assert_eq!(&read.labels, &written.labels);
                prop_assert!(
                    read.value == written.value || read.value.is_nan() && written.value.is_nan(),
                    "{} != {}", read.value, written.value
                );
                let head = render(written);
                let series: Series = head[..head.rfind(' ').unwrap_or(head.len())]
                    .parse()
                    .map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(&series.labels, &written.labels);
            }
        }

        #[test]
        fn any_text_parses_without_panicking(text in ".{0,200}") {
            let _ = parse(&text);
            let _ = text.parse::<Series>();
        }
    }
}
