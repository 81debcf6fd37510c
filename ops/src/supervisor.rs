//! Child processes kept running: each one is started with its output in a
//! log file, restarted with a backoff when it dies, and stopped with SIGTERM
//! (SIGKILL after a grace period).
//!
//! All children of one [`Group`] share one process group, apart from the
//! supervisor's own: Ctrl-C in a terminal reaches the supervisor alone, which
//! then stops the children in the order it wants (edges drain first), and a
//! last `killpg` sweep leaves nothing running.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// First restart delay; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long is restarted after [`FIRST_BACKOFF`] again.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// When a child that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Whatever its exit status.
    Always,
    /// Unless it exited with status 0 (an edge exits 0 once it has drained:
    /// a drain asked for by an operator means "take it out").
    UnlessClean,
}

/// How to run one child.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name in messages (`edge-2`).
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment (secrets go here rather than in `ps` output).
    pub envs: Vec<(String, String)>,
    /// File its stdout and stderr are appended to.
    pub log: PathBuf,
    /// Restart policy.
    pub restart: Restart,
    /// How long it gets to exit after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// Also print its stdout lines on ours (they still go to the log).
    pub echo: bool,
}

/// What happened to a child, for the supervisor's owner to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Started (again, when `restarts` > 0).
    Started {
        /// The child.
        name: String,
        /// Its process id.
        pid: u32,
        /// How many times it was restarted before.
        restarts: u32,
    },
    /// Exited on its own.
    Exited {
        /// The child.
        name: String,
        /// The status, in words.
        status: String,
        /// Exit status 0.
        clean: bool,
        /// When it is started again; `None`: it is not.
        restart_in: Option<Duration>,
    },
    /// Could not be started.
    SpawnFailed {
        /// The child.
        name: String,
        /// Why.
        error: String,
        /// When it is tried again.
        retry_in: Duration,
    },
    /// Stopped because it was asked to.
    Stopped {
        /// The child.
        name: String,
        /// The status, in words.
        status: String,
    },
}

impl Event {
    /// The child the event is about.
    pub fn name(&self) -> &str {
        match self {
            Event::Started { name, .. }
            | Event::Exited { name, .. }
            | Event::SpawnFailed { name, .. }
            | Event::Stopped { name, .. } => name,
        }
    }
}

/// The process group children are started in (created by the first child).
#[derive(Debug, Clone, Default)]
pub struct Group {
    pgid: Arc<Mutex<Option<i32>>>,
}

impl Group {
    /// A group that does not exist yet.
    pub fn new() -> Self {
        Group::default()
    }

    /// The process group id, once a child was started.
    pub fn id(&self) -> Option<i32> {
        *self.pgid.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, spec: &Spec) -> std::io::Result<tokio::process::Child> {
        let mut pgid = self.pgid.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = *pgid {
            match command(spec, group)?.spawn() {
                Ok(child) => return Ok(child),
                // The group is gone (every member exited): start a new one.
                Err(error) if error.raw_os_error() == Some(nix::libc::EPERM) => {}
                Err(error) => return Err(error),
            }
        }
        let child = command(spec, 0)?.spawn()?;
        *pgid = child.id().and_then(|id| i32::try_from(id).ok());
        Ok(child)
    }

    /// Sends SIGKILL to whatever is left in the group.
    pub fn kill_all(&self) {
        if let Some(group) = self.id() {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}

fn command(spec: &Spec, group: i32) -> std::io::Result<tokio::process::Command> {
    let mut log = OpenOptions::new().create(true).append(true).open(&spec.log)?;
    let _ = writeln!(
        log,
        "==> hlscdn: starting {} {}",
        spec.program.display(),
        spec.args.join(" ")
    );
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(if spec.echo {
            Stdio::piped()
        } else {
            Stdio::from(log.try_clone()?)
        })
        .stderr(log)
        .process_group(group)
        .kill_on_drop(true);
    Ok(command)
}

/// A child kept running by a task until [`Supervised::stop`].
#[derive(Debug)]
pub struct Supervised {
    name: String,
    pid: Arc<AtomicI32>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervised {
    /// Starts `spec` in `group`; reports what happens on `events`.
    pub fn start(spec: Spec, group: Group, events: mpsc::UnboundedSender<Event>) -> Self {
        let pid = Arc::new(AtomicI32::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let name = spec.name.clone();
        let task = tokio::spawn(keep(spec, group, pid.clone(), stop_rx, events));
        Supervised {
            name,
            pid,
            stop,
            task,
        }
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The running process, if any.
    pub fn pid(&self) -> Option<u32> {
        u32::try_from(self.pid.load(Ordering::Relaxed))
            .ok()
            .filter(|&p| p > 0)
    }

    /// Whether the supervision ended (stopped, or exited and not restarted).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the child to stop (SIGTERM; SIGKILL after its stop timeout) and
    /// waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Sleeps for `delay`; true if a stop was asked for meanwhile.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(delay) => None,
        _ = stop.wait_for(|s| *s) => Some(true),
    };
    stopped.unwrap_or_else(|| *stop.borrow())
}

fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown status ({error})"),
    }
}

async fn keep(
    spec: Spec,
    group: Group,
    pid: Arc<AtomicI32>,
    mut stop: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut restarts = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut child = match group.spawn(&spec) {
            Ok(child) => child,
            Err(error) => {
                let _ = events.send(Event::SpawnFailed {
                    name: spec.name.clone(),
                    error: error.to_string(),
                    retry_in: backoff,
                });
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(echo(stdout, spec.log.clone()));
        }
        let started = Instant::now();
        let id = child.id().unwrap_or(0);
        pid.store(i32::try_from(id).unwrap_or(0), Ordering::Relaxed);
        let _ = events.send(Event::Started {
            name: spec.name.clone(),
            pid: id,
            restarts,
        });
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = stop.wait_for(|s| *s) => None,
        };
        match exited {
            Some(status) => {
                pid.store(0, Ordering::Relaxed);
                let clean = status.as_ref().is_ok_and(ExitStatus::success);
                let again = match spec.restart {
                    Restart::Always => true,
                    Restart::UnlessClean => !clean,
                };
                if started.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                let _ = events.send(Event::Exited {
                    name: spec.name.clone(),
                    status: describe(&status),
                    clean,
                    restart_in: again.then_some(backoff),
                });
                if !again || sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                restarts += 1;
            }
            None => {
                let status = terminate(&mut child, spec.stop_timeout).await;
                pid.store(0, Ordering::Relaxed);
                let _ = events.send(Event::Stopped {
                    name: spec.name.clone(),
                    status: describe(&status),
                });
                return;
            }
        }
    }
}

/// Copies a child's stdout lines to ours and to its log.
async fn echo(stdout: tokio::process::ChildStdout, log: PathBuf) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut file = OpenOptions::new().create(true).append(true).open(&log).ok();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{line}");
        if let Some(file) = file.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// SIGTERM, then SIGKILL if the child has not exited within `timeout`.
async fn terminate(child: &mut tokio::process::Child, timeout: Duration) -> std::io::Result<ExitStatus> {
    if let Some(id) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(id), Signal::SIGTERM);
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, script: &str, restart: Restart, dir: &std::path::Path) -> Spec {
        Spec {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            envs: vec![("GREETING".into(), "hello".into())],
            log: dir.join(format!("{name}.log")),
            restart,
            stop_timeout: Duration::from_secs(5),
            echo: false,
        }
    }

    async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .ok()
            .flatten()
            .expect("an event within 10 s")
    }

    #[tokio::test]
    async fn restarts_a_dying_child_and_stops_it_with_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut events) = mpsc::unbounded_channel();
        let group = Group::new();
        let marker = dir.path().join("ran");
        let script = format!(
            "echo $GREETING; if [ -e {m} ]; then trap 'exit 0' TERM; echo tr''apped; while :; do sleep 0.05; done; else touch {m}; exit 3; fi",
            m = marker.display()
        );
        let child = Supervised::start(spec("c", &script, Restart::Always, dir.path()), group.clone(), tx);
        assert!(matches!(
            next(&mut events).await,
            Event::Started { restarts: 0, .. }
        ));
        match next(&mut events).await {
            Event::Exited {
                clean, restart_in, ..
            } => {
                assert!(!clean);
                assert_eq!(restart_in, Some(FIRST_BACKOFF));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            next(&mut events).await,
            Event::Started { restarts: 1, .. }
        ));
        let log_path = dir.path().join("c.log");
        for _ in 0..200 {
            if std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("trapped")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = child.pid().expect("running");
        assert_ne!(group.id(), None);
        assert_ne!(
            nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).ok(),
            nix::unistd::getpgid(None).ok(),
            "children are not in the supervisor's process group"
        );
        child.stop().await;
        match next(&mut events).await {
            Event::Stopped { status, .. } => assert!(status.contains("exit status: 0"), "{status}"),
            other => panic!("{other:?}"),
        }
        let log = std::fs::read_to_string(dir.path().join("c.log")).expect("log");
        assert_eq!(log.matches("hello").count(), 2, "{log}");
    }

    #[tokio::test]
    async fn a_clean_exit_ends_an_unless_clean_child() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut events) = mpsc::unbounded_channel();
        let child = Supervised::start(
            spec("e", "exit 0", Restart::UnlessClean, dir.path()),
            Group::new(),
            tx,
        );
        assert!(matches!(next(&mut events).await, Event::Started { .. }));
        assert!(matches!(
            next(&mut events).await,
            Event::Exited {
                clean: true,
                restart_in: None,
                ..
            }
        ));
        tokio::time::timeout(Duration::from_secs(5), async {
            while !child.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("supervision ends");
    }

    #[tokio::test]
    async fn sigkill_after_the_stop_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut s = spec(
            "stubborn",
            "trap '' TERM; while :; do sleep 0.05; done",
            Restart::Always,
            dir.path(),
        );
        s.stop_timeout = Duration::from_millis(300);
        let child = Supervised::start(s, Group::new(), tx);
        assert!(matches!(next(&mut events).await, Event::Started { .. }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        child.stop().await;
        assert!(started.elapsed() < Duration::from_secs(3));
        match next(&mut events).await {
            Event::Stopped { status, .. } => assert!(status.contains("signal: 9"), "{status}"),
            other => panic!("{other:?}"),
        }
    }
}
