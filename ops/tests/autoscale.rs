//! `hlscdn demo --autoscale`: edges advertise 2 Mbit/s, so a few simulated
//! players push the fleet over its 60 % target. The routers' `/api/v1/scale`
//! then asks for more edges, the local autoscaler starts a fourth one, and new
//! viewers are placed on it; when the players stop, the router's desired count
//! falls after its cooldown (5 s in the demo) and the autoscaler drains the
//! edge and stops it. Last, a demo edge killed with SIGKILL is reported and
//! restarted by the demo.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use support::{Demo, eventually};

/// The first edge the autoscaler adds.
const ADDED: &str = "edge-4";

async fn edges(client: &reqwest::Client, router: &str) -> Option<serde_json::Value> {
    client
        .get(format!("{router}/api/v1/edges"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

fn edge<'a>(view: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    view["edges"].as_array()?.iter().find(|e| e["id"] == id)
}

/// Segment URLs of a media playlist (absolute: they point at edges).
fn segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One simulated player: a new session, then the newest segment of its
/// rendition every `period`, reloading the playlist every two seconds.
async fn player(
    client: reqwest::Client,
    router: String,
    stream: &'static str,
    period: Duration,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
) {
    let master_url = format!("{router}/{stream}/master.m3u8");
    let Ok(master) = client.get(&master_url).send().await else {
        return;
    };
    let Ok(master) = master.text().await else { return };
    // The last variant: the highest bitrate.
    let Some(variant) = master.lines().rfind(|l| !l.is_empty() && !l.starts_with('#')) else {
        return;
    };
    let Ok(media_url) = reqwest::Url::parse(&master_url).and_then(|m| m.join(variant)) else {
        return;
    };
    let mut urls = Vec::new();
    let mut reloaded = std::time::Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        if reloaded.elapsed() >= Duration::from_secs(2) {
            if let Ok(answer) = client.get(media_url.as_str()).send().await
                && let Ok(text) = answer.text().await
            {
                urls = segments(&text);
            }
            reloaded = std::time::Instant::now();
        }
        if let Some(url) = urls.last()
            && let Ok(answer) = client.get(url).send().await
            && let Ok(body) = answer.bytes().await
        {
            bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        tokio::time::sleep(period).await;
    }
}

/// The process id of the `hlscdn-edge` started with `--listen 127.0.0.1:<port>`.
fn pid_listening_as_edge(port: u16) -> Option<u32> {
    let listen = format!("127.0.0.1:{port}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|p| p.ends_with("hlscdn-edge"))
            && args.windows(2).any(|w| w[0] == "--listen" && w[1] == listen)
        {
            return Some(pid);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_adds_an_edge_under_load_and_drains_it_after() {
    let mut demo = Demo::start(&["--autoscale"]);
    let client = support::common::client();
    let router = demo.router.clone();
    let added_port = demo.base + 1004;

    let view = edges(&client, &router).await.expect("edges");
    assert_eq!(view["edges"].as_array().map(Vec::len), Some(3), "{view}");
    assert_eq!(
        edge(&view, "edge-1").expect("edge-1")["capacity"]["egress_bps"],
        2_000_000
    );

    // Load: four players fetching 480p segments (~1.4 Mbit each) five times a second.
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut players = Vec::new();
    for stream in ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"] {
        players.push(tokio::spawn(player(
            client.clone(),
            router.clone(),
            stream,
            Duration::from_millis(200),
            stop.clone(),
            bytes.clone(),
        )));
    }

    // The fourth edge starts and becomes fresh and ready on the routers.
    let scale = eventually(
        "the routers to ask for more edges",
        Duration::from_secs(40),
        || async {
            let scale: serde_json::Value = client
                .get(format!("{router}/api/v1/scale"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (scale["desired_edges"].as_u64()? >= 4).then_some(scale)
        },
    )
    .await;
    eprintln!("scale under load: {scale}");
    assert!(scale["utilization"].as_f64().unwrap_or(0.0) > 0.6, "{scale}");
    eventually("edge-4 fresh and ready", Duration::from_secs(30), || async {
        let view = edges(&client, &router).await?;
        let e = edge(&view, ADDED)?;
        (e["fresh"] == true && e["state"] == "ready" && e["eligible"] == true).then_some(())
    })
    .await;
    assert!(
        demo.text().contains("autoscale: starting edge-4")
            || std::net::TcpStream::connect(("127.0.0.1", added_port)).is_ok(),
        "{}",
        demo.text()
    );

    // New viewers land on it: the first pathway of their master points at
    // its port, and the viewer counts there once it fetches that playlist.
    let added_host = format!("127.0.0.1:{added_port}");
    let placed = eventually(
        "a new viewer placed on edge-4",
        Duration::from_secs(20),
        || async {
            for stream in ["live/demo-1", "live/demo-2", "live/demo-3", "vod/demo"] {
                let master_url = format!("{router}/{stream}/master.m3u8");
                let master = client.get(&master_url).send().await.ok()?.text().await.ok()?;
                let variant = master.lines().find(|l| !l.is_empty() && !l.starts_with('#'))?;
                let url = reqwest::Url::parse(&master_url).ok()?.join(variant).ok()?;
                let text = client.get(url.as_str()).send().await.ok()?.text().await.ok()?;
                if segments(&text).iter().any(|s| s.contains(&added_host)) {
                    return Some(url.to_string());
                }
            }
            None
        },
    )
    .await;
    eprintln!("{placed} was placed on {ADDED}");
    let view = edges(&client, &router).await.expect("edges");
    assert!(
        edge(&view, ADDED).expect("edge-4")["viewers_assigned"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{view}"
    );

    // Load falls: after the cooldown the added edges are drained and stop.
    stop.store(true, Ordering::Relaxed);
    for p in players {
        let _ = p.await;
    }
    eprintln!("players fetched {} MB", bytes.load(Ordering::Relaxed) / 1_000_000);
    eventually("edge-4 draining or gone", Duration::from_secs(45), || async {
        let view = edges(&client, &router).await?;
        let e = edge(&view, ADDED)?;
        (e["state"] == "draining").then_some(())
    })
    .await;
    eventually("edge-4 stopped", Duration::from_secs(40), || async {
        std::net::TcpStream::connect(("127.0.0.1", added_port))
            .is_err()
            .then_some(())
    })
    .await;
    let text = demo.text();
    assert!(text.contains("autoscale: draining edge-4"), "{text}");
    let view = edges(&client, &router).await.expect("edges");
    let base_ready = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .filter(|id| edge(&view, id).is_some_and(|e| e["fresh"] == true && e["state"] == "ready"))
        .count();
    assert_eq!(
        base_ready, 3,
        "the demo's own edges are never drained by the autoscaler: {view}"
    );

    // A demo edge that dies is reported and restarted, and comes back.
    let port = demo.base + 1002;
    let pid = pid_listening_as_edge(port).expect("edge-2's process");
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
    eventually("the demo to restart edge-2", Duration::from_secs(15), || async {
        let text = demo.text();
        (text.contains("demo: edge-2 died") && text.contains("demo: edge-2 restarted")).then_some(())
    })
    .await;
    eventually(
        "edge-2 fresh and eligible again",
        Duration::from_secs(20),
        || async {
            let view = edges(&client, &router).await?;
            let e = edge(&view, "edge-2")?;
            (e["fresh"] == true && e["eligible"] == true && pid_listening_as_edge(port) != Some(pid))
                .then_some(())
        },
    )
    .await;

    let status = demo.stop(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{}", demo.text());
    let left = demo.listening();
    assert!(
        left.is_empty(),
        "still listening after the demo stopped: {left:?}"
    );
}
