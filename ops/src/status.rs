//! `hlscdn status`: asks a router for the routers of the fleet, asks each of
//! them for its edges, and prints one report ([`crate::health`]).
//!
//! Exit code: 0 healthy, 1 unhealthy ([`crate::EXIT_UNHEALTHY`]), 2 when no
//! router given could be reached at all ([`crate::EXIT_ERROR`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures::future::join_all;

use crate::api;
use crate::health::{self, Observation, Report};

/// `hlscdn status` flags.
#[derive(Debug, clap::Args)]
#[command(mut_arg("routers", |a| a.required(true)))]
pub struct Args {
    #[command(flatten)]
    pub routers: runtime::config::RoutersArg,
    #[command(flatten)]
    pub trust: api::TrustArg,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// How long to wait before asking again when the routers disagree: one
/// heartbeat, so an ad on its way has arrived everywhere.
pub const RECHECK_AFTER: Duration = Duration::from_millis(1500);

/// Runs `hlscdn status`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.trust.apply()?;
    let routers = &args.routers.routers;
    for url in routers {
        api::check_base_url(url)?;
    }
    let client = api::client();
    let mut observations = observe(&client, routers).await;
    if observations.iter().all(|o| o.view.is_err()) {
        let reasons: Vec<String> = observations
            .iter()
            .filter_map(|o| o.view.as_ref().err().map(|e| format!("{}: {e}", o.url)))
            .collect();
        bail!("no router answers ({})", reasons.join("; "));
    }
    let mut report = health::assess(&observations);
    if report.only_disagreement() {
        tokio::time::sleep(RECHECK_AFTER).await;
        observations = observe(&client, routers).await;
        report = health::assess(&observations);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_UNHEALTHY)
    })
}

/// Asks each seed for the routers it knows, then every router for its edges.
pub async fn observe(client: &reqwest::Client, seeds: &[String]) -> Vec<Observation> {
    let listed = join_all(seeds.iter().map(|seed| api::routers(client, seed))).await;
    // Routers by id (one process may be named by several URLs); seeds that do not answer by URL.
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    let mut unreachable: Vec<(String, String)> = Vec::new();
    for (seed, answer) in seeds.iter().zip(listed) {
        match answer {
            Ok(view) => {
                by_id
                    .entry(view.this.id.clone())
                    .or_insert_with(|| api::base(seed).to_owned());
                for router in view.routers {
                    by_id.entry(router.id).or_insert(router.url);
                }
            }
            Err(error) => unreachable.push((api::base(seed).to_owned(), format!("{error:#}"))),
        }
    }
    let routers: Vec<(String, String)> = by_id.into_iter().collect();
    let views = join_all(routers.iter().map(|(_, url)| api::edges(client, url))).await;
    let mut observations: Vec<Observation> = routers
        .into_iter()
        .zip(views)
        .map(|((id, url), view)| Observation {
            url,
            id: Some(id),
            view: view.map_err(|e| format!("{e:#}")),
        })
        .collect();
    observations.extend(unreachable.into_iter().map(|(url, error)| Observation {
        url,
        id: None,
        view: Err(error),
    }));
    observations
}

/// The report as two tables and a verdict.
pub fn render(report: &Report) -> String {
    let mut edges = vec![vec![
        "EDGE".to_owned(),
        "STATUS".into(),
        "AD AGE".into(),
        "UTIL".into(),
        "EGRESS".into(),
        "CAPACITY".into(),
        "CONNS".into(),
        "HIT".into(),
        "VIEWERS".into(),
        "URL".into(),
        "NOTES".into(),
    ]];
    for e in &report.edges {
        edges.push(vec![
            e.id.clone(),
            e.status.to_owned(),
            health::seconds(e.ad_age_ms),
            format!("{:.0}%", e.utilization * 100.0),
            bits(e.egress_bps),
            bits(e.capacity_bps),
            e.connections.to_string(),
            format!("{:.0}%", e.cache_hit_ratio * 100.0),
            e.viewers.to_string(),
            e.url.clone(),
            e.notes.join("; "),
        ]);
    }
    let mut routers = vec![vec![
        "ROUTER".to_owned(),
        "URL".into(),
        "ANSWERS".into(),
        "EDGES".into(),
        "FRESH".into(),
        "AGREES".into(),
    ]];
    for r in &report.routers {
        routers.push(vec![
            r.id.clone().unwrap_or_else(|| "?".into()),
            r.url.clone(),
            if r.reachable { "yes".into() } else { "NO".into() },
            r.edges.to_string(),
            r.fresh.len().to_string(),
            if r.agrees { "yes".into() } else { "NO".into() },
        ]);
    }
    let mut out = String::new();
    out.push_str(&table(&edges));
    out.push('\n');
    out.push_str(&table(&routers));
    out.push('\n');
    if report.healthy {
        let _ = writeln!(
            out,
            "fleet: healthy ({} fresh ready edge{}, {} router{})",
            report.fresh_ready,
            if report.fresh_ready == 1 { "" } else { "s" },
            report.routers.len(),
            if report.routers.len() == 1 { "" } else { "s" },
        );
    } else {
        out.push_str("fleet: UNHEALTHY\n");
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    out
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Bits per second for people: `1.5 Mb/s`.
pub fn bits(bps: u64) -> String {
    let b = bps as f64;
    if b >= 1e9 {
        format!("{:.1} Gb/s", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} Mb/s", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kb/s", b / 1e3)
    } else {
        format!("{bps} b/s")
    }
}

#[cfg(test)]
mod tests {
    use router_api::fleet::{Capacity, EdgeState, EdgeView, EdgesView, Load};

    use super::*;

    fn view(fresh: bool) -> EdgesView {
        EdgesView {
            router: "r1".into(),
            edges: vec![EdgeView {
                id: "edge-1".into(),
                url: "http://127.0.0.1:9001".into(),
                group: None,
                state: EdgeState::Ready,
                fresh,
                eligible: true,
                ad_age_ms: if fresh { 300 } else { 9_000 },
                capacity: Capacity {
                    egress_bps: 1_000_000_000,
                    connections: 10_000,
                },
                load: Load {
                    egress_bps: 2_500_000,
                    cache_hit_ratio: 0.9,
                    ..Load::default()
                },
                hot_streams: Vec::new(),
                utilization: 0.0025,
                assigned_bps: 0,
                viewers_assigned: 3,
                configured: false,
                ad: None,
            }],
        }
    }

    #[test]
    fn renders_tables_and_verdict() {
        let report = health::assess(&[Observation {
            url: "http://127.0.0.1:8080".into(),
            id: Some("r1".into()),
            view: Ok(view(true)),
        }]);
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("EDGE    STATUS  AD AGE  UTIL  EGRESS"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("edge-1  ready   0.3 s   0%    2.5 Mb/s  1.0 Gb/s"),
            "{text}"
        );
        assert!(text.contains("r1      http://127.0.0.1:8080  yes"), "{text}");
        assert!(
            text.ends_with("fleet: healthy (1 fresh ready edge, 1 router)\n"),
            "{text}"
        );

        let report = health::assess(&[Observation {
            url: "http://127.0.0.1:8080".into(),
            id: Some("r1".into()),
            view: Ok(view(false)),
        }]);
        let text = render(&report);
        assert!(
            text.contains("fleet: UNHEALTHY\n  - no fresh ready edge"),
            "{text}"
        );
        assert!(
            text.contains("edge-1 is stale (no ad for 9.0 s) without having drained"),
            "{text}"
        );
    }

    #[test]
    fn bit_rates() {
        assert_eq!(bits(999), "999 b/s");
        assert_eq!(bits(276_000), "276 kb/s");
        assert_eq!(bits(2_500_000), "2.5 Mb/s");
        assert_eq!(bits(10_000_000_000), "10.0 Gb/s");
    }
}
