//! Waiting for the demo cluster to come up: every child answers `/readyz` and
//! a router holds the base edges as fresh; a child that exits or cannot start
//! meanwhile fails the startup with the last lines of its log.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use futures::future::join_all;
use tokio::sync::mpsc;

use super::STARTUP_TIMEOUT;
use crate::api;
use crate::supervisor::Event;

/// The last lines of a log file, for a failure message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until every URL answers `/readyz` and a router holds `edges` fresh
/// edges; fails as soon as a child exits.
pub(super) async fn wait_ready(
    ready_urls: &[(String, String)],
    router: &str,
    edges: usize,
    events: &mut mpsc::UnboundedReceiver<Event>,
    logs: &Path,
) -> anyhow::Result<()> {
    let client = api::client();
    let all_ready = async {
        let each = ready_urls.iter().map(|(_, url)| {
            let client = client.clone();
            async move {
                while !api::is_ready(&client, url).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        join_all(each).await;
        loop {
            if let Ok(view) = api::edges(&client, router).await
                && view.edges.iter().filter(|e| e.fresh).count() >= edges
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let failed = async {
        loop {
            match events.recv().await {
                Some(Event::Exited { name, status, .. }) => {
                    let reason = format!("{name} exited during startup ({status})");
                    return (name, reason);
                }
                Some(Event::SpawnFailed { name, error, .. }) => {
                    let reason = format!("cannot start {name}: {error}");
                    return (name, reason);
                }
                Some(_) => {}
                None => return (String::new(), "the supervisor stopped".to_owned()),
            }
        }
    };
    tokio::select! {
        () = all_ready => Ok(()),
        (name, reason) = failed => {
            let log = logs.join(format!("{name}.log"));
            bail!("{reason}; last lines of {}:\n{}", log.display(), tail(&log, 15))
        }
        () = tokio::time::sleep(STARTUP_TIMEOUT) => {
            let waiting: Vec<String> = join_all(ready_urls.iter().map(|(name, url)| {
                let client = client.clone();
                async move { (!api::is_ready(&client, url).await).then(|| name.clone()) }
            }))
            .await
            .into_iter()
            .flatten()
            .collect();
            bail!(
                "the cluster was not ready within {STARTUP_TIMEOUT:?} (not ready: {}); logs in {}",
                if waiting.is_empty() { "edges not fresh on the routers".to_owned() } else { waiting.join(", ") },
                logs.display()
            )
        }
    }
}
