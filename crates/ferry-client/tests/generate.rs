//! `ferry --generate-man` and `--generate-completions`: the man page and shell completions the
//! Debian package installs are made from `ferry --help`.

use std::process::Command;

fn generate(flag: &str) -> (tempfile::TempDir, Vec<String>) {
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg(flag)
        .arg(folder.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|path| path.rsplit('/').next().unwrap().to_string())
        .collect();
    names.sort();
    (folder, names)
}

#[test]
fn the_man_page_is_made_from_the_help() {
    let (folder, names) = generate("--generate-man");
    assert_eq!(names, ["ferry.1"]);
    let page = std::fs::read_to_string(folder.path().join("ferry.1")).unwrap();
    assert!(page.contains("\n.TH ferry 1"), "{page}");
    assert!(page.contains("\\-\\-passive"), "{page}");
    assert!(
        !page.contains("\\-\\-generate"),
        "hidden flags stay out: {page}"
    );
}

#[test]
fn completions_are_made_for_bash_zsh_and_fish() {
    let (folder, names) = generate("--generate-completions");
    assert_eq!(names, ["_ferry", "ferry.bash", "ferry.fish"]);
    for name in names {
        let script = std::fs::read_to_string(folder.path().join(&name)).unwrap();
        assert!(script.contains("known-hosts"), "{name}");
    }
}
