//! Playlist rewriting cost: rendering a response from a cached template
//! (what every viewer request pays), scanning a fetched playlist into a
//! template (paid once per origin fetch), and, for comparison, the obvious
//! alternative: parse with `m3u8-rs`, rewrite each segment URI, write back.
//!
//! `cargo bench -p router --bench rewrite`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use router::rewrite::{RenderContext, ScanOptions, Template, scan};

const LIVE: &[u8] = include_bytes!("../tests/playlists/ffmpeg_ts_live_window.m3u8");
const VOD: &[u8] = include_bytes!("../tests/playlists/vod_5000_segments.m3u8");
const PLAYLIST_KEY: &str = "live/demo-1/240p/index.m3u8";
const EDGE: &str = "http://127.0.0.1:9001";
const MEDIA_QUERY: &str = "hdnts=exp=1763748000~acl=/live/demo-1/*~kid=k1~hmac=5d41402abc4b2a76b9719d911017c592e0b5c1f0a1b2c3d4e5f60718293a4b5c";
const PLAYLIST_QUERY: &str = "s=eyJlIjoiZWRnZS0xIiwidiI6InZpZXdlci00MiJ9.c2lnbmF0dXJl";

fn template(input: &[u8]) -> Arc<Template> {
    let bases = vec!["http://127.0.0.1:8000/".to_owned()];
    let options = ScanOptions {
        playlist_key: PLAYLIST_KEY,
        origin_bases: &bases,
    };
    Arc::new(scan(Bytes::copy_from_slice(input), &options).expect("bench playlists scan"))
}

fn ctx() -> RenderContext<'static> {
    RenderContext {
        edge_base: EDGE,
        media_query: Some(MEDIA_QUERY),
        playlist_query: PLAYLIST_QUERY,
    }
}

/// The alternative the router does not take: parse, rewrite every segment URI, serialize.
fn m3u8_rs_round_trip(input: &[u8], out: &mut Vec<u8>) {
    let Ok(m3u8_rs::Playlist::MediaPlaylist(mut playlist)) = m3u8_rs::parse_playlist_res(input) else {
        panic!("bench playlists are media playlists m3u8-rs reads");
    };
    let dir = PLAYLIST_KEY.rsplit_once('/').map_or("", |(d, _)| d);
    for segment in &mut playlist.segments {
        segment.uri = format!("{EDGE}/{dir}/{}?{MEDIA_QUERY}", segment.uri);
    }
    playlist.write_to(out).expect("write to a Vec");
}

fn bench_playlist(c: &mut Criterion, name: &str, input: &'static [u8]) {
    let cached = template(input);
    let ctx = ctx();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("render_from_template", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            black_box(&cached).render(black_box(&ctx), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("scan", |b| {
        let bytes = Bytes::from_static(input);
        let bases = vec!["http://127.0.0.1:8000/".to_owned()];
        let options = ScanOptions {
            playlist_key: PLAYLIST_KEY,
            origin_bases: &bases,
        };
        b.iter(|| scan(black_box(bytes.clone()), &options).map(|t| t.slots().len()))
    });
    group.bench_function("m3u8_rs_parse_rewrite_write", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            m3u8_rs_round_trip(black_box(input), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn rewrite(c: &mut Criterion) {
    bench_playlist(c, "live_6_segments", LIVE);
    bench_playlist(c, "vod_5000_segments", VOD);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = rewrite
}
criterion_main!(benches);
