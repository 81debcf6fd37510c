//! What the demo prints on its terminal: the banner once the cluster is up,
//! and the supervisor's events (restarts, deaths, drained edges, stops).

use std::path::Path;
use std::time::Duration;

use super::{Args, Layout, url};
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

/// Prints where everything listens, once the cluster is up; with `--tls`,
/// `ca` is the CA file and how to trust it is printed too.
pub(super) fn print_banner(
    layout: &Layout,
    args: &Args,
    token: &str,
    data: &Path,
    took: Duration,
    ca: Option<&Path>,
) {
    let url = |port| url(args.tls, port);
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
    let edge_list: Vec<String> = (0..args.edges)
        .map(|i| format!("edge-{} {}", i + 1, url(layout.edge(i))))
        .collect();
    println!("  edges:       {}", edge_list.join(", "));
    println!(
        "  origin:      {} (data in {})",
        url(layout.origin()),
        data.display()
    );
    if args.autoscale {
        println!(
            "  autoscale:   on; added edges start at {}",
            url(layout.first_extra_edge())
        );
    }
    if let Some(ca) = ca {
        let ca = ca.display();
        println!("  tls:         HTTPS with HTTP/2 everywhere; certificates of a CA made for this run: {ca}");
        println!(
            "               curl --cacert {ca} {}/live/demo-1/master.m3u8",
            routers[0]
        );
        println!(
            "               ffmpeg -ca_file {ca} -i {}/live/demo-1/master.m3u8 -t 10 -f null -",
            routers[0]
        );
        println!(
            "               Chromium/Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n hlscdn-demo -i {ca}"
        );
        println!("               (certutil is in libnss3-tools; docs/TLS.md has macOS and Firefox)");
    }
    println!("  fleet token: {token}");
    let trust = ca
        .map(|ca| format!(" --tls-ca-file {}", ca.display()))
        .unwrap_or_default();
    println!("  try:         hlscdn status --router {}{trust}", routers[0]);
    println!(
        "               hlscdn drain edge-2 --router {} --fleet-token {token}{trust}",
        routers[0]
    );
    println!("Ctrl-C stops everything (edges drain first).");
}
