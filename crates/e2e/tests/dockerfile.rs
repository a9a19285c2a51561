//! The `Dockerfile`, checked without a Docker engine: the dependencies are
//! built in a layer that depends on the manifests only, with the same flags
//! as the final build (or that build would compile them again), every binary
//! of the workspace is in the image, and the build context leaves out build
//! output and local state.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// One instruction: its keyword and its arguments, continuations joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|line| {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            Instruction {
                keyword: keyword.to_uppercase(),
                args: args.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

/// The instructions of the stage named `name` (`FROM ... AS name`).
fn stage<'a>(all: &'a [Instruction], name: &str) -> &'a [Instruction] {
    let start = all
        .iter()
        .position(|i| {
            i.keyword == "FROM" && i.args.to_lowercase().ends_with(&format!(" as {name}"))
        })
        .unwrap_or_else(|| panic!("a stage named {name}"));
    let end = all[start + 1..]
        .iter()
        .position(|i| i.keyword == "FROM")
        .map_or(all.len(), |n| start + 1 + n);
    &all[start + 1..end]
}

/// The flags of the first `cargo <subcommand>` in a RUN line.
fn cargo_flags(run: &str, subcommand: &str) -> BTreeSet<String> {
    let (_, rest) = run
        .split_once(subcommand)
        .unwrap_or_else(|| panic!("`{subcommand}` in {run}"));
    rest.split("&&")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter(|word| word.starts_with("--") && *word != "--recipe-path")
        .map(str::to_owned)
        .collect()
}

/// The binaries of the workspace, from cargo's own metadata.
fn workspace_binaries() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
        .current_dir(e2e::cluster::repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|package| package["targets"].as_array().cloned().unwrap_or_default())
        .filter(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .map(|target| target["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn dependencies_are_built_in_a_layer_of_their_own_and_every_binary_is_in_the_image() {
    let root = e2e::cluster::repo_root();
    let text = std::fs::read_to_string(root.join("Dockerfile")).expect("a Dockerfile");
    let all = instructions(&text);

    let planner = stage(&all, "planner");
    assert!(
        planner
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo chef prepare")),
        "the planner writes the recipe: {planner:?}"
    );

    let build = stage(&all, "build");
    let cook = build
        .iter()
        .position(|i| i.keyword == "RUN" && i.args.contains("cargo chef cook"))
        .expect("the build stage cooks the dependencies");
    for before in &build[..cook] {
        assert!(
            before.keyword != "COPY" || before.args.starts_with("--from=planner"),
            "only the recipe reaches the dependency layer, so code changes keep it: {before:?}"
        );
    }
    let sources = build
        .iter()
        .position(|i| i.keyword == "COPY" && i.args == ". .")
        .expect("the sources are copied");
    assert!(
        sources > cook,
        "the sources come after the dependency layer"
    );
    let final_build = build[sources..]
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .expect("the workspace is built after the sources are copied");
    assert_eq!(
        cargo_flags(&build[cook].args, "cargo chef cook"),
        cargo_flags(&final_build.args, "cargo build"),
        "cook and build use the same profile and targets, so the build reuses what cook built"
    );

    let copied: BTreeSet<String> = final_build
        .args
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("target/release/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        copied,
        workspace_binaries(),
        "every binary of the workspace, and only those, goes into the image"
    );

    let ignored: BTreeSet<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .expect("a .dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_owned())
        .collect();
    for kept_out in ["target", ".local", ".git"] {
        assert!(
            ignored.contains(kept_out),
            "{kept_out}/ stays out of the build context: {ignored:?}"
        );
    }
}
