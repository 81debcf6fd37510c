//! `hlscdn status` against real processes: a healthy fleet (exit 0), an edge
//! that died without draining (exit 1), routers that disagree (exit 1), and
//! no router at all (exit 2). Also `hlscdn drain` with a wrong token.

mod support;

use std::time::Duration;

use support::common::Server;
use support::{eventually, run_hlscdn};

const TOKEN: &str = "status-test-fleet-token";

async fn fresh_edges(router: &str) -> usize {
    let client = support::common::client();
    let Ok(answer) = client.get(format!("{router}/api/v1/edges")).send().await else {
        return 0;
    };
    let Ok(view) = answer.json::<serde_json::Value>().await else {
        return 0;
    };
    view["edges"]
        .as_array()
        .map_or(0, |edges| edges.iter().filter(|e| e["fresh"] == true).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_a_healthy_and_an_unhealthy_fleet() {
    let origin = Server::origin(&["--store", "memory://"], &[]);
    let origin_url = origin.url("");
    let router = Server::binary(
        "router",
        "hlscdn-router",
        &["--origin", &origin_url, "--fleet-token", TOKEN],
        &[],
    );
    let router_url = router.url("");
    let mut edge = Server::binary(
        "edge-agent",
        "hlscdn-edge",
        &[
            "--id",
            "edge-1",
            "--origin",
            &origin_url,
            "--router",
            &router_url,
            "--fleet-token",
            TOKEN,
            "--heartbeat-interval",
            "200ms",
            "--ad-ttl",
            "600ms",
        ],
        &[],
    );
    eventually("edge-1 fresh on the router", Duration::from_secs(15), || async {
        (fresh_edges(&router_url).await == 1).then_some(())
    })
    .await;

    // Healthy: exit 0, a table, a verdict.
    let (code, out, err) = run_hlscdn(&["status", "--router", &router_url]);
    assert_eq!(code, 0, "{out}{err}");
    let first = out.lines().nth(1).unwrap_or("");
    assert!(first.starts_with("edge-1  ready"), "{out}");
    assert!(
        out.contains("fleet: healthy (1 fresh ready edge, 1 router)"),
        "{out}"
    );
    assert!(
        out.contains(&router_url),
        "the routers table names the router: {out}"
    );

    let (code, out, _) = run_hlscdn(&["status", "--router", &router_url, "--json"]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["fresh_ready"], 1);
    assert_eq!(report["edges"][0]["id"], "edge-1");
    assert_eq!(report["edges"][0]["status"], "ready");
    assert_eq!(report["routers"][0]["reachable"], true);

    // A drain needs the fleet token: the edge refuses a wrong one.
    let (code, _, err) = run_hlscdn(&[
        "drain",
        "edge-1",
        "--router",
        &router_url,
        "--fleet-token",
        "wrong",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = run_hlscdn(&["drain", "edge-9", "--router", &router_url, "--fleet-token", TOKEN]);
    assert_eq!(code, 2);
    assert!(err.contains("no router knows an edge \"edge-9\""), "{err}");

    // A second router that hears from no edge: the routers disagree.
    let lonely = Server::binary(
        "router",
        "hlscdn-router",
        &["--origin", &origin_url, "--fleet-token", TOKEN],
        &[],
    );
    let lonely_url = lonely.url("");
    let (code, out, err) = run_hlscdn(&["status", "--router", &router_url, "--router", &lonely_url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("fleet: UNHEALTHY"), "{out}");
    assert!(out.contains("routers disagree: edge-1 is fresh on"), "{out}");
    drop(lonely);

    // The edge dies without draining: stale, unhealthy.
    edge.signal("KILL");
    let _exited = edge.wait_exit(Duration::from_secs(5));
    eventually("edge-1 stale on the router", Duration::from_secs(10), || async {
        (fresh_edges(&router_url).await == 0).then_some(())
    })
    .await;
    let (code, out, err) = run_hlscdn(&["status", "--router", &router_url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.lines().nth(1).unwrap_or("").starts_with("edge-1  stale"),
        "{out}"
    );
    assert!(out.contains("fleet: UNHEALTHY"), "{out}");
    assert!(out.contains("no fresh ready edge"), "{out}");
    assert!(out.contains("edge-1 is stale (no ad for"), "{out}");
    let (code, out, _) = run_hlscdn(&["status", "--router", &router_url, "--json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["edges"][0]["severity"], "bad");

    // No router answers: exit 2, and says why.
    drop(router);
    let (code, out, err) = run_hlscdn(&["status", "--router", &router_url]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no router answers"), "{err}");
}
