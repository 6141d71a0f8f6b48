//! What the Debian package ships: the configuration it installs is valid, `ferryd generate`
//! writes the man page and completions from `--help`, and the package's asset list names each
//! generated file (`.ci/package` builds and installs the package itself).

mod support;

use std::path::{Path, PathBuf};

use support::run_tool_with_code;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_packaged_configuration_is_valid() {
    let root = tempfile::tempdir().unwrap();
    let config = repository().join("deploy/debian/ferryd.toml");
    // /srv/ftp, its root, exists only once the package is installed.
    let (code, stdout, stderr) = run_tool_with_code(
        env!("CARGO_BIN_EXE_ferryd"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--root",
            root.path().to_str().unwrap(),
            "--check-config",
        ],
        None,
        None,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "configuration OK");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nroot = \"/srv/ftp\"\n"), "{text}");
}

/// Runs `ferryd generate WHAT` into a new folder; the folder and the names printed.
fn generate(what: &str) -> (tempfile::TempDir, Vec<String>) {
    let folder = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_tool_with_code(
        env!("CARGO_BIN_EXE_ferryd"),
        &["generate", what, folder.path().to_str().unwrap()],
        None,
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let names = stdout.lines().map(str::to_string).collect();
    (folder, names)
}

#[test]
fn the_man_page_is_made_from_the_help() {
    let (folder, names) = generate("man");
    assert_eq!(names, ["ferryd.1"]);
    let page = std::fs::read_to_string(folder.path().join("ferryd.1")).unwrap();
    assert!(page.contains("\n.TH ferryd 1"), "{page}");
    // Options and subcommands, in roff's escaped dashes.
    for wanted in [
        "\\-\\-passive\\-address",
        "\\-\\-check\\-config",
        "ferryd\\-doctor(1)",
    ] {
        assert!(page.contains(wanted), "no {wanted} in the page");
    }
    // The packaging subcommand stays out of it.
    assert!(!page.contains("ferryd\\-generate"), "{page}");
}

#[test]
fn completions_are_made_for_bash_zsh_and_fish() {
    let (folder, mut names) = generate("completions");
    names.sort();
    assert_eq!(names, ["_ferryd", "ferryd.bash", "ferryd.fish"]);
    for name in names {
        let script = std::fs::read_to_string(folder.path().join(&name)).unwrap();
        assert!(script.contains("passive-address"), "{name}");
        assert!(script.contains("doctor"), "{name}");
    }
}

#[test]
fn the_package_ships_every_generated_file() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("[package.metadata.deb] assets");
    let sources: Vec<&str> = assets
        .iter()
        .map(|asset| asset[0].as_str().unwrap())
        .collect();
    let (_, man) = generate("man");
    let (_, completions) = generate("completions");
    // Man pages are packaged compressed (.ci/package gzips them).
    let man = man.iter().map(|name| format!("{name}.gz"));
    for name in man.chain(completions) {
        for binary in [name.clone(), name.replace("ferryd", "ferry")] {
            let source = format!("target/release/generated/{binary}");
            assert!(
                sources.contains(&source.as_str()),
                "{source} is not packaged"
            );
        }
    }
    for source in sources.iter().filter(|s| s.starts_with("../../")) {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(),
            "{source} does not exist"
        );
    }
    for unit in ["ferryd.service", "ferryd.socket"] {
        let source = format!("../../deploy/systemd/{unit}");
        assert!(sources.contains(&source.as_str()), "{unit} is not packaged");
    }
}
