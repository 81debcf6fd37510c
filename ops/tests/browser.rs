//! `hlscdn demo` in a real browser: headless Chromium (Debian's `chromium`)
//! driven by playwright-core from npm (`ops/tests/browser/demo.mjs`) plays a
//! stream on the player page, checks the dashboard, drains the player's edge
//! with `hlscdn drain`, and checks that the dashboard shows it draining while
//! the player keeps playing. Screenshots go to `target/test-artifacts/ops/`.
//!
//! Needs what `scripts/deps.sh` installs: chromium, node, `npm ci` in `ops/`.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Demo;

/// Longest run of the browser script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

fn chromium() -> String {
    let path = std::env::var("HLSCDN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: run scripts/deps.sh (installs Debian's chromium), or set HLSCDN_CHROMIUM"
    );
    path
}

#[test]
fn demo_plays_in_a_browser_and_survives_a_drain() {
    let chromium = chromium();
    let ops = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        ops.join("node_modules/playwright-core").exists(),
        "ops/node_modules/playwright-core is missing: run scripts/deps.sh (npm ci in ops/)"
    );
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

    let mut script = Command::new("node")
        .arg("tests/browser/demo.mjs")
        .current_dir(ops)
        .env("PLAYER_URL", &demo.player)
        .env("DASHBOARD_URL", &demo.dashboard)
        .env("ROUTER_URL", &demo.router)
        .env("FLEET_TOKEN", &demo.token)
        .env("HLSCDN_BIN", support::hlscdn())
        .env("ARTIFACTS_DIR", &artifacts)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node could not be started: run scripts/deps.sh");
    let mut stdout = script.stdout.take().expect("stdout");
    let mut stderr = script.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = script.try_wait() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = script.kill();
            let _ = script.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    eprintln!("--- browser script ---\n{stdout}{stderr}");
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

    let status = demo.stop(Duration::from_secs(45));
    assert!(
        status.is_some_and(|s| s.success()),
        "hlscdn demo did not stop cleanly on SIGTERM ({status:?}):\n{}",
        demo.text()
    );
    let text = demo.text();
    assert!(text.contains("demo: stopped origin"), "{text}");
    assert!(
        text.contains("drained and exited") || text.contains("demo: stopped edge-"),
        "{text}"
    );
    let left = demo.listening();
    assert!(
        left.is_empty(),
        "still listening after the demo stopped: {left:?}"
    );
}
