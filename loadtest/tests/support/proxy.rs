//! A small fault-injecting TCP proxy for tests: forwards connections from a
//! loopback port to a target, and can be told to cut the link (refuse new
//! connections and reset open ones) and heal it again — a network partition
//! between two processes on one machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// The address to connect to instead of the target.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    cut_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let (cut_tx, cut_rx) = watch::channel(false);
        let flag = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        FaultProxy {
            addr,
            cut,
            cut_tx,
            task,
        }
    }

    /// Cuts the link: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.cut_tx.send(true);
    }

    /// Heals the link.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        let _ = self.cut_tx.send(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
