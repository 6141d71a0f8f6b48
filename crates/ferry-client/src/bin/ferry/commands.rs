//! The interactive command set: names, abbreviations and help texts, as in the classic BSD
//! `ftp`, and splitting a command line into words.

/// One interactive command. Aliases (recv, send, image, literal, quit, exit, ...) map to the
/// same verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Shell,
    Append,
    Ascii,
    Binary,
    Bye,
    Cd,
    Cdup,
    Checksum,
    Close,
    Debug,
    Delete,
    Dir,
    Epsv,
    Features,
    Get,
    Hash,
    Help,
    Lcd,
    Ls,
    Mdelete,
    Mget,
    Mirror,
    Mkdir,
    Mlsd,
    Mode,
    Modtime,
    Mput,
    Nlist,
    Open,
    Passive,
    Pget,
    Prompt,
    Put,
    Pwd,
    Quote,
    Reget,
    Reput,
    Rename,
    Rmdir,
    Site,
    Size,
    Status,
    System,
    Type,
    User,
    Verbose,
    Verify,
}

/// Every command name, its verb and its help line.
pub const COMMANDS: &[(&str, Verb, &str)] = &[
    ("!", Verb::Shell, "escape to the shell"),
    ("?", Verb::Help, "print local help information"),
    ("append", Verb::Append, "append to a file"),
    ("ascii", Verb::Ascii, "set ascii transfer type"),
    ("binary", Verb::Binary, "set binary transfer type"),
    ("bye", Verb::Bye, "terminate ftp session and exit"),
    ("cd", Verb::Cd, "change remote working directory"),
    (
        "cdup",
        Verb::Cdup,
        "change remote working directory to parent directory",
    ),
    (
        "checksum",
        Verb::Checksum,
        "show the server's checksum of a remote file",
    ),
    ("close", Verb::Close, "terminate ftp session"),
    ("debug", Verb::Debug, "toggle/set debugging mode"),
    ("delete", Verb::Delete, "delete remote file"),
    ("dir", Verb::Dir, "list contents of remote directory"),
    ("disconnect", Verb::Close, "terminate ftp session"),
    ("epsv", Verb::Epsv, "toggle use of EPSV/EPRT"),
    ("exit", Verb::Bye, "terminate ftp session and exit"),
    (
        "features",
        Verb::Features,
        "show features supported by remote system",
    ),
    ("get", Verb::Get, "receive file"),
    (
        "hash",
        Verb::Hash,
        "toggle printing `#' for each buffer transferred (hash [on | off | auto | size])",
    ),
    ("help", Verb::Help, "print local help information"),
    ("image", Verb::Binary, "set binary transfer type"),
    ("lcd", Verb::Lcd, "change local working directory"),
    ("literal", Verb::Quote, "send arbitrary ftp command"),
    ("ls", Verb::Ls, "list contents of remote directory"),
    ("mdelete", Verb::Mdelete, "delete multiple files"),
    ("mget", Verb::Mget, "get multiple files"),
    (
        "mirror",
        Verb::Mirror,
        "make a local folder like a remote one (-R: the other way)",
    ),
    ("mkdir", Verb::Mkdir, "make directory on the remote machine"),
    (
        "mlsd",
        Verb::Mlsd,
        "list contents of remote directory in a machine parsable form",
    ),
    (
        "mode",
        Verb::Mode,
        "set transfer mode: stream, or z (deflate-compressed)",
    ),
    (
        "modtime",
        Verb::Modtime,
        "show last modification time of remote file",
    ),
    ("mput", Verb::Mput, "send multiple files"),
    ("nlist", Verb::Nlist, "nlist contents of remote directory"),
    ("open", Verb::Open, "connect to remote ftp server"),
    (
        "passive",
        Verb::Passive,
        "toggle use of passive transfer mode (on/off/auto)",
    ),
    (
        "pget",
        Verb::Pget,
        "get one file over several sessions at once (-n N)",
    ),
    (
        "prompt",
        Verb::Prompt,
        "force interactive prompting on multiple commands",
    ),
    ("put", Verb::Put, "send one file"),
    (
        "pwd",
        Verb::Pwd,
        "print working directory on remote machine",
    ),
    ("quit", Verb::Bye, "terminate ftp session and exit"),
    ("quote", Verb::Quote, "send arbitrary ftp command"),
    ("recv", Verb::Get, "receive file"),
    (
        "reget",
        Verb::Reget,
        "get file restarting at end of local file",
    ),
    ("rename", Verb::Rename, "rename file"),
    (
        "reput",
        Verb::Reput,
        "put file continuing at the end of the remote file",
    ),
    (
        "rmdir",
        Verb::Rmdir,
        "remove directory on the remote machine",
    ),
    ("send", Verb::Put, "send one file"),
    (
        "site",
        Verb::Site,
        "send site specific command to remote server",
    ),
    ("size", Verb::Size, "show size of remote file"),
    ("status", Verb::Status, "show current status"),
    ("system", Verb::System, "show remote system type"),
    ("type", Verb::Type, "set file transfer type"),
    ("user", Verb::User, "send new user information"),
    ("verbose", Verb::Verbose, "toggle verbose mode"),
    (
        "verify",
        Verb::Verify,
        "toggle checking each transfer against the server's checksum",
    ),
];

/// Why a command name does not name one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Invalid,
    Ambiguous,
}

/// Finds a command by its name or an unambiguous prefix of it (`g` is `get`, `by` is `bye`).
/// A prefix shared only by aliases of one verb is not ambiguous.
pub fn lookup(name: &str) -> Result<Verb, Lookup> {
    let name = name.to_ascii_lowercase();
    if let Some((_, verb, _)) = COMMANDS.iter().find(|(n, _, _)| *n == name) {
        return Ok(*verb);
    }
    let mut matches = COMMANDS.iter().filter(|(n, _, _)| n.starts_with(&name));
    let (_, first, _) = matches.next().ok_or(Lookup::Invalid)?;
    if matches.all(|(_, verb, _)| verb == first) {
        Ok(*first)
    } else {
        Err(Lookup::Ambiguous)
    }
}

/// The help line of a command name (exact or prefix).
pub fn help_line(name: &str) -> Option<&'static str> {
    let verb = lookup(name).ok()?;
    COMMANDS
        .iter()
        .find(|(n, v, _)| *v == verb && n.starts_with(&name.to_ascii_lowercase()))
        .or_else(|| COMMANDS.iter().find(|(_, v, _)| *v == verb))
        .map(|(_, _, help)| *help)
}

/// Splits a command line into words; double quotes group words with spaces, `!cmd` splits
/// after the `!`.
pub fn split_words(line: &str) -> Vec<String> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('!') {
        let mut words = vec!["!".to_string()];
        if !rest.trim().is_empty() {
            words.push(rest.trim().to_string());
        }
        return words;
    }
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                }
                in_word = false;
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// The command names laid out in columns, for `help` without arguments.
pub fn help_table() -> String {
    let names: Vec<&str> = COMMANDS.iter().map(|(name, _, _)| *name).collect();
    let columns = 5;
    let rows = names.len().div_ceil(columns);
    let mut out = String::new();
    for row in 0..rows {
        let line: Vec<String> = (0..columns)
            .filter_map(|column| names.get(column * rows + row))
            .map(|name| format!("{name:<15}"))
            .collect();
        out.push_str(line.concat().trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_aliases() {
        assert_eq!(lookup("get"), Ok(Verb::Get));
        assert_eq!(lookup("recv"), Ok(Verb::Get));
        assert_eq!(lookup("image"), Ok(Verb::Binary));
        assert_eq!(lookup("?"), Ok(Verb::Help));
        assert_eq!(lookup("!"), Ok(Verb::Shell));
        assert_eq!(lookup("LS"), Ok(Verb::Ls));
    }

    #[test]
    fn unambiguous_prefixes_like_the_classic_client() {
        assert_eq!(lookup("by"), Ok(Verb::Bye));
        assert_eq!(lookup("g"), Ok(Verb::Get));
        assert_eq!(lookup("bin"), Ok(Verb::Binary));
        assert_eq!(lookup("pa"), Ok(Verb::Passive));
        assert_eq!(lookup("di"), Err(Lookup::Ambiguous));
        assert_eq!(lookup("dir"), Ok(Verb::Dir));
        assert_eq!(lookup("m"), Err(Lookup::Ambiguous));
        assert_eq!(lookup("mg"), Ok(Verb::Mget));
        assert_eq!(lookup("qu"), Err(Lookup::Ambiguous));
        assert_eq!(lookup("quo"), Ok(Verb::Quote));
        assert_eq!(lookup("frobnicate"), Err(Lookup::Invalid));
    }

    #[test]
    fn prefixes_of_one_verbs_aliases_are_fine() {
        // "disc" is only "disconnect"; "c" is cd/cdup/close: ambiguous.
        assert_eq!(lookup("disc"), Ok(Verb::Close));
        assert_eq!(lookup("c"), Err(Lookup::Ambiguous));
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(split_words("get readme.txt"), vec!["get", "readme.txt"]);
        assert_eq!(
            split_words("  put \"my file.txt\"  other "),
            vec!["put", "my file.txt", "other"]
        );
        assert_eq!(split_words("!ls -l"), vec!["!", "ls -l"]);
        assert_eq!(split_words("!"), vec!["!"]);
        assert_eq!(split_words("get \"\""), vec!["get", ""]);
        assert!(split_words("   ").is_empty());
    }

    #[test]
    fn help_knows_every_command() {
        assert_eq!(help_line("recv"), Some("receive file"));
        assert_eq!(help_line("nope"), None);
        assert!(help_table().contains("mget"));
    }
}
