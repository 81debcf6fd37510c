//! End to end, issue 13 item 9: a stream whose rendition directory and
//! segment names hold a space, `%`, `"` and a non-ASCII letter plays through
//! a real `hlscdn-origin --store file://…`, a real `hlscdn-router` and a real
//! `hlscdn-edge`, both with the same `--signing-key`: the media playlist is
//! valid (m3u8-rs parses it, every segment URI is a URL) and every segment
//! fetched through the edge with its signed URL answers 200, not 403.

use test_kit as common;

use common::{Server, client};
use reqwest::StatusCode;

const FLEET_TOKEN: &str = "fleet-token-for-tests-0123";
const INGEST_TOKEN: &str = "ingest-token-for-tests-0123";
const SIGNING_KEY: &str = "k1:0123456789abcdef0123456789abcdef";

/// The rendition directory: a space, `"`, `%` and `é`.
const RENDITION: &str = "r \"q\" 100% \u{e9}";

/// `http://host/` + the segments, each percent-encoded as a URL path segment.
fn url_of(base: &str, segments: &[&str]) -> url::Url {
    let mut url = url::Url::parse(base).expect("base url");
    url.path_segments_mut().expect("a base").clear().extend(segments);
    url
}

async fn put(origin: &Server, segments: &[&str], body: Vec<u8>) {
    let url = url_of(&origin.url("/"), segments);
    let r = client()
        .put(url.as_str())
        .bearer_auth(INGEST_TOKEN)
        .body(body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED, "publishing {url}");
}

#[tokio::test]
async fn odd_names_play_through_router_and_signed_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_url = url::Url::from_directory_path(dir.path())
        .expect("url")
        .to_string();
    let origin = Server::origin(&["--store", &store_url, "--ingest-token", INGEST_TOKEN], &[]);
    let origin_url = origin.url("");

    // Segments as stored, and how the packager wrote each in the playlist:
    // raw (space, `"`, a lone `%`, `é`) or already percent-encoded.
    let segments: [(&str, &str); 4] = [
        ("seg 0 \"a\" 50% \u{e9}.ts", "seg 0 \"a\" 50% \u{e9}.ts"),
        ("seg 1 caf\u{e9}.ts", "seg%201%20caf%C3%A9.ts"),
        ("seg%202.ts", "seg%2520%32.ts"),
        ("seg-3.ts", "seg-3.ts"),
    ];
    let mut media =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (i, (name, written)) in segments.iter().enumerate() {
        put(&origin, &["vod", "odd", RENDITION, name], vec![i as u8; 1000 + i]).await;
        media.push_str(&format!("#EXTINF:2.0,\n{written}\n"));
    }
    media.push_str("#EXT-X-ENDLIST\n");
    put(
        &origin,
        &["vod", "odd", RENDITION, "index.m3u8"],
        media.into_bytes(),
    )
    .await;
    // A second rendition, `a b`, whose playlist names its segments
    // root-relative and percent-encoded (`/vod/odd/a%20b/seg-0.ts`).
    let mut spaced = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..2 {
        put(
            &origin,
            &["vod", "odd", "a b", &format!("seg-{i}.ts")],
            vec![i as u8; 1000 + i],
        )
        .await;
        spaced.push_str(&format!("#EXTINF:2.0,\n/vod/odd/a%20b/seg-{i}.ts\n"));
    }
    spaced.push_str("#EXT-X-ENDLIST\n");
    put(&origin, &["vod", "odd", "a b", "index.m3u8"], spaced.into_bytes()).await;
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\nr%20%22q%22%20100%25%20%C3%A9/index.m3u8\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=200000\na%20b/index.m3u8\n";
    put(
        &origin,
        &["vod", "odd", "master.m3u8"],
        master.as_bytes().to_vec(),
    )
    .await;

    let edge = Server::binary(
        "edge-agent",
        "hlscdn-edge",
        &[
            "--id",
            "edge-1",
            "--origin",
            &origin_url,
            "--signing-key",
            SIGNING_KEY,
        ],
        &[],
    );
    let edge_spec = format!("edge-1={}", edge.url(""));
    let router = Server::binary(
        "router",
        "hlscdn-router",
        &[
            "--origin",
            &origin_url,
            "--fleet-token",
            FLEET_TOKEN,
            "--signing-key",
            SIGNING_KEY,
            "--edge",
            &edge_spec,
        ],
        &[],
    );

    let master_url = url::Url::parse(&router.url("/vod/odd/master.m3u8")).expect("url");
    let r = client().get(master_url.as_str()).send().await.expect("master");
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.expect("body");
    let master = m3u8_rs::parse_master_playlist_res(&body).expect("master parses");
    assert_eq!(master.variants.len(), 2);
    let renditions: [(&str, Vec<String>); 2] = [
        (
            RENDITION,
            segments.iter().map(|(name, _)| (*name).to_owned()).collect(),
        ),
        ("a b", vec!["seg-0.ts".to_owned(), "seg-1.ts".to_owned()]),
    ];

    // Figures first (how many URIs are valid, what the edge answers), then
    // the assertions.
    let mut valid = 0;
    let mut total = 0;
    let mut statuses = Vec::new();
    let mut problems = Vec::new();
    for (variant, (rendition, names)) in master.variants.iter().zip(&renditions) {
        let variant_url = master_url.join(&variant.uri).expect("variant URI is a URL");
        let r = client().get(variant_url.as_str()).send().await.expect("media");
        assert_eq!(r.status(), StatusCode::OK, "{variant_url}");
        let body = r.bytes().await.expect("body");
        let text = String::from_utf8_lossy(&body).into_owned();
        println!("{text}");
        let media = m3u8_rs::parse_media_playlist_res(&body)
            .unwrap_or_else(|e| panic!("media parses: {e:?}\n{text}"));
        assert_eq!(media.segments.len(), names.len(), "{text}");
        for (i, (segment, name)) in media.segments.iter().zip(names).enumerate() {
            total += 1;
            let uri = &segment.uri;
            let clean = uri.bytes().all(|b| b > b' ' && b < 0x7f && b != b'"');
            let parsed = url::Url::parse(uri);
            if clean && parsed.is_ok() {
                valid += 1;
            } else {
                problems.push(format!("not a valid URI: {uri:?}"));
            }
            let Ok(url) = parsed else {
                statuses.push(0);
                continue;
            };
            let decoded = percent_encoding::percent_decode_str(url.path())
                .decode_utf8_lossy()
                .into_owned();
            if decoded != format!("/vod/odd/{rendition}/{name}") || !uri.starts_with(&edge.url("/")) {
                problems.push(format!("names another object: {uri}"));
            }
            let r = client().get(url.as_str()).send().await.expect("segment");
            statuses.push(r.status().as_u16());
            if r.status() == StatusCode::OK
                && r.bytes().await.expect("body").to_vec() != vec![i as u8; 1000 + i]
            {
                problems.push(format!("wrong bytes: {uri}"));
            }
        }
    }
    println!("odd names: {valid} of {total} segment URIs valid; edge answers {statuses:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(statuses, [200; 6]);
}
