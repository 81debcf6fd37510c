//! Server-sent events: a parser for the `text/event-stream` format (pure), and
//! a reader that follows one stream until it ends, errors or goes quiet.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;

/// One event: its type (`message` when the stream names none) and its data
/// (several `data:` lines joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub event: String,
    /// The `data:` lines.
    pub data: String,
}

/// Incremental parser: feed it bytes as they arrive, get whole events.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl Parser {
    /// Feeds a chunk; appends the events it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        for &byte in chunk {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&String::from_utf8_lossy(&line), out);
            } else {
                self.line.push(byte);
            }
        }
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let event = std::mem::take(&mut self.event);
                out.push(Event {
                    event: if event.is_empty() { "message".into() } else { event },
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry: not needed here
        }
    }
}

/// Follows the event stream at `url`, calling `on_event` for each event,
/// until the stream ends or fails (an error) or sends nothing, not even a
/// keep-alive, for `idle` (an error too). The caller reconnects.
pub async fn follow(
    client: &reqwest::Client,
    url: &str,
    idle: Duration,
    mut on_event: impl FnMut(Event),
) -> anyhow::Result<()> {
    let response = tokio::time::timeout(idle, client.get(url).header("accept", "text/event-stream").send())
        .await
        .with_context(|| format!("GET {url}: no answer within {idle:?}"))?
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut parser = Parser::default();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::time::timeout(idle, body.next())
            .await
            .with_context(|| format!("{url}: nothing for {idle:?}"))?;
        match chunk {
            Some(Ok(bytes)) => {
                parser.push(&bytes, &mut events);
                for event in events.drain(..) {
                    on_event(event);
                }
            }
            Some(Err(error)) => return Err(error).with_context(|| format!("reading {url}")),
            None => bail!("{url}: the stream ended"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk, &mut out);
        }
        out
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let stream =
            b": keep-alive\n\nevent: fleet\ndata: {\"a\":1}\n\ndata:x\ndata: y\r\n\r\nevent: only\n\n";
        assert_eq!(
            parse(&[stream]),
            vec![
                Event {
                    event: "fleet".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    proptest! {
        #[test]
        fn chunking_does_not_matter(cut in proptest::collection::vec(0usize..80, 0..6)) {
            let stream: &[u8] = b"event: fleet\ndata: {\"edges\":[\"\xc3\xa9\"]}\n\n: c\n\nevent: fleet\ndata: 2\n\n";
            let whole = parse(&[stream]);
            let mut cuts: Vec<usize> = cut.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for c in cuts {
                chunks.push(&stream[from..c]);
                from = c;
            }
            chunks.push(&stream[from..]);
            prop_assert_eq!(parse(&chunks), whole.clone());
            prop_assert_eq!(whole.len(), 2);
        }
    }
}
