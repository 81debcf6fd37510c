//! `hlscdn-loadtest`: parses the command line and runs it (see the `loadtest` crate).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = loadtest::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hlscdn-loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(loadtest::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlscdn-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
