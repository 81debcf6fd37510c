//! `hlscdn-loadtest`: not part of this release yet; see `loadtest`'s crate docs.

fn main() -> std::process::ExitCode {
    eprintln!("hlscdn-loadtest: {}", loadtest::STATUS);
    std::process::ExitCode::from(2)
}
