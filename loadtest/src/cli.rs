//! The command line (`clap`) and what each subcommand does with it. The
//! binary's `main` only parses and calls [`run`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::driver::{self, PlayersConfig, Streams};
use crate::error::{Error, Result};
use crate::player::Rendition;
use crate::sim::{self, Policy, Scenario};
use crate::{html, report};

/// hls-cdn load tester: simulated players against a real cluster, and a
/// routing-policy simulator at internet scale.
#[derive(Debug, Parser)]
#[command(name = "hlscdn-loadtest", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulated HLS players against routers and edges (loopback or your own cluster).
    Players(Box<PlayersArgs>),
    /// Routing policies compared on one simulated world, without a network.
    Simulate(Box<SimulateArgs>),
}

/// `players` flags.
#[derive(Debug, Args)]
pub struct PlayersArgs {
    /// A router; repeat for several (viewers take them in turn).
    #[arg(long = "router", value_name = "URL", required = true)]
    pub routers: Vec<Url>,
    /// Viewers in all.
    #[arg(long, default_value_t = 100)]
    pub viewers: usize,
    /// Length of the run (`60s`, `2m`, `500ms`); every viewer stops then.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Viewers arriving per second (`20/s` or `20`); default: all within 10 s.
    #[arg(long, value_name = "R/s", value_parser = parse_rate)]
    pub arrival_rate: Option<f64>,
    /// `abr` (by measured throughput) or `fixed NAME` (e.g. `fixed 240p`).
    #[arg(long, num_args = 1..=2, value_names = ["MODE", "NAME"], default_value = "abr")]
    pub rendition: Vec<String>,
    /// Zipf exponent of stream popularity (0: uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// The origin: streams from its `/api/v1/streams`, requests from its `/metrics`.
    #[arg(long, value_name = "URL")]
    pub origin: Option<Url>,
    /// A stream (`live/demo-1`) when no `--origin` is given; repeat. Default: the demo streams.
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// The origin's `/metrics` (default: from `--origin`).
    #[arg(long, value_name = "URL")]
    pub origin_metrics: Option<Url>,
    /// An edge's `/metrics`; repeat. Default: every edge the first router lists.
    #[arg(long = "edge-metrics", value_name = "URL", num_args = 1..)]
    pub edge_metrics: Vec<Url>,
    /// Seed of stream choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Requests slower than this count as slow.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub slow: Duration,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Probe every segment URL the playlists name, once, with a one-byte
    /// range request (the "every segment URL fetchable" invariant). Adds edge
    /// and origin requests for segments no viewer plays.
    #[arg(long)]
    pub probe_segments: bool,
}

/// `simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Edges.
    #[arg(long, default_value_t = Scenario::default().edges)]
    pub edges: usize,
    /// Streams (each with three renditions).
    #[arg(long, default_value_t = Scenario::default().streams)]
    pub streams: usize,
    /// Viewers at the peak.
    #[arg(long, default_value_t = Scenario::default().viewers)]
    pub viewers: u64,
    /// Seed.
    #[arg(long, default_value_t = Scenario::default().seed)]
    pub seed: u64,
    /// Simulated minutes (one tick each).
    #[arg(long, default_value_t = Scenario::default().ticks)]
    pub minutes: u32,
    /// Minutes over which the audience grows to its peak.
    #[arg(long, default_value_t = Scenario::default().ramp_ticks)]
    pub ramp_minutes: u32,
    /// Zipf exponent of stream popularity.
    #[arg(long, default_value_t = Scenario::default().zipf)]
    pub zipf: f64,
    /// Share of streams that are VOD.
    #[arg(long, default_value_t = Scenario::default().vod_share)]
    pub vod_share: f64,
    /// Mean viewing time, minutes.
    #[arg(long, default_value_t = Scenario::default().mean_watch_ticks)]
    pub watch_minutes: f64,
    /// Fleet utilization at the peak (sets the edges' capacities).
    #[arg(long, default_value_t = Scenario::default().utilization)]
    pub utilization: f64,
    /// An edge's cache, in seconds of its full egress.
    #[arg(long, default_value_t = Scenario::default().cache_secs)]
    pub cache_secs: f64,
    /// Edges that fail during the run.
    #[arg(long, default_value_t = Scenario::default().failures)]
    pub failures: usize,
    /// Edges drained one after the other.
    #[arg(long, default_value_t = Scenario::default().drains)]
    pub drains: usize,
    /// Load slack ε of ours.
    #[arg(long, default_value_t = Scenario::default().epsilon)]
    pub epsilon: f64,
    /// Virtual nodes per edge on the consistent-hash ring.
    #[arg(long, default_value_t = Scenario::default().vnodes)]
    pub vnodes: usize,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Parses `60s`, `2m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 60s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a duration"))
}

/// Parses `20/s` or `20`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let number = s.trim().trim_end_matches("/s");
    match number.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("`{s}` is not a rate (e.g. 20/s)")),
    }
}

/// Parses the `--rendition` words.
pub fn parse_rendition(words: &[String]) -> Result<Rendition> {
    match words {
        [mode] if mode == "abr" => Ok(Rendition::Abr),
        [mode, name] if mode == "fixed" && !name.is_empty() => Ok(Rendition::Fixed(name.clone())),
        _ => Err(Error::BadInput(format!(
            "`--rendition` must be `abr` or `fixed NAME` (got `{}`)",
            words.join(" ")
        ))),
    }
}

impl PlayersArgs {
    /// The run these flags describe.
    pub fn config(&self) -> Result<PlayersConfig> {
        let mut config = PlayersConfig::new(self.routers.clone(), self.viewers, self.duration);
        if let Some(rate) = self.arrival_rate {
            config.arrival_rate = rate;
        }
        config.player.rendition = parse_rendition(&self.rendition)?;
        config.zipf = self.zipf;
        config.streams = match (&self.origin, self.streams.is_empty()) {
            (Some(origin), _) => Streams::Origin(origin.clone()),
            (None, false) => Streams::List(self.streams.clone()),
            (None, true) => config.streams,
        };
        config.origin_metrics = self
            .origin_metrics
            .clone()
            .or_else(|| self.origin.as_ref().and_then(|o| driver::metrics_url(o.as_str())));
        config.edge_metrics = self.edge_metrics.clone();
        config.seed = self.seed;
        config.timeout = self.timeout;
        config.slow = self.slow;
        config.progress = !self.quiet;
        config.probe_segments = self.probe_segments;
        config.validate()?;
        Ok(config)
    }
}

impl SimulateArgs {
    /// The scenario these flags describe.
    pub fn scenario(&self) -> Result<Scenario> {
        let scenario = Scenario {
            edges: self.edges,
            streams: self.streams,
            viewers: self.viewers,
            seed: self.seed,
            ticks: self.minutes,
            ramp_ticks: self.ramp_minutes.min(self.minutes),
            zipf: self.zipf,
            vod_share: self.vod_share,
            mean_watch_ticks: self.watch_minutes,
            utilization: self.utilization,
            cache_secs: self.cache_secs,
            failures: self.failures,
            drains: self.drains,
            epsilon: self.epsilon,
            vnodes: self.vnodes,
            ..Scenario::default()
        };
        scenario.validate()?;
        Ok(scenario)
    }
}

/// Writes `contents` to `path`.
pub fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain structs of numbers and strings cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Runs the parsed command line; the table goes to stdout.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Players(args) => {
            let config = args.config()?;
            let report = driver::run(&config).await?;
            print!("{}", report::players_table(&report));
            if let Some(path) = &args.json {
                write(path, &json(&report))?;
            }
            if let Some(path) = &args.html {
                write(path, &html::players(&report))?;
            }
        }
        Command::Simulate(args) => {
            let scenario = args.scenario()?;
            let started = Instant::now();
            let report = sim::simulate(&scenario, &Policy::ALL, started)?;
            print!("{}", sim::table(&report));
            eprintln!("simulated in {:.1} s", started.elapsed().as_secs_f64());
            if let Some(path) = &args.json {
                write(path, &json(&report))?;
            }
            if let Some(path) = &args.html {
                write(path, &html::simulate(&report))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_rates_and_renditions() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
        assert_eq!(parse_rate("20/s"), Ok(20.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0/s").is_err());
        let w = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(parse_rendition(&w("abr")).ok(), Some(Rendition::Abr));
        assert_eq!(
            parse_rendition(&w("fixed 240p")).ok(),
            Some(Rendition::Fixed("240p".into()))
        );
        assert!(parse_rendition(&w("fixed")).is_err());
        assert!(parse_rendition(&w("best")).is_err());
    }

    #[test]
    fn command_lines() {
        let cli = Cli::try_parse_from([
            "hlscdn-loadtest",
            "players",
            "--router",
            "http://127.0.0.1:8080",
            "--router",
            "http://127.0.0.1:8081",
            "--viewers",
            "50",
            "--duration",
            "20s",
            "--arrival-rate",
            "25/s",
            "--rendition",
            "fixed",
            "240p",
            "--origin",
            "http://127.0.0.1:8000",
            "--edge-metrics",
            "http://127.0.0.1:9001",
            "http://127.0.0.1:9002",
        ])
        .expect("parses");
        let Command::Players(args) = cli.command else {
            panic!("players");
        };
        let config = args.config().expect("config");
        assert_eq!(config.routers.len(), 2);
        assert_eq!(config.arrival_rate, 25.0);
        assert_eq!(config.player.rendition, Rendition::Fixed("240p".into()));
        assert_eq!(config.edge_metrics.len(), 2);
        assert_eq!(
            config.origin_metrics.map(|u| u.to_string()).as_deref(),
            Some("http://127.0.0.1:8000/metrics")
        );
        assert!(
            Cli::try_parse_from(["hlscdn-loadtest", "players"]).is_err(),
            "--router is required"
        );

        let cli = Cli::try_parse_from([
            "hlscdn-loadtest",
            "simulate",
            "--edges",
            "20",
            "--viewers",
            "5000",
        ])
        .expect("parses");
        let Command::Simulate(args) = cli.command else {
            panic!("simulate");
        };
        let s = args.scenario().expect("scenario");
        assert_eq!((s.edges, s.viewers, s.streams), (20, 5000, 10_000));
    }
}
