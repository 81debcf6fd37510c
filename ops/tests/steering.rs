//! Stock players ride out edge failures through Content Steering (issue 12):
//! headless Chromium (Debian's `chromium`) driven by playwright-core
//! (`ops/tests/browser/steering.mjs`) plays live `demo-1` through a router of
//! `hlscdn demo` with stock hls.js, then with stock Shaka Player, each with its
//! default config on a plain page the script serves (never our player page and
//! its recovery code). Over 70 s of playback the viewer's edge is killed with
//! `kill -9`, the viewer's new edge is killed again, and another edge is
//! drained. Each run asserts 0 fatal player errors, 0 hls.js
//! `LEVEL_PARSING_ERROR`, playback progress >= 90 % of wall time after the
//! first frame, a changed steering answer and a changed pathway, and prints
//! its figures on stderr. Screenshots go to `target/test-artifacts/ops/`.
//!
//! Needs what `scripts/deps.sh` installs: chromium, node, `npm ci` in `ops/`.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::Demo;

/// Longest run of the browser script (it plays for 70 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(135);

/// One demo and one Chromium at a time: the two tests would otherwise share
/// the machine's cores and measure each other's stalls.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn rides_out_two_kills_and_a_drain(player: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let chromium = support::chromium();
    let artifacts = support::artifacts_dir();
    let shot = artifacts.join(format!("steering-{player}.png"));
    let _ = std::fs::remove_file(&shot);

    let started = Instant::now();
    let mut demo = Demo::start(&[]);
    let run = support::run_node(
        "tests/browser/steering.mjs",
        &[
            ("PLAYER", player.to_owned()),
            ("ROUTER_URL", demo.router.clone()),
            ("FLEET_TOKEN", demo.token.clone()),
            ("HLSCDN_BIN", support::hlscdn().to_owned()),
            ("ARTIFACTS_DIR", artifacts.display().to_string()),
            ("CHROMIUM", chromium),
        ],
        SCRIPT_TIMEOUT,
    );
    let summary = run.stdout.lines().last().unwrap_or_default();
    eprintln!("{player} summary: {summary}");
    assert!(
        run.status.is_some_and(|s| s.success()),
        "the {player} browser script failed ({:?}):\n{}\nsummary: {summary}\ndemo output:\n{}",
        run.status,
        run.stderr
            .lines()
            .filter(|l| l.contains("FAILED") || l.contains("figures:") || l.contains("Error"))
            .collect::<Vec<_>>()
            .join("\n"),
        demo.text()
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 5_000),
        "{} is missing or empty",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());

    demo.stop_cleanly();
    eprintln!(
        "{player}: the whole test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn stock_hlsjs_rides_out_two_kills_and_a_drain() {
    rides_out_two_kills_and_a_drain("hlsjs");
}

#[test]
fn stock_shaka_rides_out_two_kills_and_a_drain() {
    rides_out_two_kills_and_a_drain("shaka");
}
