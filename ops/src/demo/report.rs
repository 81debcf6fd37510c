//! What the demo prints on its terminal: the banner once the cluster is up,
//! and the supervisor's events (restarts, deaths, drained edges, stops).

use std::path::Path;
use std::time::Duration;

use super::{Layout, url};
use crate::supervisor::Event;

/// Prints what the supervisor reports about a child.
pub(super) fn print_event(event: &Event, logs: &Path) {
    match event {
        Event::Started { name, pid, restarts } if *restarts > 0 => {
            println!("demo: {name} restarted (pid {pid})");
        }
        Event::Started { .. } => {}
        Event::Exited {
            name,
            status,
            restart_in: Some(delay),
            ..
        } => println!(
            "demo: {name} died ({status}); restarting in {delay:?} (log {})",
            logs.join(format!("{name}.log")).display()
        ),
        Event::Exited { name, status, .. } => {
            println!("demo: {name} drained and exited ({status}); not restarted");
        }
        Event::SpawnFailed {
            name,
            error,
            retry_in,
        } => {
            println!("demo: cannot start {name}: {error}; retrying in {retry_in:?}");
        }
        Event::Stopped { name, status } => println!("demo: stopped {name} ({status})"),
    }
}

/// Prints where everything listens, once the cluster is up.
pub(super) fn print_banner(
    layout: &Layout,
    edges: u16,
    token: &str,
    data: &Path,
    took: Duration,
    autoscale: bool,
) {
    let dashboard = url(layout.dashboard());
    let routers: Vec<String> = layout.routers().iter().map(|&p| url(p)).collect();
    println!("hlscdn demo is up in {:.1} s", took.as_secs_f64());
    println!("  player:      {dashboard}/player");
    println!("  dashboard:   {dashboard}/");
    println!("  routers:     {}", routers.join("  "));
    println!(
        "  play:        {}/live/demo-1/master.m3u8 (any HLS player)",
        routers[0]
    );
    let edge_list: Vec<String> = (0..edges)
        .map(|i| format!("edge-{} {}", i + 1, url(layout.edge(i))))
        .collect();
    println!("  edges:       {}", edge_list.join(", "));
    println!(
        "  origin:      {} (data in {})",
        url(layout.origin()),
        data.display()
    );
    if autoscale {
        println!(
            "  autoscale:   on; added edges start at {}",
            url(layout.first_extra_edge())
        );
    }
    println!("  fleet token: {token}");
    println!("  try:         hlscdn status --router {}", routers[0]);
    println!(
        "               hlscdn drain edge-2 --router {} --fleet-token {token}",
        routers[0]
    );
    println!("Ctrl-C stops everything (edges drain first).");
}
