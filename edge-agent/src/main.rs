//! `hlscdn-edge`: not part of this release yet; see `edge_agent`'s crate docs.

fn main() -> std::process::ExitCode {
    eprintln!("hlscdn-edge: {}", edge_agent::STATUS);
    std::process::ExitCode::from(2)
}
