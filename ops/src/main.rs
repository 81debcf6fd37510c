//! `hlscdn`: not part of this release yet; see `ops`'s crate docs.

fn main() -> std::process::ExitCode {
    eprintln!("hlscdn: {}", ops::STATUS);
    std::process::ExitCode::from(2)
}
