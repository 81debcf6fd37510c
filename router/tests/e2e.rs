//! End to end, as a player: a real `hlscdn-origin --publish-demo`, a real
//! `hlscdn-router`, and two HTTP servers standing in for edges (more
//! `hlscdn-origin` processes over the same `file://` store, so they hold the
//! same bytes). The test follows the URLs exactly as a player would:
//! master → variant → segment.

use test_kit as common;

use common::{Server, client};
use reqwest::StatusCode;
use router_api::token::KeyRing;

const FLEET_TOKEN: &str = "fleet-token-for-tests-0123";
const SIGNING_KEY: &str = "k1:0123456789abcdef0123456789abcdef";

struct Cluster {
    dir: tempfile::TempDir,
    store_url: String,
    origin: Server,
    edges: Vec<(String, Server)>,
}

impl Cluster {
    fn start(edge_count: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = url::Url::from_directory_path(dir.path())
            .expect("url")
            .to_string();
        let origin = Server::origin(&["--store", &store_url, "--publish-demo"], &[]);
        let edges = (1..=edge_count)
            .map(|i| (format!("edge-{i}"), Server::origin(&["--store", &store_url], &[])))
            .collect();
        Cluster {
            dir,
            store_url,
            origin,
            edges,
        }
    }

    fn router(&self, edges: &[usize], extra: &[&str]) -> Server {
        let origin = self.origin.url("");
        let specs: Vec<String> = edges
            .iter()
            .map(|&i| format!("{}={}", self.edges[i].0, self.edges[i].1.url("")))
            .collect();
        let mut args = vec![
            "--origin",
            &origin,
            "--fleet-token",
            FLEET_TOKEN,
            "--signing-key",
            SIGNING_KEY,
        ];
        for spec in &specs {
            args.push("--edge");
            args.push(spec);
        }
        args.extend_from_slice(extra);
        Server::binary("router", "hlscdn-router", &args, &[])
    }

    fn edge_of(&self, url: &str) -> Option<&str> {
        self.edges
            .iter()
            .find(|(_, s)| url.starts_with(&s.url("/")))
            .map(|(id, _)| id.as_str())
    }
}

fn keyring() -> KeyRing {
    KeyRing::new(vec![SIGNING_KEY.parse().expect("key")]).expect("ring")
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Fetches `url`, asserting 200 and the playlist content type.
async fn get_playlist(url: &url::Url) -> bytes::Bytes {
    let r = client().get(url.as_str()).send().await.expect("get playlist");
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    r.bytes().await.expect("body")
}

/// The `s` of a variant URI.
fn variant_uri_session(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "s")
                .map(|(_, v)| v.into_owned())
        })
        .expect("a session on the variant URI")
}

#[tokio::test]
async fn a_player_follows_master_variant_and_segments_onto_edges() {
    let cluster = Cluster::start(2);
    let router = cluster.router(&[0, 1], &[]);
    let master_url = url::Url::parse(&router.url("/live/demo-1/master.m3u8")).expect("url");

    let master = get_playlist(&master_url).await;
    let master = m3u8_rs::parse_master_playlist_res(&master).expect("master parses");
    assert!(master.variants.len() >= 3, "three renditions");
    for variant in &master.variants {
        assert!(
            variant.uri.starts_with(&router.url("/live/demo-1/")),
            "variants point back to the router the player used: {}",
            variant.uri
        );
        assert!(
            variant.uri.contains("s="),
            "variants carry the session: {}",
            variant.uri
        );
    }

    // Behind a proxy: the host the player used.
    let proxied = client()
        .get(master_url.as_str())
        .header("host", "cdn.example:8443")
        .send()
        .await
        .expect("master")
        .text()
        .await
        .expect("body");
    assert!(
        proxied.contains("SERVER-URI=\"http://cdn.example:8443/steer/live/demo-1?s="),
        "{proxied}"
    );
    assert!(
        proxied
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.starts_with("http://cdn.example:8443/live/demo-1/")),
        "{proxied}"
    );
    // A proxy that says the player came over https: these edges and the
    // origin are plain http, so none may serve it (no mixed content).
    let https = client()
        .get(master_url.as_str())
        .header("host", "cdn.example:8443")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("master");
    assert_eq!(
        https.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        https.text().await
    );

    // A session and a steering ticket are bound to their stream.
    let session = variant_uri_session(&master.variants[0].uri);
    for (path, valid) in [
        ("/live/demo-1/240p/index.m3u8", true),
        ("/live/demo-1/480p/seg-3.ts", true),
        ("/vod/demo/240p/index.m3u8", false),
        ("/live/demo-2/240p/index.m3u8", false),
    ] {
        let mut explain = url::Url::parse(&router.url("/api/v1/explain")).expect("url");
        explain
            .query_pairs_mut()
            .append_pair("path", path)
            .append_pair("session", &session);
        let answer: serde_json::Value = client()
            .get(explain.as_str())
            .send()
            .await
            .expect("explain")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["session_valid"], valid, "{path}: {answer}");
    }
    let steering = proxied
        .split("SERVER-URI=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a steering URI");
    let ticket = steering.split("s=").nth(1).expect("a ticket");
    for (stream, status) in [("live/demo-1", 200), ("vod/demo", 400), ("live/demo-2", 400)] {
        let r = client()
            .get(router.url(&format!("/steer/{stream}?s={ticket}")))
            .send()
            .await
            .expect("steering");
        assert_eq!(r.status().as_u16(), status, "{stream}");
    }

    let variant_url = master_url.join(&master.variants[0].uri).expect("join");
    let media = get_playlist(&variant_url).await;
    let media = m3u8_rs::parse_media_playlist_res(&media).expect("media parses");
    assert!(media.segments.len() >= 3);
    let ring = keyring();
    let mut edge = None;
    for segment in &media.segments {
        let url = url::Url::parse(&segment.uri).expect("segments are absolute");
        let this_edge = cluster
            .edge_of(&segment.uri)
            .unwrap_or_else(|| panic!("{} is not on an edge", segment.uri));
        assert_eq!(*edge.get_or_insert(this_edge), this_edge, "one edge per playlist");
        let token = url
            .query_pairs()
            .find(|(k, _)| k == router_api::token::TOKEN_PARAM)
            .map(|(_, v)| v.into_owned())
            .expect("signed");
        ring.verify(&token, url.path(), now_unix())
            .expect("the token verifies for this path");
        assert!(
            ring.verify(&token, "/live/demo-2/240p/seg-1.ts", now_unix())
                .is_err(),
            "scoped to the stream"
        );

        // The edge serves the same bytes as the origin.
        let from_edge = client().get(url.as_str()).send().await.expect("edge get");
        assert_eq!(from_edge.status(), StatusCode::OK, "{url}");
        let from_edge = from_edge.bytes().await.expect("bytes");
        let from_origin = client()
            .get(cluster.origin.url(url.path()))
            .send()
            .await
            .expect("origin get");
        assert_eq!(from_edge, from_origin.bytes().await.expect("bytes"));
    }

    // Reloads keep the viewer on its edge.
    for _ in 0..5 {
        let again = get_playlist(&variant_url).await;
        let again = m3u8_rs::parse_media_playlist_res(&again).expect("parses");
        for segment in &again.segments {
            assert_eq!(cluster.edge_of(&segment.uri), edge, "sticky across reloads");
        }
    }
    drop(router);

    // The viewer's edge leaves the fleet: at its next reload (served by a
    // router that never saw the session, with the same fleet secret) the
    // viewer moves to the remaining edge.
    let gone = edge.expect("an edge");
    let remaining = usize::from(gone == cluster.edges[0].0);
    let router2 = cluster.router(&[remaining], &[]);
    let mut moved_url = variant_url.clone();
    moved_url.set_port(Some(router2.addr.port())).expect("port");
    let media = get_playlist(&moved_url).await;
    let media = m3u8_rs::parse_media_playlist_res(&media).expect("parses");
    for segment in &media.segments {
        assert_eq!(
            cluster.edge_of(&segment.uri),
            Some(cluster.edges[remaining].0.as_str())
        );
    }
    assert!(!cluster.store_url.is_empty());
}

#[tokio::test]
async fn vod_headers_redirects_and_refusals() {
    let cluster = Cluster::start(1);
    let router = cluster.router(&[0], &[]);
    let http = client();

    // VOD media playlists are cacheable for long, per viewer.
    let master_url = url::Url::parse(&router.url("/vod/demo/master.m3u8")).expect("url");
    let r = http.get(master_url.as_str()).send().await.expect("master");
    assert_eq!(r.headers()["cache-control"], "private, no-cache");
    let master = m3u8_rs::parse_master_playlist_res(&r.bytes().await.expect("body")).expect("parses");
    let variant_url = master_url.join(&master.variants[0].uri).expect("join");
    let r = http.get(variant_url.as_str()).send().await.expect("media");
    assert_eq!(r.headers()["cache-control"], "private, max-age=3600");
    let body = r.bytes().await.expect("body");
    assert!(body.windows(14).any(|w| w == b"#EXT-X-ENDLIST"));

    // HEAD: headers only.
    let r = http.head(variant_url.as_str()).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], body.len().to_string().as_str());

    // A live media playlist is short-lived.
    let r = http
        .get(router.url("/live/demo-2/240p/index.m3u8"))
        .send()
        .await
        .expect("live");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "private, max-age=1");

    // /r/: a 302 onto the edge, signed, never elsewhere.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Only objects of a stream the router served a playlist of.
    for unknown in [
        "/r/x.ts",
        "/r/vod/nothing/seg-0.ts",
        "/r/live/demo-3/240p/seg-0.ts",
    ] {
        let r = no_redirects
            .get(router.url(unknown))
            .send()
            .await
            .expect("redirect");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{unknown}");
    }
    let vod = get_playlist(&url::Url::parse(&router.url("/vod/demo/240p/index.m3u8")).expect("url")).await;
    let vod = String::from_utf8_lossy(&vod).into_owned();
    let vod_token = vod
        .lines()
        .find(|l| l.starts_with("http"))
        .expect("a segment")
        .to_owned();
    assert!(vod_token.contains("acl=/vod/demo/240p/*"), "{vod_token}");
    let r = no_redirects
        .get(router.url("/r/vod/demo/240p/seg-0.ts"))
        .send()
        .await
        .expect("redirect");
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(
        location.starts_with(&cluster.edges[0].1.url("/vod/demo/240p/seg-0.ts?hdnts=")),
        "{location}"
    );
    // The redirect's token covers the rendition, for two minutes.
    assert!(location.contains("acl=/vod/demo/240p/*"), "{location}");
    let exp: u64 = location
        .split("exp=")
        .nth(1)
        .and_then(|rest| rest.split('~').next())
        .and_then(|v| v.parse().ok())
        .expect("exp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        exp <= now + 121,
        "a redirect token lives two minutes: {exp} vs {now}"
    );
    let r = http.get(&location).send().await.expect("follow");
    assert_eq!(r.status(), StatusCode::OK);
    for target in [
        "/r/http://evil.example/x.ts",
        "/r/../etc/passwd",
        "/r//evil.example/x.ts",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(
            common::raw_status(router.addr, request.as_bytes()),
            400,
            "{target}"
        );
    }

    // Not a playlist, missing playlist, wrong method.
    assert_eq!(
        http.get(router.url("/vod/demo/240p/seg-0.ts"))
            .send()
            .await
            .expect("get")
            .status(),
        400
    );
    assert_eq!(
        http.get(router.url("/vod/nothing/master.m3u8"))
            .send()
            .await
            .expect("get")
            .status(),
        404
    );
    assert_eq!(
        http.post(router.url("/vod/demo/master.m3u8"))
            .send()
            .await
            .expect("post")
            .status(),
        405
    );

    let metrics = common::text(router.url("/metrics")).await;
    for name in [
        "hlscdn_router_requests_total{route=\"playlist\",status=\"200\"}",
        "hlscdn_router_rewrite_seconds_bucket",
        "hlscdn_router_origin_fetch_seconds_bucket",
        "hlscdn_router_playlist_cache_total{result=\"hit\"}",
        "hlscdn_router_choices_total{edge=\"edge-1\"}",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
}

#[tokio::test]
async fn without_edges_the_fallback_applies() {
    let cluster = Cluster::start(0);
    let http = client();

    let router = cluster.router(&[], &["--no-edge", "unavailable"]);
    let r = http
        .get(router.url("/vod/demo/240p/index.m3u8"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    drop(router);

    let router = cluster.router(&[], &["--no-edge", "origin"]);
    let body = common::text(router.url("/vod/demo/240p/index.m3u8")).await;
    let origin = cluster.origin.url("/vod/demo/240p/");
    assert!(
        body.lines().any(|l| l.starts_with(&origin)),
        "segments on the origin:\n{body}"
    );
}

#[tokio::test]
async fn ffmpeg_plays_live_and_vod_through_the_router() {
    let cluster = Cluster::start(2);
    let router = cluster.router(&[0, 1], &[]);
    for path in ["/live/demo-1/master.m3u8", "/vod/demo/master.m3u8"] {
        let url = router.url(path);
        // ffprobe sees every rendition of the rewritten multivariant playlist.
        let probe = common::run_tool(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
                &url,
            ],
        );
        for size in ["426,240", "640,360", "854,480"] {
            assert!(probe.contains(&format!("h264,{size}")), "{path}: {probe}");
        }
        // ffmpeg decodes four seconds, fetching segments from the edges with their tokens.
        let url = url::Url::parse(&url).expect("url");
        let variant = m3u8_rs::parse_master_playlist_res(&get_playlist(&url).await)
            .expect("master")
            .variants[0]
            .uri
            .clone();
        let variant = url.join(&variant).expect("join");
        let before = edge_gets(&cluster).await;
        common::run_tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-nostdin",
                "-i",
                variant.as_str(),
                "-t",
                "4",
                "-f",
                "null",
                "-",
            ],
        );
        assert!(
            edge_gets(&cluster).await >= before + 2,
            "{path}: ffmpeg fetched its segments from the edges"
        );
    }
}

/// Successful GETs the stand-in edges have served, by their own metrics.
async fn edge_gets(cluster: &Cluster) -> u64 {
    let mut total = 0.0;
    for (_, edge) in &cluster.edges {
        total += common::metric(
            edge,
            "hlscdn_origin_requests_total{method=\"GET\",status=\"200\"}",
        )
        .await;
    }
    total as u64
}

#[tokio::test]
async fn a_token_never_covers_more_than_the_stream() {
    let cluster = Cluster::start(1);
    let router = cluster.router(&[0], &[]);
    // A live playlist with a root-relative URI outside its directory: its
    // token used to be signed for `/*`, every object of the origin.
    let dir = cluster.dir.path().join("live/odd/240p");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("index.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-1.ts\n#EXTINF:2,\n/elsewhere/seg-2.ts\n",
    )
    .expect("playlist");
    let body = common::text(router.url("/live/odd/240p/index.m3u8")).await;
    let tokens: Vec<&str> = body.lines().filter(|l| l.starts_with("http")).collect();
    assert_eq!(tokens.len(), 2, "{body}");
    for uri in &tokens {
        assert!(uri.contains("acl=/live/odd/240p/*"), "{uri}");
    }
    // A live token lives minutes, not hours (10 min + up to one 5 min step).
    let exp: u64 = tokens[0]
        .split("exp=")
        .nth(1)
        .and_then(|rest| rest.split('~').next())
        .and_then(|v| v.parse().ok())
        .expect("exp");
    assert!(exp <= now_unix() + 900 + 1, "{exp}");
    // The object outside the stream is not covered: an edge refuses it.
    let ring = keyring();
    let verify = |uri: &str| {
        let parsed = url::Url::parse(uri).expect("url");
        ring.verify_query(parsed.query().unwrap_or_default(), parsed.path(), now_unix())
    };
    assert!(verify(tokens[0]).is_ok(), "{}", tokens[0]);
    assert!(verify(tokens[1]).is_err(), "{}", tokens[1]);
}

/// The media playlist URL (with its session) of the first variant of the
/// multivariant playlist at `master`: what a new viewer fetches next.
async fn first_variant(master: &url::Url) -> url::Url {
    let body = get_playlist(master).await;
    let master = m3u8_rs::parse_master_playlist_res(&body).expect("master parses");
    let variant = master.variants.first().expect("a variant");
    url::Url::parse(&variant.uri).expect("variant URIs are absolute")
}

#[tokio::test]
async fn viewers_on_one_edge_share_a_rendering_but_never_a_session() {
    let cluster = Cluster::start(1);
    // A live stream whose media playlists name each other in rendition
    // reports (LL-HLS): their bodies carry the viewer's session.
    let dir = cluster.dir.path().join("live/rr");
    for (name, other) in [("a", "b"), ("b", "a")] {
        std::fs::create_dir_all(dir.join(name)).expect("mkdir");
        std::fs::write(
            dir.join(name).join("index.m3u8"),
            format!(
                "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=1\n\
                 #EXT-X-MEDIA-SEQUENCE:10\n#EXTINF:4.0,\nseg-10.ts\n#EXTINF:4.0,\nseg-11.ts\n\
                 #EXT-X-RENDITION-REPORT:URI=\"../{other}/index.m3u8\",LAST-MSN=11\n"
            ),
        )
        .expect("write");
    }
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\na/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nb/index.m3u8\n",
    )
    .expect("write");
    let router = cluster.router(&[0], &[]);

    // Two viewers of the demo: the same edge, the same signed URLs; each
    // reload answers the very bytes of the first (kept or not).
    let demo = url::Url::parse(&router.url("/live/demo-1/master.m3u8")).expect("url");
    let (one, two) = (first_variant(&demo).await, first_variant(&demo).await);
    assert_ne!(one, two, "two sessions");
    let first = get_playlist(&one).await;
    let again = get_playlist(&one).await;
    let other = get_playlist(&two).await;
    let text = std::str::from_utf8(&first).expect("utf-8");
    assert!(text.contains("#EXTINF"), "{text}");
    assert!(text.contains("hdnts="), "signed: {text}");
    if first != again || first != other {
        // The origin published a segment between two fetches: the window
        // moved, not the URLs of the segments both list.
        for uri in std::str::from_utf8(&other)
            .expect("utf-8")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let name = uri
                .split('?')
                .next()
                .and_then(|u| u.rsplit('/').next())
                .expect("name");
            if let Some(mine) = text.lines().find(|l| !l.starts_with('#') && l.contains(name)) {
                assert_eq!(mine, uri, "one segment, one URL for every viewer on the edge");
            }
        }
    }

    // Two viewers of the stream with rendition reports: each report names
    // the viewer's own session, on every reload.
    let rr = url::Url::parse(&router.url("/live/rr/master.m3u8")).expect("url");
    let (a1, a2) = (first_variant(&rr).await, first_variant(&rr).await);
    let session = |u: &url::Url| {
        u.query_pairs()
            .find(|(k, _)| k == "s")
            .map(|(_, v)| v.into_owned())
            .expect("session")
    };
    for _ in 0..3 {
        for (mine, theirs) in [(&a1, &a2), (&a2, &a1)] {
            let body = get_playlist(mine).await;
            let body = std::str::from_utf8(&body).expect("utf-8");
            let report = body
                .lines()
                .find(|l| l.starts_with("#EXT-X-RENDITION-REPORT"))
                .expect("a rendition report");
            assert!(report.contains(&session(mine)), "{report}");
            assert!(!report.contains(&session(theirs)), "{report}");
        }
    }
}
