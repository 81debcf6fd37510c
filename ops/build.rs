//! Copies the front-end code that comes from the npm registry (hls.js) into
//! `OUT_DIR`, where `src/dashboard/assets.rs` embeds it, so the binary serves
//! it and the pages load nothing from the internet.
//!
//! The packages are installed by `npm ci` in `ops/` (`scripts/deps.sh` does
//! it). When they are missing, this script runs `npm ci` itself if `npm` is
//! on the PATH, and otherwise stops with a message saying what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Files taken from `node_modules`, and their names in `OUT_DIR`.
const VENDORED: &[(&str, &str)] = &[
    ("node_modules/hls.js/dist/hls.min.js", "hls.min.js"),
    ("node_modules/hls.js/LICENSE", "hls.js.LICENSE"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=package.json");
    println!("cargo:rerun-if-changed=package-lock.json");
    for (from, _) in VENDORED {
        println!("cargo:rerun-if-changed={from}");
    }

    if VENDORED.iter().any(|(from, _)| !manifest.join(from).exists()) {
        npm_ci(&manifest);
    }
    for (from, to) in VENDORED {
        let source = manifest.join(from);
        if let Err(error) = std::fs::copy(&source, out.join(to)) {
            panic!(
                "ops: cannot read {} ({error}). The dashboard embeds hls.js from npm: run \
                 `bash scripts/deps.sh` (or `npm ci` in ops/) first",
                source.display()
            );
        }
    }
}

fn npm_ci(dir: &Path) {
    println!(
        "cargo:warning=ops: node_modules is missing; running `npm ci` in {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=ops: `npm ci` failed ({status})"),
        Err(error) => println!("cargo:warning=ops: cannot run npm ({error}); install Node.js and npm"),
    }
}
