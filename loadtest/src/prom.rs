//! Reading the Prometheus text format of `/metrics`, enough to sum counters
//! before and after a run. Pure.

use std::collections::BTreeMap;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Every sample of a `/metrics` body; lines that are not samples are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].rfind('}')? + open;
            (&line[..close + 1], &line[close + 1..])
        }
        None => {
            let end = line.find(char::is_whitespace)?;
            (&line[..end], &line[end..])
        }
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}')?)?),
        None => (head, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if s.is_empty() {
            return Some(labels);
        }
        let (name, rest) = s.split_once('=')?;
        let rest = rest.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        labels.insert(name.trim().to_owned(), value);
        s = &rest[end + 1..];
    }
}

/// The sum of every sample of `name` whose labels include all of `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| with.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP hlscdn_origin_requests_total Requests.
# TYPE hlscdn_origin_requests_total counter
hlscdn_origin_requests_total{method="GET",status="200"} 1234
hlscdn_origin_requests_total{method="GET",status="404"} 5
hlscdn_origin_requests_total{method="PUT",status="200"} 7
hlscdn_edge_cache_hits_total 42

hlscdn_x{a="q\"uo,te",b="2"} 1.5e3
hlscdn_edge_fetch_seconds_bucket{result="ok",le="+Inf"} 9 1700000000
garbage line
"#;

    #[test]
    fn sums_by_name_and_labels() {
        let s = parse(BODY);
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
        assert_eq!(sum(&s, "hlscdn_x", &[("a", "q\"uo,te")]), 1500.0);
        assert_eq!(
            sum(&s, "hlscdn_edge_fetch_seconds_bucket", &[("le", "+Inf")]),
            9.0
        );
    }
}
