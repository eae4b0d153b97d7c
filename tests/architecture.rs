//! Architecture rules checked by reading the sources, so that
//! `ARCHITECTURE.md` cannot drift from the code (rust-analyzer's tidy
//! tests).
//!
//! **Only the runtime talks to courier's keys.** Code outside
//! `crates/courier` reads a channel through the runtime's API
//! (`Client::channel_state`, `Dlq`, `Producer`, ...), never by sending
//! Redis commands against the keys `keys.rs` names: a tool that knows the
//! key layout breaks silently when it changes, and a second reading of the
//! same figure drifts from the first (issue 14: depth was read three ways).
//!
//! The check is by line and function: a function outside the runtime is
//! flagged when it builds a Redis command (`redis::cmd(`, `redis::pipe(`,
//! `.cmd(`, the typed `Commands` traits) and either names courier's keys
//! (`client.keys(..)`, `ChannelKeys`, `NamedKeys`, `.inbox(`) or names a
//! command that reads or writes a key (`"XINFO"`, `"LLEN"`, `"ZCARD"`, ...).
//! Commands about the server (`INFO`, `CONFIG`, `ACL`) are not flagged.
//! The exceptions are listed in [`EXCEPTIONS`], each with its reason.

use std::path::{Path, PathBuf};

/// Code allowed to send commands against courier's keys, and why. `path`
/// is a pattern relative to the workspace root (`*`: within one folder,
/// `**`: any depth); `item` narrows it to one function, and such a narrow
/// exception must still be needed (a stale one would hide the next
/// offender).
const EXCEPTIONS: &[Exception] = &[
    Exception {
        path: "tests/support/**",
        item: None,
        reason: "test support: injects raw entries and checks what the runtime wrote with \
                 raw commands, never through the code under test",
    },
    Exception {
        path: "tests/*.rs",
        item: None,
        reason: "the workspace suites judge the runtime from outside, as a producer in another \
                 language would (docs/protocol.md is public); a check through the runtime would \
                 let a runtime bug confirm itself",
    },
    Exception {
        path: "crates/*/tests/**",
        item: None,
        reason: "a crate's integration suite (the CLI's seeds raw entries and checks ACLs), \
                 for the same reason as the workspace suites",
    },
    Exception {
        path: "crates/courier-testkit/**",
        item: None,
        reason: "test support: starts, joins and stops the servers the suites run on, and may \
                 send them any command",
    },
    Exception {
        path: "crates/courier-bench/**",
        item: None,
        reason: "the benchmark's baselines are hand-written `redis` calls doing the same Redis \
                 work as courier, on purpose, to measure courier against them",
    },
    Exception {
        path: "crates/contact-center/src/lib.rs",
        item: Some("inject_corrupt"),
        reason: "the demo's `--corrupt` fault writes raw entries that courier would refuse to \
                 write, to show the consumer dead-letter them",
    },
    Exception {
        path: "crates/contact-center/src/soak.rs",
        item: Some("each_key"),
        reason: "the soak judges what the runtime left in Redis (keys without a TTL, what \
                 remains once TTLs pass) from outside, like the suites: a check through the \
                 runtime would let a runtime leak confirm itself",
    },
    Exception {
        path: "crates/contact-center/src/soak.rs",
        item: Some("group_listing"),
        reason: "the soak counts the consumers Redis lists in each stream group, from outside, \
                 for the same reason",
    },
    Exception {
        path: "crates/courier-cli/src/entries.rs",
        item: Some("read"),
        reason: "`courier peek` and `export` show stored entries as they are, the ones without \
                 a valid envelope too, which the runtime would dead-letter rather than return",
    },
    Exception {
        path: "crates/courier-cli/src/entries.rs",
        item: Some("all_stream_entries"),
        reason: "the paging of `read` above, for the same reason",
    },
    Exception {
        path: "crates/courier-cli/src/capacity.rs",
        item: Some("measure"),
        reason: "`courier capacity` measures stored contents (the last hour's entries, the \
                 exact bytes per entry), which the runtime's state reading never scans; entry \
                 counts come from `Client::channel_state`",
    },
];

/// Redis commands that read or write a key.
const KEYED_COMMANDS: &[&str] = &[
    "XINFO",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "XPENDING",
    "XADD",
    "XDEL",
    "XTRIM",
    "XACK",
    "XCLAIM",
    "XAUTOCLAIM",
    "XGROUP",
    "XREAD",
    "XREADGROUP",
    "LLEN",
    "LRANGE",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LREM",
    "LMOVE",
    "BLMOVE",
    "ZCARD",
    "ZCOUNT",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZADD",
    "ZREM",
    "ZPOPMIN",
    "SMEMBERS",
    "SCARD",
    "SADD",
    "SREM",
    "HGET",
    "HGETALL",
    "HSET",
    "GET",
    "SET",
    "DEL",
    "UNLINK",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "TTL",
    "PTTL",
    "TYPE",
    "MEMORY",
    "PUBLISH",
    "PUBSUB",
    "KEYS",
    "SCAN",
    "EVAL",
    "EVALSHA",
];

#[derive(Debug)]
struct Exception {
    path: &'static str,
    item: Option<&'static str>,
    reason: &'static str,
}

/// A function that sends commands against courier's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offence {
    /// Relative to the workspace root, `/`-separated.
    path: String,
    /// The function, or `""` outside any.
    item: String,
    /// 1-based line of the first command the function builds.
    line: usize,
}

#[test]
fn only_the_runtime_sends_commands_against_courier_keys() {
    for exception in EXCEPTIONS {
        assert!(
            !exception.reason.is_empty(),
            "{exception:?} gives no reason"
        );
    }
    let root = courier_suites::workspace_root();
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    assert!(
        files
            .iter()
            .any(|f| f == "crates/courier-cli/src/status.rs"),
        "the walk missed the CLI: {files:?}"
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        offences.extend(offences_in(file, &text));
    }
    let (excused, flagged): (Vec<&Offence>, Vec<&Offence>) =
        offences.iter().partition(|o| excuse(o).is_some());
    assert!(
        flagged.is_empty(),
        "code outside crates/courier sends Redis commands against courier's keys; read through \
         the runtime (`Client::channel_state`, `Dlq`, ...) or, if it must be raw, add an \
         exception with its reason to tests/architecture.rs:\n{}",
        flagged
            .iter()
            .map(|o| format!("  {}:{} in fn {}", o.path, o.line, o.item))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stale: Vec<&Exception> = EXCEPTIONS
        .iter()
        .filter(|e| e.item.is_some())
        .filter(|e| {
            !excused
                .iter()
                .any(|o| excuse(o).is_some_and(|x| std::ptr::eq(x, *e)))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions no longer needed, remove them: {stale:?}"
    );
}

/// Every `.rs` file under `dir` outside the runtime and build output, as
/// paths relative to `root`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name.starts_with('.') || name == "target" || relative == "crates/courier" {
                continue;
            }
            rust_files(root, &path, out);
        } else if name.ends_with(".rs") {
            out.push(relative);
        }
    }
}

/// The functions of one file that build a Redis command against
/// courier's keys.
fn offences_in(path: &str, text: &str) -> Vec<Offence> {
    let typed_commands = text.contains("redis::Commands") || text.contains("redis::AsyncCommands");
    let mut offences: Vec<Offence> = Vec::new();
    // The function being read: its name, where it sends its first
    // command, whether it names a key.
    let mut item = String::new();
    let mut sends: Option<usize> = None;
    let mut keyed = false;
    let mut close = |item: &str, sends: Option<usize>, keyed: bool| {
        if let (Some(line), true) = (sends, keyed) {
            offences.push(Offence {
                path: path.to_string(),
                item: item.to_string(),
                line,
            });
        }
    };
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if let Some(name) = fn_name(code) {
            close(&item, sends, keyed);
            (item, sends, keyed) = (name, None, false);
        }
        let send = code.contains("redis::cmd(")
            || code.contains("redis::pipe(")
            || code.contains(".cmd(\"")
            || code.contains("Cmd::new(")
            || (typed_commands && code.contains("conn."));
        if send && sends.is_none() {
            sends = Some(number + 1);
        }
        keyed |= names_courier_keys(code);
    }
    close(&item, sends, keyed);
    offences
}

/// The function a line declares, if any.
fn fn_name(code: &str) -> Option<String> {
    let at = code.find("fn ")?;
    if at > 0 && !code[..at].ends_with(' ') {
        return None;
    }
    let before = code[..at].trim();
    let qualifiers = ["", "pub", "async", "const", "unsafe", "extern"];
    if !before
        .split_whitespace()
        .all(|w| qualifiers.contains(&w) || w.starts_with("pub("))
    {
        return None;
    }
    let name: String = code[at + 3..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Whether a line names courier's keys or a command that touches a key.
fn names_courier_keys(code: &str) -> bool {
    if code.contains("ChannelKeys")
        || code.contains("NamedKeys")
        || code.contains(".inbox(")
        || code.contains(".keys(&")
        || code.contains(".keys(spec")
        || code.contains(".keys(self.spec")
    {
        return true;
    }
    // A command's name, not an argument: `CONFIG GET` reads no key.
    KEYED_COMMANDS.iter().any(|command| {
        [format!("\"{command}\""), format!("\"{command} ")]
            .iter()
            .any(|quoted| {
                code.match_indices(quoted.as_str())
                    .any(|(at, _)| !code[..at].ends_with(".arg("))
            })
    })
}

/// The exception that covers an offence.
fn excuse(offence: &Offence) -> Option<&'static Exception> {
    EXCEPTIONS
        .iter()
        .find(|e| glob(e.path, &offence.path) && e.item.is_none_or(|item| item == offence.item))
}

/// `pattern` matches `path`: `*` within one folder, `**` any depth.
fn glob(pattern: &str, path: &str) -> bool {
    fn segments(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                segments(&pattern[1..], path) || (!path.is_empty() && segments(pattern, &path[1..]))
            }
            (Some(p), Some(s)) => one(p, s) && segments(&pattern[1..], &path[1..]),
            _ => false,
        }
    }
    fn one(pattern: &str, segment: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == segment,
            Some((head, tail)) => {
                segment.len() >= head.len() + tail.len()
                    && segment.starts_with(head)
                    && segment.ends_with(tail)
            }
        }
    }
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments(&pattern, &path)
}

/// The detector on snippets: which functions it flags.
#[test]
fn the_detector_flags_raw_reads_of_courier_keys() {
    fn check(code: &str, expected: &[&str]) {
        let flagged: Vec<String> = offences_in("x.rs", code)
            .into_iter()
            .map(|o| o.item)
            .collect();
        assert_eq!(flagged, expected, "{code}");
    }
    // The demo's old backlog: a raw XINFO on a key from `client.keys`.
    check(
        r#"
        pub async fn backlog(&self, client: &Client) -> u64 {
            let keys = client.keys(self.spec, None);
            let groups: Reply = client
                .query(redis::cmd("XINFO").arg("GROUPS").arg(keys.stream()))
                .await?;
        }
        fn quantile(values: &[f64]) -> f64 { 0.0 }
        "#,
        &["backlog"],
    );
    // A key passed in, read with a command that touches it.
    check(
        r#"
        async fn held(client: &Client, queue: &str) -> u64 {
            client.query(redis::cmd("LLEN").arg(queue)).await
        }
        "#,
        &["held"],
    );
    // A pipeline over keys the runtime names.
    check(
        r#"
        async fn counts(client: &Client, keys: &ChannelKeys) {
            let mut pipe = redis::pipe();
            pipe.cmd("ZCARD").arg(keys.delayed());
        }
        "#,
        &["counts"],
    );
    // Commands about the server, and the runtime's API, are fine.
    check(
        r#"
        async fn doctor(client: &Client) {
            let v = client.query::<Vec<String>>(redis::cmd("CONFIG").arg("GET").arg("x")).await;
            let who = client.query::<String>(redis::cmd("ACL").arg("WHOAMI")).await;
        }
        async fn status(client: &Client) {
            let state = client.channel_state(&SPEC, None).await?;
            let keys = map.keys().count();
        }
        // fn commented(client: &Client) { redis::cmd("XLEN").arg(client.keys(&S, None)) }
        "#,
        &[],
    );
}

#[test]
fn exception_patterns_match_as_documented() {
    assert!(glob("tests/*.rs", "tests/queues.rs"));
    assert!(!glob("tests/*.rs", "tests/support/mod.rs"));
    assert!(glob("tests/support/**", "tests/support/mod.rs"));
    assert!(glob("crates/*/tests/**", "crates/courier-cli/tests/cli.rs"));
    assert!(!glob(
        "crates/*/tests/**",
        "crates/courier-cli/src/status.rs"
    ));
    assert!(glob(
        "crates/courier-cli/src/entries.rs",
        "crates/courier-cli/src/entries.rs"
    ));
}
