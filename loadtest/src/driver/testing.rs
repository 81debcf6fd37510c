//! Loopback servers for the driver's tests: one that answers every request
//! the same way, and an address where connections are refused.

use url::Url;

/// A server answering every request with `status` and `body`, then
/// closing the connection; with `declared`, a `Content-Length` of that
/// many bytes instead of the body's (a body cut short when larger).
pub(super) async fn answering(status: &'static str, body: &'static str, declared: Option<usize>) -> Url {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    declared.unwrap_or(body.len())
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    Url::parse(&format!("http://{addr}/")).expect("url")
}

/// A loopback address nobody listens on: connections are refused.
pub(super) fn refusing() -> Url {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url")
}
