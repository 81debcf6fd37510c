//! `hlscdn-router`: not part of this release yet; see `router`'s crate docs.

fn main() -> std::process::ExitCode {
    eprintln!("hlscdn-router: {}", router::STATUS);
    std::process::ExitCode::from(2)
}
