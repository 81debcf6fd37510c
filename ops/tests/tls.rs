//! `hlscdn demo --tls` in a browser, as a user on an https site sees it:
//! headless Chromium (Debian's `chromium`, driven by playwright-core through
//! `ops/tests/browser/tls.mjs`) trusts the demo's CA in its NSS database,
//! loads a plain https page with stock hls.js, and plays live `demo-1` and
//! VOD `demo` through the demo's routers and edges. The script asserts no
//! fatal player error, playback progress, no mixed-content or certificate
//! complaint, https URLs only, and HTTP/2 (`nextHopProtocol`) for every
//! playlist and segment. Then ffmpeg, verifying with the demo's CA, plays
//! VOD whole and 10 s of live.
//!
//! Needs what `scripts/deps.sh` installs: chromium, certutil, node, `npm ci` in `ops/`, ffmpeg.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::Demo;

/// Longest run of the browser script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The CA file the banner's `tls:` line names.
fn ca_file(demo: &Demo) -> PathBuf {
    let lines = demo.lines();
    let line = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("tls:"))
        .unwrap_or_else(|| panic!("no tls: line in the banner:\n{}", demo.text()));
    let path = line.rsplit(' ').next().expect("a path");
    PathBuf::from(path)
}

/// ffmpeg reading `url` with `tls` options, `output` options, to nothing,
/// bounded by `timeout`; whether it exited 0.
fn ffmpeg(tls: &[&str], url: &str, output: &[&str]) -> bool {
    std::process::Command::new("timeout")
        .args(["60", "ffmpeg", "-hide_banner", "-loglevel", "error"])
        .args(tls)
        .args(["-i", url])
        .args(output)
        .args(["-f", "null", "-"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn stock_hlsjs_plays_the_tls_demo_over_h2_with_the_ca_trusted() {
    let chromium = support::chromium();
    let artifacts = support::artifacts_dir();
    let mut demo = Demo::start(&["--tls"]);
    assert!(demo.router.starts_with("https://"), "{}", demo.router);
    let ca = ca_file(&demo);
    let dir = ca.parent().expect("tls dir").to_owned();
    let run = support::run_node(
        "tests/browser/tls.mjs",
        &[
            ("ROUTER_URL", demo.router.clone()),
            ("CA_FILE", ca.display().to_string()),
            ("PAGE_CERT", dir.join("server.pem").display().to_string()),
            ("PAGE_KEY", dir.join("server.key").display().to_string()),
            ("ARTIFACTS_DIR", artifacts.display().to_string()),
            ("CHROMIUM", chromium),
        ],
        SCRIPT_TIMEOUT,
    );
    let summary = run.stdout.lines().last().unwrap_or_default();
    eprintln!("summary: {summary}");
    assert!(
        run.status.is_some_and(|s| s.success()),
        "the TLS browser script failed ({:?}):\n{}\nsummary: {summary}",
        run.status,
        run.stderr
    );

    // ffmpeg as a player, verifying the certificates with the demo's CA:
    // the whole VOD, 10 s of live, and a refusal without the CA.
    let ca = ca.display().to_string();
    let vod = format!("{}/vod/demo/master.m3u8", demo.router);
    let live = format!("{}/live/demo-1/master.m3u8", demo.router);
    let trusting = ["-ca_file", ca.as_str()];
    let one_rendition = ["-map", "0:v:0", "-map", "0:a:0", "-t", "10"];
    assert!(ffmpeg(&trusting, &vod, &[]), "ffmpeg plays the VOD over https");
    assert!(
        ffmpeg(&trusting, &live, &one_rendition),
        "ffmpeg plays live over https"
    );
    assert!(
        !ffmpeg(&["-tls_verify", "1"], &vod, &["-t", "1"]),
        "an untrusted certificate must be refused"
    );

    demo.stop_cleanly();
}
