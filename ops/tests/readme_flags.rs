//! The documented command lines stay true to the binaries: every `--flag`
//! that README.md and docs/*.md show for `hlscdn-origin`, `hlscdn-router`,
//! `hlscdn-edge` and `hlscdn <command>` is one that binary's `--help`
//! lists, and every flag of every server shows its `HLSCDN_*` variable.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_kit::bin_path;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A documented program: a binary, with the `hlscdn` command when it has one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Program {
    bin: &'static str,
    command: Option<String>,
}

impl Program {
    /// `hlscdn-…`, or `hlscdn COMMAND`, from the words of a command line.
    fn of(words: &[&str]) -> Option<Program> {
        let bin = match words.first().copied()? {
            "hlscdn-origin" => "hlscdn-origin",
            "hlscdn-router" => "hlscdn-router",
            "hlscdn-edge" => "hlscdn-edge",
            "hlscdn" => "hlscdn",
            _ => return None,
        };
        let command = (bin == "hlscdn")
            .then(|| words.get(1).map(|c| (*c).to_owned()))
            .flatten();
        if bin == "hlscdn" && command.is_none() {
            return None;
        }
        Some(Program { bin, command })
    }

    fn help(&self) -> String {
        let package = match self.bin {
            "hlscdn-origin" => "origin-store",
            "hlscdn-router" => "router",
            "hlscdn-edge" => "edge-agent",
            _ => "ops",
        };
        let mut command = Command::new(bin_path(package, self.bin));
        command.args(self.command.iter()).arg("--help");
        // What the help shows must not depend on the environment of the test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HLSCDN_") {
                command.env_remove(name);
            }
        }
        let output = command.output().expect("run --help");
        assert!(output.status.success(), "{self:?} --help failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// `--name` of every word of `words` that is a flag (`[--name=VALUE]`,
/// `--name`), in order.
fn flags<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    words
        .into_iter()
        .map(|w| w.trim_start_matches('['))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            let end = w[2..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .map_or(w.len(), |e| e + 2);
            w[..end].to_owned()
        })
        .collect()
}

/// The flags each program's command lines show: in code blocks, commands
/// (continued over lines ending in `\`, after any `VAR=value` words); in
/// prose, backquoted `--flag` spans, for the program of the section
/// (`## The router`) or else of the page (`page`; `None`: any program).
fn documented(text: &str, page: Option<Program>) -> Vec<(Option<Program>, String)> {
    let mut found = Vec::new();
    let mut in_block = false;
    let mut line_so_far = String::new();
    let mut section = page.clone();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let code = line.split(" # ").next().unwrap_or(line);
            line_so_far.push_str(code.trim_end().trim_end_matches('\\'));
            line_so_far.push(' ');
            if code.trim_end().ends_with('\\') {
                continue;
            }
            let words: Vec<&str> = line_so_far
                .split_whitespace()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            if let Some(program) = Program::of(&words) {
                found.extend(
                    flags(words.iter().copied())
                        .into_iter()
                        .map(|f| (Some(program.clone()), f)),
                );
            }
            line_so_far.clear();
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            section = match heading {
                "The origin" => Program::of(&["hlscdn-origin"]),
                "The router" => Program::of(&["hlscdn-router"]),
                _ => page.clone(),
            };
        }
        for span in line.split('`').skip(1).step_by(2) {
            let words: Vec<&str> = span.split_whitespace().collect();
            match Program::of(&words) {
                Some(program) => {
                    found.extend(
                        flags(words.iter().copied())
                            .into_iter()
                            .map(|f| (Some(program.clone()), f)),
                    );
                }
                None => found.extend(
                    flags(words.first().copied())
                        .into_iter()
                        .map(|f| (section.clone(), f)),
                ),
            }
        }
    }
    found
}

/// The flags a `--help` lists (`-h, --help`, `--listen <ADDR>`, …).
fn listed(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| is_flag_line(l))
        .flat_map(|l| flags(l.split([' ', ',', '['])))
        .collect()
}

/// Whether a `--help` line starts a flag's entry (`-h, --help`, `--listen`),
/// not a possible value (`- origin: …`).
fn is_flag_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('-') && line[1..].starts_with(|c: char| c == '-' || c.is_ascii_alphabetic())
}

fn all_programs() -> Vec<Program> {
    let mut programs: Vec<Program> = ["hlscdn-origin", "hlscdn-router", "hlscdn-edge"]
        .iter()
        .filter_map(|bin| Program::of(&[bin]))
        .collect();
    for command in ["demo", "dashboard", "status", "drain", "autoscale"] {
        programs.extend(Program::of(&["hlscdn", command]));
    }
    programs
}

#[test]
fn every_documented_flag_is_one_the_binary_takes() {
    let programs = all_programs();
    let helps: Vec<(Program, BTreeSet<String>)> =
        programs.iter().map(|p| (p.clone(), listed(&p.help()))).collect();
    // Each page, with the program its prose is about.
    let mut files = vec![(workspace().join("README.md"), None)];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(workspace().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for doc in docs {
        let page = match doc.file_name().and_then(|n| n.to_str()) {
            Some("ORIGIN.md") => Program::of(&["hlscdn-origin"]),
            Some("ROUTER.md") => Program::of(&["hlscdn-router"]),
            Some("EDGE.md") => Program::of(&["hlscdn-edge"]),
            _ => None,
        };
        files.push((doc, page));
    }
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (file, page) in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let readme = page.is_none() && file.ends_with("README.md");
        for (program, flag) in documented(&text, page.clone()) {
            let known = match &program {
                Some(program) => match helps.iter().find(|(p, _)| p == program) {
                    Some((_, listed)) => listed.contains(&flag),
                    None => {
                        wrong.push(format!("{}: {program:?} is not a command", file.display()));
                        continue;
                    }
                },
                // README prose outside a program's section: some program's flag.
                None if readme => helps.iter().any(|(_, listed)| listed.contains(&flag)),
                // Other pages' prose also shows the flags of tools (cargo, the load tester).
                None => continue,
            };
            checked += 1;
            if !known {
                wrong.push(format!("{}: {program:?} has no {flag}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "documented flags the binaries lack:\n{}",
        wrong.join("\n")
    );
    assert!(checked >= 40, "only {checked} documented flags found");
}

#[test]
fn every_server_flag_shows_its_variable() {
    let servers = all_programs().into_iter().filter(|p| {
        p.command
            .as_deref()
            .is_none_or(|c| c == "dashboard" || c == "autoscale")
    });
    let mut checked = 0;
    for program in servers {
        let help = program.help();
        // One entry per flag: its line up to the next flag's.
        let mut entries: Vec<String> = Vec::new();
        for line in help.lines() {
            if is_flag_line(line) {
                entries.push(String::new());
            }
            if let Some(entry) = entries.last_mut() {
                entry.push_str(line.trim());
                entry.push(' ');
            }
        }
        for entry in entries {
            let flag = flags(entry.split([' ', ',']))
                .into_iter()
                .next()
                .unwrap_or_default();
            if flag == "--help" || flag == "--version" {
                continue;
            }
            checked += 1;
            let Some(at) = entry.find("[env: HLSCDN_") else {
                panic!("{program:?} {flag} shows no HLSCDN_ variable: {entry}");
            };
            let variable: String = entry[at + 6..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // The variable is the flag's name (a repeatable flag's is plural).
            let name = flag.trim_start_matches("--").replace('-', "_").to_uppercase();
            let stem = variable.trim_start_matches("HLSCDN_");
            assert!(
                stem == name || stem == format!("{name}S"),
                "{program:?} {flag} reads {variable}"
            );
        }
    }
    assert!(checked >= 80, "only {checked} server flags found");
}

#[test]
fn the_extraction_finds_commands_and_prose_flags() {
    let text = "## The router\n\nSee `--store-option K=V` and `hlscdn-edge --drain-quiet 5s`.\n\n\
                ```sh\nFOO=1 hlscdn-origin --listen 127.0.0.1:0 \\\n    [--store-option=K=V] # --not-this\n\
                hlscdn status --router http://r:1 [--json]\ncargo test --release\n```\n";
    let router = Program::of(&["hlscdn-router"]);
    let edge = Program::of(&["hlscdn-edge"]);
    let origin = Program::of(&["hlscdn-origin"]);
    let status = Program::of(&["hlscdn", "status"]);
    let found = documented(text, None);
    let expect = [
        (router, "--store-option"),
        (edge, "--drain-quiet"),
        (origin.clone(), "--listen"),
        (origin, "--store-option"),
        (status.clone(), "--router"),
        (status, "--json"),
    ];
    let expect: Vec<(Option<Program>, String)> = expect.into_iter().map(|(p, f)| (p, f.to_owned())).collect();
    assert_eq!(found, expect);
    let help = "Options:\n      --no-edge <NO_EDGE>\n          Possible values:\n          - origin: x\n  -h, --help\n";
    assert_eq!(
        listed(help),
        BTreeSet::from(["--no-edge".to_owned(), "--help".to_owned()])
    );
}

/// Keys of a TOML table as flag names: `drain_quiet` is `--drain-quiet`,
/// `[autoscale] cooldown` is `--autoscale-cooldown`; arrays of tables
/// (`[[edges]]`) have a flag of their own shape and are left out.
fn key_flags(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let name = format!("{prefix}{}", key.replace('_', "-"));
        match value {
            toml::Value::Table(inner) if !inner.keys().any(|k| k.contains(['/', '.'])) => {
                key_flags(inner, &format!("{name}-"), out);
            }
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) && !items.is_empty() => {}
            _ => out.push(format!("--{name}")),
        }
    }
}

#[test]
fn every_key_of_the_example_configs_is_a_flag_of_the_same_name() {
    let mut checked = 0;
    for (file, program) in [
        ("origin.toml", Program::of(&["hlscdn-origin"])),
        ("router.toml", Program::of(&["hlscdn-router"])),
        ("edge.toml", Program::of(&["hlscdn-edge"])),
        ("dashboard.toml", Program::of(&["hlscdn", "dashboard"])),
    ] {
        let program = program.expect("a program");
        let path = workspace().join("ops/deploy/config").join(file);
        let table: toml::Table = std::fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("TOML");
        let listed = listed(&program.help());
        let mut keys = Vec::new();
        key_flags(&table, "", &mut keys);
        for flag in keys {
            // A repeatable flag is the singular of its key (`routers`: `--router`).
            let singular = flag.strip_suffix('s').unwrap_or(&flag);
            assert!(
                listed.contains(&flag) || listed.contains(singular),
                "{file}: {program:?} has no {flag}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} keys found");
}
