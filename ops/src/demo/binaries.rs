//! The binaries the demo runs: found next to `hlscdn`, or built with cargo
//! into the same target directory (and profile) when missing or when
//! `--build` asks for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The binaries the demo runs: (package, binary).
pub const BINARIES: &[(&str, &str)] = &[
    ("origin-store", "hlscdn-origin"),
    ("router", "hlscdn-router"),
    ("edge-agent", "hlscdn-edge"),
];

/// The path of binary `name` next to the running `hlscdn`.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the hlscdn executable")?;
    let dir = exe.parent().context("the hlscdn executable has no directory")?;
    Ok(dir.join(name))
}

/// Finds the binaries next to `hlscdn`; builds the missing ones (all of them
/// with `rebuild`) with cargo in the workspace this `hlscdn` was built from.
pub fn ensure_binaries(rebuild: bool) -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    let mut paths = BTreeMap::new();
    let mut missing = Vec::new();
    for (package, bin) in BINARIES {
        let path = sibling(bin)?;
        if rebuild || !path.exists() {
            missing.push((*package, *bin));
        }
        paths.insert(*bin, path);
    }
    if missing.is_empty() {
        return Ok(paths);
    }
    let exe_dir = sibling("")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|w| w.join("Cargo.toml").exists())
        .with_context(|| {
            format!(
                "{} missing next to hlscdn ({}), and the workspace hlscdn was built from is not here to build them",
                missing.iter().map(|(_, b)| *b).collect::<Vec<_>>().join(", "),
                exe_dir.display()
            )
        })?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = build_args(&exe_dir, &missing);
    println!(
        "hlscdn demo: building {} in {}: {cargo} {}",
        missing.iter().map(|(_, b)| *b).collect::<Vec<_>>().join(", "),
        workspace.display(),
        args.join(" ")
    );
    let mut command = std::process::Command::new(&cargo);
    command.current_dir(workspace).args(&args);
    let status = command.status().with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("building the binaries failed ({status})");
    }
    for (_, bin) in &missing {
        if !paths.get(bin).is_some_and(|p| p.exists()) {
            bail!("cargo built {bin} somewhere else than {}", exe_dir.display());
        }
    }
    Ok(paths)
}

/// The `cargo` arguments that build `missing` (package, binary) into `exe_dir`
/// (`<target dir>/<profile>`).
fn build_args(exe_dir: &Path, missing: &[(&str, &str)]) -> Vec<String> {
    let mut args = vec!["build".to_owned()];
    match exe_dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug") {
        "release" => args.push("--release".into()),
        "debug" => {}
        other => args.extend(["--profile".into(), other.to_owned()]),
    }
    if let Some(target) = exe_dir.parent() {
        args.extend(["--target-dir".into(), target.display().to_string()]);
    }
    for (package, bin) in missing {
        args.extend([
            "-p".into(),
            (*package).to_owned(),
            "--bin".into(),
            (*bin).to_owned(),
        ]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_are_built_into_the_same_target_dir() {
        let args = build_args(Path::new("/w/target/release/"), &BINARIES[..2]);
        assert_eq!(
            args.join(" "),
            "build --release --target-dir /w/target -p origin-store --bin hlscdn-origin -p router --bin hlscdn-router"
        );
        let args = build_args(Path::new("/w/target/debug"), &BINARIES[2..]);
        assert_eq!(
            args.join(" "),
            "build --target-dir /w/target -p edge-agent --bin hlscdn-edge"
        );
        let args = build_args(Path::new("/w/target/profiling"), &[]);
        assert_eq!(args.join(" "), "build --profile profiling --target-dir /w/target");
    }
}
