//! Fuzz target: scan arbitrary bytes as a playlist and render the template.
//!
//! Never panics, and for every input the scanner accepts:
//!
//! - slots are in order, non-empty, inside the input, and each sits either
//!   in the attribute list of its own URI-bearing tag (`#EXT-X-KEY:...`) or
//!   alone on a URI line — never in an unknown tag, a comment or elsewhere;
//! - the output is the input with each slot replaced by what the template
//!   renders for it: every byte outside the slots is unchanged;
//! - no rendered slot holds a line break;
//! - the length hint is exact, and rendering twice gives the same bytes.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use router::rewrite::{RenderContext, ScanOptions, scan};

const ORIGIN_BASES: [&str; 2] = [
    "http://origin.example.com/",
    "https://origin.example.com:8443/hls/",
];

fuzz_target!(|data: &[u8]| {
    let bases: Vec<String> = ORIGIN_BASES.iter().map(|b| (*b).to_owned()).collect();
    let options = ScanOptions {
        playlist_key: "live/demo/hd/index.m3u8",
        origin_bases: &bases,
    };
    let Ok(template) = scan(Bytes::copy_from_slice(data), &options) else {
        return;
    };
    let ctx = RenderContext {
        edge_base: "http://edge.example.net:9001",
        media_query: Some("hdnts=exp=1~acl=/live/*~hmac=00"),
        playlist_query: "s=TOKEN",
    };
    let mut out = Vec::new();
    template.render(&ctx, &mut out);
    assert_eq!(out.len(), template.rendered_len_hint(&ctx));
    let mut again = Vec::new();
    template.render(&ctx, &mut again);
    assert!(again == out, "rendering is not deterministic");

    let mut at = 0;
    let mut prev = 0;
    for slot in template.slots() {
        let range = slot.range();
        assert!(prev <= range.start && range.start < range.end && range.end <= data.len());
        assert!(!data[range.clone()].iter().any(|&b| b == b'\n' || b == b'\r'));
        let line_start = data[..range.start]
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(0, |i| i + 1);
        match slot.tag().attribute() {
            Some(_) => {
                let prefix = format!("#{}:", slot.tag().name());
                assert!(
                    data[line_start..].starts_with(prefix.as_bytes()),
                    "slot outside its tag"
                );
            }
            None => {
                assert!(
                    data[line_start..range.start]
                        .iter()
                        .all(|&b| b == b' ' || b == b'\t')
                );
                assert_ne!(data[range.start], b'#', "a URI line never starts with #");
            }
        }
        let run = &data[prev..range.start];
        assert!(out[at..at + run.len()] == *run, "bytes outside slots changed");
        at += run.len();
        let mut rendered = Vec::new();
        template.render_slot(slot, &ctx, &mut rendered);
        assert!(!rendered.iter().any(|&b| b == b'\n' || b == b'\r'));
        assert!(out[at..at + rendered.len()] == rendered[..]);
        at += rendered.len();
        prev = range.end;
    }
    assert!(out[at..] == data[prev..], "bytes after the last slot changed");
});
