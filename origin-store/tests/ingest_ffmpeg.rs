//! A real packager pushing live HLS into the origin: Debian's ffmpeg with
//! `-method PUT` (chunked PUTs) and `-hls_flags delete_segments` (DELETEs).

use test_kit as common;

use common::{Server, client, run_tool};
use reqwest::StatusCode;

const TOKEN: &str = "ffmpeg-ingest-token";

#[tokio::test]
async fn ffmpeg_pushes_hls_and_it_is_served_back() {
    let origin = Server::origin(&["--store", "memory://", "--ingest-token", TOKEN], &[]);
    let target = origin.url("/live/ffmpeg/index.m3u8");
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "3",
            "-hls_flags",
            "delete_segments",
            "-method",
            "PUT",
            "-headers",
            &auth,
            &target,
        ],
    );

    let http = client();
    let playlist = http.get(&target).send().await.expect("get playlist");
    assert_eq!(playlist.status(), StatusCode::OK);
    assert_eq!(
        playlist.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let body = playlist.bytes().await.expect("body");
    let parsed = m3u8_rs::parse_media_playlist_res(&body).expect("ffmpeg's playlist parses");
    assert_eq!(parsed.segments.len(), 3, "hls_list_size 3");
    assert!(
        parsed.media_sequence >= 3,
        "the window advanced: {}",
        parsed.media_sequence
    );

    // Every listed segment is served; the one ffmpeg deleted is gone.
    let mut first = None;
    for segment in &parsed.segments {
        let r = http
            .get(origin.url(&format!("/live/ffmpeg/{}", segment.uri)))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{}", segment.uri);
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        first.get_or_insert(r.bytes().await.expect("segment"));
    }
    let r = http
        .get(origin.url("/live/ffmpeg/index0.ts"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "delete_segments removed index0.ts"
    );

    // ffprobe reads a served segment as H.264 + AAC.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("segment.ts");
    std::fs::write(&file, first.expect("a segment")).expect("write");
    let probe = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(probe.contains("h264,320,240"), "{probe}");
    assert!(probe.contains("aac"), "{probe}");

    // The ingest really used PUT and DELETE with the token.
    let metrics = common::text(origin.url("/metrics")).await;
    assert!(
        metrics.contains("hlscdn_origin_requests_total{method=\"PUT\",status=\"201\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hlscdn_origin_requests_total{method=\"DELETE\",status=\"204\"}"),
        "{metrics}"
    );
}
