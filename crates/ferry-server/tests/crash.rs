//! Crash consistency: `ferryd` killed with SIGKILL in the middle of an operation, then started
//! again on the same folder. Nothing outside the operation changes; an atomic upload never shows
//! a partial file under its final name (a plain one does: what arrived stays, as with any
//! server writing in place); private partial files are removed once old; and the restarted
//! server serves at once.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{read_all, readme_bytes, Control, Ferryd};

/// A writable anonymous root with the seed's readme and a folder of three files.
fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), readme_bytes()).unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(dir.path().join("folder").join(name), name.repeat(1000)).unwrap();
    }
    dir
}

fn login(ferryd: &Ferryd) -> Control {
    let mut control = Control::connect(ferryd.addr);
    assert_eq!(control.reply().code, 220);
    control.expect("USER ftp", 331);
    control.expect("PASS crash@example.com", 230);
    control.expect("TYPE I", 200);
    control
}

/// Everything a root holds, by relative path (private upload files included).
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                all.push((format!("{name}/"), Vec::new()));
                folders.push(path);
            } else {
                all.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    all.sort();
    all
}

/// Waits (bounded) until `check` holds.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The restarted server serves at once: the seed's readme, byte for byte.
fn serves_at_once(root: &Path, args: &[&str]) -> Ferryd {
    let started = Instant::now();
    let ferryd = Ferryd::start(root, args);
    let mut control = login(&ferryd);
    let data = control.epsv();
    control.expect("RETR readme.txt", 150);
    assert_eq!(read_all(data), readme_bytes());
    assert_eq!(control.reply().code, 226);
    assert!(started.elapsed() < Duration::from_secs(5));
    ferryd
}

/// Starts an upload with `command` (after `before`, such as REST), sends `bytes` and waits
/// until `file` has grown to `until` bytes; then kills ferryd with the upload still open.
fn kill_during_upload(
    root: &Path,
    args: &[&str],
    before: Option<&str>,
    command: &str,
    file: impl Fn() -> Option<std::path::PathBuf>,
    until: u64,
) {
    let ferryd = Ferryd::start(root, args);
    let mut control = login(&ferryd);
    if let Some(line) = before {
        control.expect(line, 350);
    }
    let mut data = control.epsv();
    control.expect(command, 150);
    data.write_all(&vec![b'n'; 1 << 20]).unwrap();
    wait_for("the upload to reach the disk", || {
        file().is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= until))
    });
    ferryd.kill();
}

#[test]
fn killed_during_a_plain_stor_keeps_what_arrived_and_nothing_else_changes() {
    let dir = root();
    let before = snapshot(dir.path());
    let target = dir.path().join("new.bin");
    let probe = target.clone();
    let args = ["--anonymous-writable"];
    kill_during_upload(
        dir.path(),
        &args,
        None,
        "STOR new.bin",
        || Some(probe.clone()),
        1 << 20,
    );
    let mut after = snapshot(dir.path());
    after.retain(|(name, _)| name != "new.bin");
    assert_eq!(after, before, "only the upload's own file changed");
    assert_eq!(std::fs::read(&target).unwrap(), vec![b'n'; 1 << 20]);
    serves_at_once(dir.path(), &args);
}

#[test]
fn killed_during_an_atomic_stor_never_shows_a_partial_file() {
    let dir = root();
    let before = snapshot(dir.path());
    let private = |root: &Path| {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(".new.bin.") && name.ends_with(".ferry-upload")
            })
    };
    let args = ["--anonymous-writable", "--atomic-uploads"];
    let root_path = dir.path().to_path_buf();
    kill_during_upload(
        dir.path(),
        &args,
        None,
        "STOR new.bin",
        || private(&root_path),
        1 << 20,
    );
    assert!(
        !dir.path().join("new.bin").exists(),
        "no partial file under the final name"
    );
    let partial = private(dir.path()).expect("the private partial file");
    let ferryd = serves_at_once(dir.path(), &args);
    // Invisible to clients, even with -a.
    let mut control = login(&ferryd);
    let data = control.epsv();
    control.expect("NLST -a", 150);
    let names = String::from_utf8(read_all(data)).unwrap();
    control.reply();
    assert!(!names.contains("ferry-upload"), "{names}");
    drop(ferryd);
    // Removed once older than timeouts.abandoned_upload, by the next start.
    std::fs::File::options()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let _ferryd = serves_at_once(
        dir.path(),
        &["--anonymous-writable", "--abandoned-upload", "3600"],
    );
    wait_for("the sweep", || !partial.exists());
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn killed_during_appe_keeps_the_files_head() {
    let dir = root();
    let head = readme_bytes();
    let target = dir.path().join("readme.txt");
    let probe = target.clone();
    let args = ["--anonymous-writable"];
    let grown = head.len() as u64 + (1 << 20);
    kill_during_upload(
        dir.path(),
        &args,
        None,
        "APPE readme.txt",
        || Some(probe.clone()),
        grown,
    );
    let content = std::fs::read(&target).unwrap();
    assert_eq!(&content[..head.len()], &head[..], "what was there stays");
    assert!(content[head.len()..].iter().all(|&b| b == b'n'));
    let _ = std::fs::write(&target, readme_bytes());
    serves_at_once(dir.path(), &args);
}

#[test]
fn killed_during_rest_stor_keeps_what_came_before_the_offset() {
    let dir = root();
    let target = dir.path().join("resume.bin");
    std::fs::write(&target, vec![b'o'; 512 * 1024]).unwrap();
    let probe = target.clone();
    let args = ["--anonymous-writable"];
    let until = 512 * 1024 + (1 << 20);
    let rest = Some("REST 262144");
    kill_during_upload(
        dir.path(),
        &args,
        rest,
        "STOR resume.bin",
        || Some(probe.clone()),
        until - 262144,
    );
    let content = std::fs::read(&target).unwrap();
    assert!(
        content[..262144].iter().all(|&b| b == b'o'),
        "the head before REST stays"
    );
    assert!(content[262144..].iter().all(|&b| b == b'n'));
    serves_at_once(dir.path(), &args);
}

/// RNFR/RNTO of a folder and MKD are one system call each: killed right after the command was
/// sent, the folder is in exactly one place, whole.
#[test]
fn killed_during_a_folder_rename_or_mkd_leaves_each_whole_in_one_place() {
    let dir = root();
    let folder_files = |path: &Path| {
        ["a", "b", "c"].iter().all(|name| {
            std::fs::read(path.join(name)).is_ok_and(|c| c == name.repeat(1000).as_bytes())
        })
    };
    let args = ["--anonymous-writable"];
    let ferryd = Ferryd::start(dir.path(), &args);
    let mut control = login(&ferryd);
    control.expect("RNFR folder", 350);
    control.send("RNTO moved");
    control.send("MKD made");
    ferryd.kill();
    let (old, new) = (dir.path().join("folder"), dir.path().join("moved"));
    assert!(old.exists() != new.exists(), "in exactly one place");
    assert!(folder_files(if old.exists() { &old } else { &new }));
    let made = dir.path().join("made");
    assert!(!made.exists() || std::fs::read_dir(&made).unwrap().next().is_none());
    serves_at_once(dir.path(), &args);
}
