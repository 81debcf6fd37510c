//! Self-contained HTML reports: tables plus inline SVG charts, no script, no
//! external resource. Pure string building.

use std::fmt::Write as _;

use crate::report::PlayersReport;
use crate::sim::SimReport;
use crate::stats::Bucket;
use crate::svg::{self, Series, escape};

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}h2{margin-top:28px}\
svg{display:block;margin:8px 0 16px}code{background:#f4f4f4;padding:1px 4px}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n{body}</body></html>\n",
        escape(title),
        escape(title)
    )
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

fn bucket_labels(buckets: &[Bucket]) -> Vec<String> {
    buckets
        .iter()
        .map(|b| {
            if b.le_ms >= 1000.0 {
                format!("≤{}s", b.le_ms / 1000.0)
            } else {
                format!("≤{}", b.le_ms)
            }
        })
        .collect()
}

/// The `players` report as a page.
pub fn players(r: &PlayersReport) -> String {
    let mut b = String::new();
    let v = &r.viewers;
    let s = &v.sessions;
    let _ = writeln!(
        b,
        "<p>{} viewers over {:.0} s against {} router(s); rendition {}; Zipf {}; seed {}.</p>",
        v.arrived,
        r.elapsed_secs,
        r.settings.routers.len(),
        escape(&r.settings.rendition),
        r.settings.zipf,
        r.settings.seed
    );
    b.push_str("<h2>Viewers</h2>");
    table(
        &mut b,
        &["figure", "value"],
        &[
            vec![
                "viewers with an edge".into(),
                format!("{} of {}", v.with_edge, v.arrived),
            ],
            vec![
                "sessions (started / gave up)".into(),
                format!("{} ({} / {})", s.sessions, s.started, s.gave_up),
            ],
            vec![
                "startup p50 / p90 / p99 (ms)".into(),
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    v.startup.p50_ms, v.startup.p90_ms, v.startup.p99_ms
                ),
            ],
            vec!["stalls".into(), s.stalls.to_string()],
            vec![
                "stalls per viewer-hour".into(),
                format!("{:.3}", v.stalls_per_viewer_hour),
            ],
            vec!["rebuffering ratio".into(), format!("{:.5}", v.rebuffering_ratio)],
            vec![
                "segments (skipped)".into(),
                format!("{} ({})", s.segments, s.skipped_segments),
            ],
            vec![
                "edge changes (viewers)".into(),
                format!("{} ({})", v.moves.edge_changes, v.moves.viewers_changed_edge),
            ],
            vec![
                "router failovers (viewers)".into(),
                format!("{} ({})", v.moves.failovers, v.moves.viewers_failed_over),
            ],
            vec![
                "pathway switches (viewers, most per viewer)".into(),
                format!(
                    "{} ({}, {})",
                    v.moves.pathway_switches, v.moves.viewers_switched_pathway, v.moves.most_pathway_switches
                ),
            ],
            vec!["steering manifest fetches".into(), s.steering_fetches.to_string()],
            vec!["listed URI changes".into(), s.listed_uri_changes.to_string()],
        ],
    );
    b.push_str("<h2>Requests</h2>");
    let rows: Vec<Vec<String>> = r
        .latency
        .iter()
        .map(|c| {
            let p = &c.latency;
            vec![
                c.class.name().to_owned(),
                p.count.to_string(),
                format!("{:.2}", p.p50_ms),
                format!("{:.2}", p.p90_ms),
                format!("{:.2}", p.p99_ms),
                format!("{:.2}", p.p999_ms),
                format!("{:.2}", p.max_ms),
            ]
        })
        .collect();
    table(
        &mut b,
        &["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"],
        &rows,
    );
    let rows: Vec<Vec<String>> = r
        .requests
        .iter()
        .map(|(name, k)| {
            vec![
                (*name).to_owned(),
                k.requests.to_string(),
                k.errors.to_string(),
                format!("{:.3} %", k.error_rate * 100.0),
                k.slow.to_string(),
                format!("{:.3} %", k.slow_rate * 100.0),
            ]
        })
        .collect();
    table(
        &mut b,
        &["requests", "count", "errors", "error rate", "slow", "slow rate"],
        &rows,
    );
    if let Some(first) = r.latency.first() {
        let labels = bucket_labels(&first.histogram);
        let series: Vec<Series> = r
            .latency
            .iter()
            .map(|c| {
                Series::new(
                    c.class.name(),
                    c.histogram.iter().map(|b| b.count as f64).collect(),
                )
            })
            .collect();
        b.push_str(&svg::bars(
            "Latency histogram (requests per bucket, ms)",
            &labels,
            &series,
            "requests",
        ));
    }
    b.push_str("<h2>Edges</h2>");
    let rows: Vec<Vec<String>> = r
        .edges
        .iter()
        .map(|e| {
            vec![
                e.edge.clone(),
                e.id.clone().unwrap_or_default(),
                e.viewers.to_string(),
                e.viewers_at_end.to_string(),
                e.segments.to_string(),
                format!("{:.1}", e.bytes as f64 / 1e6),
                format!("{:.2}", e.egress_mbps),
            ]
        })
        .collect();
    table(
        &mut b,
        &["edge", "id", "viewers", "at end", "segments", "MB", "Mbit/s"],
        &rows,
    );
    let t = &r.timeline;
    let edge_series = |values: &Vec<Vec<f64>>| -> Vec<Series> {
        t.edges
            .iter()
            .zip(values)
            .map(|(e, v)| Series::new(e.clone(), v.clone()))
            .collect()
    };
    let viewers: Vec<Vec<f64>> = t
        .viewers
        .iter()
        .map(|v| v.iter().map(|&n| n as f64).collect())
        .collect();
    b.push_str(&svg::lines(
        "Viewers per edge",
        &t.secs,
        &edge_series(&viewers),
        "seconds",
        "viewers",
    ));
    b.push_str(&svg::lines(
        "Egress per edge",
        &t.secs,
        &edge_series(&t.egress_mbps),
        "seconds",
        "Mbit/s",
    ));
    let c = &r.cache;
    b.push_str("<h2>Caches and origin</h2>");
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    let num = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
    table(
        &mut b,
        &["figure", "value"],
        &[
            vec!["edge cache hit ratio".into(), opt(c.hit_ratio)],
            vec!["unique segments".into(), c.unique_segments.to_string()],
            vec!["edge origin fetches".into(), num(c.edge_origin_fetches)],
            vec!["origin GET requests".into(), num(c.origin_requests)],
            vec!["router playlist fetches".into(), num(c.router_playlist_fetches)],
            vec![
                "origin requests per unique segment".into(),
                opt(c.origin_requests_per_unique_segment),
            ],
        ],
    );
    let i = &r.invariants;
    b.push_str("<h2>Stream invariants</h2>");
    let mut rows = vec![
        vec!["media playlists checked".into(), i.playlists_checked.to_string()],
        vec![
            "segment URLs probed / seen".into(),
            format!("{} / {}", i.uris_probed, i.uris_seen),
        ],
    ];
    rows.extend(
        i.violations
            .iter()
            .map(|(k, n)| vec![format!("violations: {k}"), n.to_string()]),
    );
    table(&mut b, &["figure", "value"], &rows);
    if !i.first_violations.is_empty() {
        b.push_str("<ul>");
        for v in &i.first_violations {
            let _ = write!(b, "<li><code>{}</code></li>", escape(v));
        }
        b.push_str("</ul>\n");
    }
    if !r.errors.is_empty() {
        b.push_str("<h2>Errors</h2>");
        let rows: Vec<Vec<String>> = r
            .errors
            .iter()
            .map(|(k, n)| vec![k.clone(), n.to_string()])
            .collect();
        table(&mut b, &["error", "count"], &rows);
    }
    page("hls-cdn players", &b)
}

/// The `simulate` report as a page.
pub fn simulate(r: &SimReport) -> String {
    let mut b = String::new();
    let s = &r.scenario;
    let w = &r.world;
    let _ = writeln!(
        b,
        "<p>{} edges ({:.0} Gbit/s), {} streams ({} live, {} VOD) × {} renditions, {} viewers at peak ({} arrivals), {} ticks of {} s, Zipf {}, seed {}. Peak demand {:.0} Gbit/s. Failed: {}. Drained: {}.</p>",
        s.edges,
        w.capacity_gbps,
        s.streams,
        w.live_streams,
        w.vod_streams,
        s.renditions.len(),
        s.viewers,
        w.arrivals,
        s.ticks,
        s.tick_secs,
        s.zipf,
        s.seed,
        w.peak_demand_gbps,
        escape(&w.failed_edges.join(", ")),
        escape(&w.drained_edges.join(", "))
    );
    let rows: Vec<Vec<String>> = r
        .policies
        .iter()
        .map(|p| {
            vec![
                p.name.to_owned(),
                format!("{:.2}", p.origin_vs_best),
                format!("{:.4}", p.cache_hit_ratio),
                format!("{:.2}", p.max_utilization),
                format!("{:.2}", p.max_over_mean),
                format!("{:.1} %", 100.0 * p.overloaded_time_share),
                format!("{:.2} %", 100.0 * p.overloaded_edge_share),
                format!("{:.0}", p.moved_per_failure),
                format!("{:.0}", p.moved_per_drain),
                format!("{:.2}", p.edges_per_live_rendition),
            ]
        })
        .collect();
    table(
        &mut b,
        &[
            "policy",
            "origin / best",
            "hit ratio",
            "max util",
            "max / mean",
            "time overloaded",
            "edge-time overloaded",
            "moved / failure",
            "moved / drain",
            "edges / live rendition",
        ],
        &rows,
    );
    let names: Vec<String> = r.policies.iter().map(|p| p.name.to_owned()).collect();
    let one =
        |f: &dyn Fn(&crate::sim::PolicyRun) -> f64| vec![Series::new("", r.policies.iter().map(f).collect())];
    b.push_str(&svg::bars(
        "Origin egress relative to the least possible",
        &names,
        &one(&|p| p.origin_vs_best),
        "× best",
    ));
    b.push_str(&svg::bars(
        "Highest / mean edge utilization (steady phase, mean over ticks)",
        &names,
        &one(&|p| p.max_over_mean),
        "ratio",
    ));
    b.push_str(&svg::bars(
        "Viewers moved per edge failure",
        &names,
        &one(&|p| p.moved_per_failure),
        "viewers",
    ));
    let series: Vec<Series> = r
        .policies
        .iter()
        .map(|p| Series::new(p.name, p.max_utilization_series.clone()))
        .chain(std::iter::once(Series::new(
            "fleet (demand)",
            r.demand_series.clone(),
        )))
        .collect();
    b.push_str(&svg::lines_capped(
        "Highest edge utilization over time (axis stops at 2)",
        &r.minutes,
        &series,
        "minutes",
        "utilization",
        Some(2.0),
    ));
    let series: Vec<Series> = r
        .policies
        .iter()
        .map(|p| Series::new(p.name, p.origin_gbps_series.clone()))
        .chain(std::iter::once(Series::new(
            "least possible",
            r.best_origin_gbps_series.clone(),
        )))
        .collect();
    b.push_str(&svg::lines(
        "Origin egress over time",
        &r.minutes,
        &series,
        "minutes",
        "Gbit/s",
    ));
    let ranks: Vec<f64> = (0..r
        .policies
        .iter()
        .map(|p| p.final_utilization.len())
        .max()
        .unwrap_or(0))
        .map(|i| i as f64)
        .collect();
    let series: Vec<Series> = r
        .policies
        .iter()
        .map(|p| Series::new(p.name, p.final_utilization.clone()))
        .collect();
    b.push_str(&svg::lines_capped(
        "Edge utilization at the end, highest first (axis stops at 2)",
        &ranks,
        &series,
        "edges by rank",
        "utilization",
        Some(2.0),
    ));
    page("hls-cdn routing policies", &b)
}
