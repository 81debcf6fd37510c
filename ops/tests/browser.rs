//! `hlscdn demo` in a real browser: headless Chromium (Debian's `chromium`)
//! driven by playwright-core from npm (`ops/tests/browser/demo.mjs`) plays a
//! stream on the player page, checks the dashboard, drains the player's edge
//! with `hlscdn drain`, and checks that the dashboard shows it draining while
//! the player keeps playing. Screenshots go to `target/test-artifacts/ops/`.
//!
//! Needs what `scripts/deps.sh` installs: chromium, node, `npm ci` in `ops/`.

mod support;

use std::time::Duration;

use support::Demo;

/// Longest run of the browser script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

#[test]
fn demo_plays_in_a_browser_and_survives_a_drain() {
    let chromium = support::chromium();
    let artifacts = support::artifacts_dir();
    for stale in [
        "player.png",
        "dashboard.png",
        "dashboard-draining.png",
        "player-after-drain.png",
    ] {
        let _ = std::fs::remove_file(artifacts.join(stale));
    }

    let mut demo = Demo::start(&[]);
    eprintln!(
        "hlscdn demo printed its URLs {:.1} s after it was started",
        demo.startup.as_secs_f64()
    );

    let run = support::run_node(
        "tests/browser/demo.mjs",
        &[
            ("PLAYER_URL", demo.player.clone()),
            ("DASHBOARD_URL", demo.dashboard.clone()),
            ("ROUTER_URL", demo.router.clone()),
            ("FLEET_TOKEN", demo.token.clone()),
            ("HLSCDN_BIN", support::hlscdn().to_owned()),
            ("ARTIFACTS_DIR", artifacts.display().to_string()),
            ("CHROMIUM", chromium),
        ],
        SCRIPT_TIMEOUT,
    );
    let status = run.status;
    eprintln!("--- browser script ---\n{}{}", run.stdout, run.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser script failed ({status:?}); demo output:\n{}",
        demo.text()
    );
    for shot in [
        "player.png",
        "dashboard.png",
        "dashboard-draining.png",
        "player-after-drain.png",
    ] {
        let path = artifacts.join(shot);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000),
            "{} is missing or empty",
            path.display()
        );
        eprintln!("screenshot: {}", path.display());
    }

    let text = demo.stop_cleanly();
    assert!(text.contains("demo: stopped origin"), "{text}");
    assert!(
        text.contains("drained and exited") || text.contains("demo: stopped edge-"),
        "{text}"
    );
}
