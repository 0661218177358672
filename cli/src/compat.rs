//! The binary under the names `cryptsetup`, `veritysetup` and `integritysetup` (a link, a copy,
//! or `cryptpilot cryptsetup ...`): their command lines, translated into ours.
//!
//! Those tools take their options anywhere on the line (popt), short options clustered, and
//! name actions in camel case (`luksFormat DEVICE`); our verbs take the same positional
//! arguments in the same order and cryptsetup's option names, so the translation picks the
//! action out, renames a few options, and checks every option against the verb's own
//! definition: an option the verb does not have is refused by name, never dropped, except
//! batch mode (`-q`), which only answers questions and is accepted everywhere as cryptsetup
//! accepts it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use clap::CommandFactory;

use crate::error::{CliError, Reading};
use crate::terminal::Stop;

/// The cryptsetup release whose command lines, output and exit codes these follow (the one
/// the interoperability tests run against).
pub(crate) const COMPAT_VERSION: &str = "2.6.1";

/// One of the emulated tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Cryptsetup,
    Veritysetup,
    Integritysetup,
}

impl Tool {
    /// The tool a program name stands for.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "cryptsetup" => Some(Tool::Cryptsetup),
            "veritysetup" => Some(Tool::Veritysetup),
            "integritysetup" => Some(Tool::Integritysetup),
            _ => None,
        }
    }

    /// Its program name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Cryptsetup => "cryptsetup",
            Tool::Veritysetup => "veritysetup",
            Tool::Integritysetup => "integritysetup",
        }
    }

    /// Options that take a value, by short and long name (popt's table of the tool).
    fn takes_value(self, long: &str) -> bool {
        const COMMON: &[&str] = &[
            "cipher",
            "hash",
            "key-file",
            "key-size",
            "keyfile-size",
            "keyfile-offset",
            "new-keyfile-size",
            "new-keyfile-offset",
            "new-keyfile",
            "key-slot",
            "new-key-slot",
            "size",
            "offset",
            "skip",
            "iter-time",
            "pbkdf",
            "pbkdf-memory",
            "pbkdf-parallel",
            "pbkdf-force-iterations",
            "type",
            "header",
            "header-backup-file",
            "uuid",
            "label",
            "subsystem",
            "sector-size",
            "tries",
            "timeout",
            "luks2-metadata-size",
            "luks2-keyslots-size",
            "token-id",
            "token-type",
            "json-file",
            "volume-key-file",
            "master-key-file",
            "integrity",
            "priority",
            "align-payload",
            "device-size",
            "key-description",
            "keyslot-cipher",
            "keyslot-key-size",
            "active-name",
            "kdf-time-limit",
            "progress-frequency",
            "block-size",
            "reduce-device-size",
            "resilience",
            "resilience-hash",
            "hotzone-size",
            "veracrypt-pim",
            "new-token-id",
            // veritysetup
            "data-block-size",
            "hash-block-size",
            "data-blocks",
            "hash-offset",
            "salt",
            "format",
            "fec-device",
            "fec-offset",
            "fec-roots",
            "root-hash-file",
            "root-hash-signature",
            // integritysetup
            "journal-size",
            "interleave-sectors",
            "journal-watermark",
            "journal-commit-time",
            "tag-size",
            "buffer-sectors",
            "integrity-key-file",
            "integrity-key-size",
            "journal-integrity",
            "journal-integrity-key-file",
            "journal-integrity-key-size",
            "journal-crypt",
            "journal-crypt-key-file",
            "journal-crypt-key-size",
            "bitmap-sectors-per-bit",
            "bitmap-flush-time",
            // ours (benchmark)
            "seconds",
        ];
        let _ = self;
        COMMON.contains(&long)
    }

    /// The long name of short option `c` in this tool (`-h` is `--hash` in cryptsetup).
    fn long_of(self, c: char) -> Option<&'static str> {
        Some(match (self, c) {
            // veritysetup has no batch mode.
            (Tool::Cryptsetup | Tool::Integritysetup, 'q') => "batch-mode",
            (_, 'v') => "verbose",
            (_, 'V') => "version",
            (_, '?') => "help",
            (Tool::Cryptsetup, 'c') => "cipher",
            (Tool::Cryptsetup, 'h') => "hash",
            (Tool::Cryptsetup, 'd') => "key-file",
            (Tool::Cryptsetup, 's') => "key-size",
            (Tool::Cryptsetup, 'S') => "key-slot",
            (Tool::Cryptsetup, 'b') => "size",
            (Tool::Cryptsetup, 'o') => "offset",
            (Tool::Cryptsetup, 'p') => "skip",
            (Tool::Cryptsetup, 'i') => "iter-time",
            (Tool::Cryptsetup, 'l') => "keyfile-size",
            (Tool::Cryptsetup, 't') => "timeout",
            (Tool::Cryptsetup, 'T') => "tries",
            (Tool::Cryptsetup, 'M') => "type",
            (Tool::Cryptsetup, 'I') => "integrity",
            (Tool::Cryptsetup, 'B') => "block-size",
            (Tool::Cryptsetup, 'r') => "readonly",
            (Tool::Cryptsetup, 'y') => "verify-passphrase",
            (Tool::Veritysetup, 'h') => "hash",
            (Tool::Veritysetup, 's') => "salt",
            (Tool::Integritysetup, 's') => "sector-size",
            (Tool::Integritysetup, 'j') => "journal-size",
            (Tool::Integritysetup, 't') => "tag-size",
            (Tool::Integritysetup, 'I') => "integrity",
            (Tool::Integritysetup, 'B') => "integrity-bitmap-mode",
            (Tool::Integritysetup, 'D') => "integrity-no-journal",
            (Tool::Integritysetup, 'R') => "integrity-recovery-mode",
            _ => return None,
        })
    }
}

/// What the emulated command line asks for.
#[derive(Debug)]
pub(crate) enum Request {
    /// Run our binary with these arguments (program name first).
    Run {
        argv: Vec<OsString>,
        /// `-v`: say "Command successful." or why the command failed, as cryptsetup does.
        verbose: bool,
        /// The action works on LUKS2 only (its "not a valid LUKS2 device").
        luks2_only: bool,
        /// `--type` for an action that loads a header of that type (checked before it runs).
        type_check: Option<TypeCheck>,
        /// `--disable-locks`: take no device locks.
        disable_locks: bool,
    },
    /// Print this to standard output and exit 0 (`--version`, `--help`).
    Print(String),
    /// The tool's own refusal: this line on standard error, and its exit code (with `-v`,
    /// cryptsetup's "Command failed" line too).
    Fail {
        line: String,
        code: i32,
        verbose: bool,
    },
}

/// The header at `device` must be of LUKS type `ty` (`luks`, `luks1`, `luks2`; any other
/// name is no LUKS type): cryptsetup's actions on an existing header load it by `--type`.
#[derive(Debug)]
pub(crate) struct TypeCheck {
    pub(crate) device: std::path::PathBuf,
    pub(crate) ty: String,
    /// cryptsetup says nothing when the type is wrong (luksUUID, repair), only exits 1.
    pub(crate) quiet: bool,
}

/// cryptsetup's actions that load the header by `--type` and take no such option of ours
/// (open and isLuks have theirs).
const TYPED_ACTIONS: &[&str] = &[
    "luksDump",
    "luksUUID",
    "luksAddKey",
    "luksRemoveKey",
    "luksChangeKey",
    "luksKillSlot",
    "erase",
    "luksErase",
    "repair",
];

/// Why a command line is refused: one line for standard error; the exit code is 1.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

/// An option as written: its long name, and its value when given with `=` or attached.
struct Opt {
    long: String,
    value: Option<OsString>,
}

/// Splits `args` (after the program name) into options and positional arguments.
fn split(tool: Tool, args: &[OsString]) -> Result<(Vec<Opt>, Vec<OsString>), Refused> {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut it = args.iter();
    let needs_value =
        |long: &str, value: &mut Option<OsString>, it: &mut std::slice::Iter<OsString>| {
            if value.is_none() && tool.takes_value(long) {
                match it.next() {
                    Some(v) => *value = Some(v.clone()),
                    None => return Err(Refused(format!("--{long}: missing its value"))),
                }
            }
            Ok(())
        };
    // Option names are ASCII; values (paths) are kept byte for byte.
    let os = |b: &[u8]| OsString::from(OsStr::from_bytes(b));
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if b == b"--" {
            pos.extend(it.by_ref().cloned());
            break;
        }
        if let Some(rest) = b.strip_prefix(b"--") {
            let (name, mut value) = match rest.iter().position(|&c| c == b'=') {
                Some(i) => (&rest[..i], Some(os(&rest[i + 1..]))),
                None => (rest, None),
            };
            let long = String::from_utf8_lossy(name).into_owned();
            needs_value(&long, &mut value, &mut it)?;
            opts.push(Opt { long, value });
        } else if b.len() > 1 && b[0] == b'-' {
            // A cluster of short options; one that takes a value ends it (`-d-`, `-S1`).
            for (i, &c) in b.iter().enumerate().skip(1) {
                let c = char::from(c);
                let long = tool
                    .long_of(c)
                    .ok_or_else(|| Refused(format!("-{c}: unknown option")))?;
                let attached = &b[i + 1..];
                if tool.takes_value(long) {
                    let mut value = (!attached.is_empty()).then(|| os(attached));
                    needs_value(long, &mut value, &mut it)?;
                    opts.push(Opt {
                        long: long.to_owned(),
                        value,
                    });
                    break;
                }
                opts.push(Opt {
                    long: long.to_owned(),
                    value: None,
                });
            }
        } else {
            pos.push(a.clone());
        }
    }
    Ok((opts, pos))
}

/// Our verb for `action` of `tool` under `--type ty`, and whether its first two positional
/// arguments come swapped (veritysetup's old `create NAME DATA ...`).
fn verb(tool: Tool, action: &str, ty: Option<&str>) -> Result<(Vec<&'static str>, bool), Refused> {
    let unsupported = |why: &str| Err(Refused(format!("{action}: {why}")));
    let luks_type = |ty: Option<&str>| match ty {
        None | Some("luks" | "luks1" | "luks2") => Ok(()),
        Some(t) => Err(Refused(format!(
            "{action} --type {t}: not supported (LUKS1 and LUKS2 only)"
        ))),
    };
    let v = match (tool, action) {
        (Tool::Cryptsetup, "luksFormat") => {
            luks_type(ty)?;
            vec!["luks", "format"]
        }
        (Tool::Cryptsetup, "open") if ty == Some("plain") => vec!["plain", "open"],
        (Tool::Cryptsetup, "plainOpen") => vec!["plain", "open"],
        // The old plain-mode action: `create NAME DEVICE`.
        (Tool::Cryptsetup, "create") => return Ok((vec!["plain", "open"], true)),
        (Tool::Cryptsetup, "open" | "luksOpen") => {
            luks_type(ty)?;
            vec!["luks", "open"]
        }
        (Tool::Cryptsetup, "close" | "luksClose" | "remove") => vec!["luks", "close"],
        (Tool::Cryptsetup, "status") => vec!["luks", "status"],
        (Tool::Cryptsetup, "luksDump") => vec!["luks", "dump"],
        (Tool::Cryptsetup, "luksAddKey") => vec!["luks", "add-key"],
        (Tool::Cryptsetup, "luksRemoveKey") => vec!["luks", "remove-key"],
        (Tool::Cryptsetup, "luksChangeKey") => vec!["luks", "change-key"],
        (Tool::Cryptsetup, "luksConvertKey") => vec!["luks", "convert-key"],
        (Tool::Cryptsetup, "luksKillSlot") => vec!["luks", "kill-slot"],
        (Tool::Cryptsetup, "erase" | "luksErase") => vec!["luks", "erase"],
        (Tool::Cryptsetup, "luksSuspend") => vec!["luks", "suspend"],
        (Tool::Cryptsetup, "luksResume") => vec!["luks", "resume"],
        (Tool::Cryptsetup, "luksUUID") => vec!["luks", "uuid"],
        (Tool::Cryptsetup, "isLuks") => {
            luks_type(ty)?;
            vec!["luks", "is-luks"]
        }
        (Tool::Cryptsetup, "luksHeaderBackup") => vec!["luks", "header-backup"],
        (Tool::Cryptsetup, "luksHeaderRestore") => vec!["luks", "header-restore"],
        (Tool::Cryptsetup, "config") => vec!["luks", "config"],
        (Tool::Cryptsetup, "token") => vec!["luks", "token"],
        (Tool::Cryptsetup, "repair") => vec!["luks", "repair"],
        (Tool::Cryptsetup, "resize") => vec!["luks", "resize"],
        // The mapping's type decides; --type is ignored, as cryptsetup ignores it there.
        (Tool::Cryptsetup, "refresh") => vec!["luks", "refresh"],
        (Tool::Cryptsetup, "convert") => vec!["luks", "convert"],
        (Tool::Cryptsetup, "benchmark") => vec!["benchmark"],
        (
            Tool::Cryptsetup,
            "reencrypt" | "tcryptDump" | "bitlkDump" | "fvault2Dump" | "loopaesOpen" | "tcryptOpen"
            | "bitlkOpen" | "luksAddToken",
        ) => return unsupported("not supported by this cryptsetup (cryptpilot)"),
        (Tool::Veritysetup, "format") => vec!["verity", "format"],
        (Tool::Veritysetup, "verify") => vec!["verity", "verify"],
        (Tool::Veritysetup, "open") => vec!["verity", "open"],
        (Tool::Veritysetup, "create") => return Ok((vec!["verity", "open"], true)),
        (Tool::Veritysetup, "close" | "remove") => vec!["verity", "close"],
        (Tool::Veritysetup, "dump") => vec!["verity", "dump"],
        (Tool::Veritysetup, "status") => vec!["verity", "status"],
        (Tool::Integritysetup, "format") => vec!["integrity", "format"],
        (Tool::Integritysetup, "dump") => vec!["integrity", "dump"],
        (Tool::Integritysetup, "open") => vec!["integrity", "open"],
        (Tool::Integritysetup, "create") => return Ok((vec!["integrity", "open"], true)),
        (Tool::Integritysetup, "close" | "remove") => vec!["integrity", "close"],
        (Tool::Integritysetup, "status") => vec!["integrity", "status"],
        _ => return Err(Refused("Unknown action.".into())),
    };
    Ok((v, false))
}

/// Options the tool refuses with `action` although our verb has them (cryptsetup's
/// benchmark chooses its own sectors and calibrates Argon2).
fn not_allowed(tool: Tool, action: &str, long: &str) -> bool {
    let closing = matches!(action, "close" | "luksClose" | "remove");
    if matches!(long, "deferred" | "cancel-deferred") {
        return !closing;
    }
    matches!(
        (tool, action, long),
        (
            Tool::Cryptsetup,
            "benchmark",
            "sector-size" | "iv-large-sectors" | "pbkdf-force-iterations"
        ) | (
            Tool::Cryptsetup,
            "luksKillSlot" | "luksRemoveKey" | "resize",
            "key-slot"
        )
    )
}

/// Our options renamed from the tool's.
fn rename(long: &str) -> &str {
    match long {
        "dump-json-metadata" => "json",
        "dump-master-key" => "dump-volume-key",
        "master-key-file" => "volume-key-file",
        other => other,
    }
}

/// The program's usage, for `--help` and a missing action.
pub(crate) fn usage(tool: Tool) -> String {
    let actions: &[(&str, &str)] = match tool {
        Tool::Cryptsetup => &[
            (
                "open <device> [--type <type>] [<name>]",
                "open device as <name>",
            ),
            ("close <name>", "close device (remove mapping)"),
            ("resize <name>", "resize active device"),
            ("status <name>", "show device status"),
            ("benchmark", "benchmark cipher"),
            ("repair <device>", "try to repair on-disk metadata"),
            ("convert <device>", "convert LUKS from/to LUKS2 format"),
            (
                "luksFormat <device> [<new key file>]",
                "formats a LUKS device",
            ),
            (
                "luksAddKey <device> [<new key file>]",
                "add key to LUKS device",
            ),
            (
                "luksRemoveKey <device> [<key file>]",
                "removes supplied key or key file from LUKS device",
            ),
            (
                "luksChangeKey <device> [<key file>]",
                "changes supplied key or key file of LUKS device",
            ),
            (
                "luksConvertKey <device> [<key file>]",
                "converts a key to new pbkdf parameters",
            ),
            (
                "luksKillSlot <device> <key slot>",
                "wipes key with number <key slot> from LUKS device",
            ),
            (
                "erase <device>",
                "erase all keyslots (remove encryption key)",
            ),
            (
                "luksSuspend <device>",
                "Suspend LUKS device and wipe key (all IOs are frozen)",
            ),
            ("luksResume <device>", "Resume suspended LUKS device"),
            ("luksUUID <device>", "print UUID of LUKS device"),
            (
                "isLuks <device>",
                "tests <device> for LUKS partition header",
            ),
            ("luksDump <device>", "dump LUKS partition information"),
            (
                "luksHeaderBackup <device>",
                "Backup LUKS device header and keyslots",
            ),
            (
                "luksHeaderRestore <device>",
                "Restore LUKS device header and keyslots",
            ),
            (
                "token <add|remove|import|export> <device>",
                "Manipulate LUKS2 tokens",
            ),
            (
                "config <device>",
                "set permanent configuration options for LUKS2",
            ),
        ],
        Tool::Veritysetup => &[
            ("format <data_device> <hash_device>", "format device"),
            (
                "verify <data_device> <hash_device> <root_hash>",
                "verify device",
            ),
            (
                "open <data_device> <name> <hash_device> <root_hash>",
                "open device as <name>",
            ),
            ("close <name>", "close device (remove mapping)"),
            ("status <name>", "show active device status"),
            ("dump <hash_device>", "show on-disk information"),
        ],
        Tool::Integritysetup => &[
            ("format <integrity_device>", "format device"),
            ("open <integrity_device> <name>", "open device as <name>"),
            ("close <name>", "close device (remove mapping)"),
            ("status <name>", "show active device status"),
            ("dump <integrity_device>", "show on-disk information"),
        ],
    };
    let mut s = format!(
        "{name} {COMPAT_VERSION} (cryptpilot {ours}): cryptpilot under {name}'s command line\n\
         Usage: {name} [OPTION...] <action> <action-specific>\n\n<action> is one of:\n",
        name = tool.name(),
        ours = env!("CARGO_PKG_VERSION"),
    );
    for (a, what) in actions {
        s.push_str(&format!("\t{a} - {what}\n"));
    }
    s.push_str(
        "\nOptions are those of the real tool; `cryptpilot <verb> --help` explains each verb's.\n",
    );
    s
}

/// Whether `opts` holds the option `long`.
fn has(opts: &[Opt], long: &str) -> bool {
    opts.iter().any(|o| o.long == long)
}

/// Translates `args` (after the program name) of `tool` into our command line.
pub(crate) fn translate(tool: Tool, args: &[OsString]) -> Result<Request, Refused> {
    let (mut opts, mut pos) = split(tool, args)?;
    if has(&opts, "version") {
        // The flags of what this build has (volume keys in the kernel keyring, the kernel's
        // crypto API names); UDEV and BLKID name libraries it does not use.
        return Ok(Request::Print(format!(
            "{} {COMPAT_VERSION} flags: KEYRING KERNEL_CAPI cryptpilot-{}\n",
            tool.name(),
            env!("CARGO_PKG_VERSION")
        )));
    }
    if has(&opts, "help") || has(&opts, "usage") {
        return Ok(Request::Print(usage(tool)));
    }
    if pos.is_empty() {
        return Err(Refused("Argument <action> missing.".into()));
    }
    let action = pos.remove(0);
    let mut action = action.to_string_lossy();
    if tool == Tool::Cryptsetup {
        // `refresh` is `open --refresh`; its mapping is the last of two arguments.
        if matches!(&*action, "open" | "luksOpen") && has(&opts, "refresh") {
            action = "refresh".into();
        }
        if has(&opts, "test-passphrase") {
            if action == "refresh" {
                return Err(Refused(
                    "Options --refresh and --test-passphrase are mutually exclusive.".into(),
                ));
            }
            if has(&opts, "persistent") {
                return Err(Refused(
                    "Option --persistent is not allowed with --test-passphrase.".into(),
                ));
            }
        }
        if action == "refresh" && pos.len() >= 2 {
            pos.remove(0);
        }
    }
    if tool == Tool::Cryptsetup && action == "token" {
        // cryptsetup's argument checks, before the device is looked at.
        let has_id = has(&opts, "token-id");
        match pos.first().and_then(|a| a.to_str()) {
            Some("add" | "import") => {}
            Some("remove" | "export") if has_id => {}
            Some("remove" | "export") => {
                return Err(Refused(
                    "Action requires specific token. Use --token-id parameter.".into(),
                ))
            }
            _ => return Err(Refused("Invalid token action.".into())),
        }
    }
    // luksFormat and isLuks also take libcryptsetup's own names (`--type LUKS2`); open
    // does not.
    if matches!(&*action, "luksFormat" | "isLuks") {
        for o in opts.iter_mut().filter(|o| o.long == "type") {
            if let Some(v) = o.value.as_mut().filter(|v| *v == "LUKS1" || *v == "LUKS2") {
                *v = v.to_ascii_lowercase();
            }
        }
    }
    let ty = opts
        .iter()
        .rev()
        .find(|o| o.long == "type")
        .and_then(|o| o.value.as_ref())
        .map(|v| v.to_string_lossy().into_owned());
    let (verb, swapped) = verb(tool, &action, ty.as_deref())?;
    // The header is the detached one, else the device (the first argument).
    let type_check = match (tool, &ty) {
        (Tool::Cryptsetup, Some(ty)) if TYPED_ACTIONS.contains(&&*action) => opts
            .iter()
            .rev()
            .find(|o| o.long == "header")
            .and_then(|o| o.value.clone())
            .or_else(|| pos.first().cloned())
            .map(|d| TypeCheck {
                device: d.into(),
                ty: ty.clone(),
                quiet: matches!(&*action, "luksUUID" | "repair"),
            }),
        _ => None,
    };
    if swapped && pos.len() >= 2 {
        pos.swap(0, 1);
    }
    // The verb's own options, by long and short name, from its definition.
    let mut cmd = crate::args::Cli::command();
    let mut sub = &mut cmd;
    for v in &verb {
        sub = sub
            .find_subcommand_mut(v)
            .ok_or_else(|| Refused(format!("{action}: no such verb {v}")))?;
    }
    let known: Vec<String> = sub
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    // The tools ignore arguments after the ones an action takes (popt leaves them over).
    let takes: Option<usize> = sub.get_positionals().try_fold(0usize, |n, a| {
        let most = a.get_num_args().map_or(1, |r| r.max_values());
        (most <= 1).then_some(n + 1)
    });
    if let Some(n) = takes {
        if tool == Tool::Cryptsetup && action == "isLuks" && pos.len() > n {
            return Ok(Request::Fail {
                line: "Only one device argument for isLuks operation is supported.".into(),
                code: crate::error::code::WRONG_DEVICE,
                verbose: has(&opts, "verbose"),
            });
        }
        pos.truncate(n);
        // veritysetup's verify and open read a root hash file over the root hash argument
        // (their last; format writes the file).
        let from_file = has(&opts, "root-hash-file");
        let takes_root = matches!(&*action, "verify" | "open" | "create");
        if tool == Tool::Veritysetup && takes_root && from_file && pos.len() == n {
            pos.pop();
        }
    }
    // veritysetup uses --hash (a name in any case) in format and for trees without a
    // superblock, and checks it in its words; otherwise the superblock names the hash and
    // the option is ignored.
    if tool == Tool::Veritysetup {
        let uses_hash = action == "format" || has(&opts, "no-superblock");
        opts.retain(|o| uses_hash || o.long != "hash");
        let verbose = has(&opts, "verbose");
        for o in opts.iter_mut().filter(|o| o.long == "hash") {
            let lower = o
                .value
                .as_ref()
                .and_then(|v| v.to_str())
                .map(str::to_ascii_lowercase);
            match lower {
                Some(h) if luks2::HashAlg::parse(&h).is_ok() => o.value = Some(h.into()),
                _ => {
                    // Named as given, as veritysetup names it.
                    let name = o.value.as_ref().map(|v| v.to_string_lossy().into_owned());
                    let name = name.unwrap_or_default();
                    return Ok(Request::Fail {
                        line: format!("Hash algorithm {name} not supported."),
                        code: crate::error::code::FAILURE,
                        verbose,
                    });
                }
            }
        }
    }
    if has(&opts, "deferred") && has(&opts, "cancel-deferred") {
        return Err(Refused(
            "Options --cancel-deferred and --deferred cannot be used at the same time.".into(),
        ));
    }
    if tool == Tool::Cryptsetup && opts.iter().filter(|o| o.long == "key-file").count() > 1 {
        return Err(Refused("Only one --key-file argument is allowed.".into()));
    }
    let mut argv: Vec<OsString> = vec!["cryptpilot".into()];
    argv.extend(verb.iter().map(OsString::from));
    let mut verbose = false;
    let mut disable_locks = false;
    for o in &opts {
        match o.long.as_str() {
            "verbose" => verbose = true,
            "disable-locks" if tool == Tool::Cryptsetup => disable_locks = true,
            // The action was chosen by it; verbs that take it check the header's version
            // (open, isLuks) or aim at it (convert); for the others, type_check does.
            "type" if !known.iter().any(|k| k == "type") => {}
            // refresh keeps the mapping read-only or read-write as it is, and a plain
            // mapping's cipher, key size, offsets and size.
            "refresh" | "readonly" | "cipher" | "key-size" | "offset" | "skip" | "size"
                if action == "refresh" => {}
            // A passphrase prompt's limit, for actions that ask none.
            "timeout" if tool == Tool::Cryptsetup && !known.iter().any(|k| k == "timeout") => {}
            // cryptsetup's luksDump unlocks the volume key from any keyslot, whatever
            // --key-slot says.
            "key-slot" if action == "luksDump" => {
                // Still a number, as popt parses it.
                let value = o.value.as_ref().and_then(|v| v.to_str());
                if value.is_none_or(|v| v.parse::<i32>().is_err()) {
                    return Err(Refused("invalid numeric value".into()));
                }
            }
            long if not_allowed(tool, &action, long) => {
                return Err(Refused(format!(
                    "Option --{long} is not allowed with {action} action."
                )))
            }
            long => {
                let ours = rename(long);
                if !known.iter().any(|k| k == ours) {
                    if long == "batch-mode" && tool != Tool::Veritysetup {
                        continue;
                    }
                    if long == "batch-mode" {
                        return Err(Refused("--batch-mode: unknown option".into()));
                    }
                    return Err(Refused(format!(
                        "{action}: option --{long} is not supported by this {} (cryptpilot)",
                        tool.name()
                    )));
                }
                let mut a = OsString::from(format!("--{ours}"));
                if let Some(v) = &o.value {
                    a.push("=");
                    a.push(v);
                }
                argv.push(a);
            }
        }
    }
    // Positional arguments after `--`, so that a device named like an option stays one.
    if !pos.is_empty() {
        argv.push("--".into());
        argv.extend(pos);
    }
    let luks2_only = matches!(
        verb.as_slice(),
        ["luks", "config" | "token" | "convert-key"]
    );
    Ok(Request::Run {
        argv,
        verbose,
        luks2_only,
        type_check,
        disable_locks,
    })
}

/// cryptsetup's words for an exit code, after "Command failed with code -N".
pub(crate) fn failure_words(code: i32) -> &'static str {
    match code {
        1 => "wrong or missing parameters",
        2 => "no permission or bad passphrase",
        3 => "out of memory",
        4 => "wrong device or file specified",
        5 => "device already exists or device is busy",
        _ => "unknown error",
    }
}

/// libcryptsetup's sentence for `e`, where the tools print one for the same failure (the
/// line scripts and users of those tools know); `None` keeps our own message.
pub(crate) fn tool_message(e: &CliError, tool: Tool, luks2_only: bool) -> Option<Vec<String>> {
    if let Some(lines) = superblock_lines(e, tool) {
        return Some(lines);
    }
    // Each activation cryptsetup tries finds no device-mapper, then cannot use the name.
    if let CliError::NoDeviceMapper { activating } = e {
        let no_dm = no_device_mapper_line().to_owned();
        return Some(match activating {
            None => vec![no_dm],
            Some((name, attempts)) => {
                let name_line =
                    format!("Cannot use device {name}, name is invalid or still in use.");
                (0..*attempts)
                    .flat_map(|_| [no_dm.clone(), name_line.clone()])
                    .collect()
            }
        });
    }
    // veritysetup verify's two lines for a block (data or hash) that fails its hash.
    if let CliError::Activate(activate::Error::Integrity {
        source: integrity::Error::Corrupt { offset, .. },
        ..
    }) = e
    {
        return Some(vec![
            format!("Verification failed at position {offset}."),
            "Verification of data area failed.".into(),
        ]);
    }
    if let CliError::Activate(activate::Error::Integrity {
        source: integrity::Error::SpareNotZero { offset },
        ..
    }) = e
    {
        return Some(vec![
            format!("Spare area is not zeroed at position {offset}."),
            "Verification of data area failed.".into(),
        ]);
    }
    if let CliError::Backup {
        path, unreadable, ..
    } = e
    {
        let mut lines = Vec::new();
        if *unreadable {
            lines.push(format!(
                "Device {} does not exist or access denied.",
                path.display()
            ));
        }
        lines.push("Header backup file does not contain compatible LUKS header.".into());
        return Some(lines);
    }
    tool_line(e, luks2_only).map(|l| vec![l])
}

/// libcryptsetup's line when it finds no device-mapper.
fn no_device_mapper_line() -> &'static str {
    match nix::unistd::geteuid().is_root() {
        true => "Cannot initialize device-mapper. Is dm_mod kernel module loaded?",
        false => "Cannot initialize device-mapper, running as non-root user.",
    }
}

/// veritysetup's and integritysetup's lines for a superblock they do not load: why (when
/// they say it), then that the device is not theirs.
fn superblock_lines(e: &CliError, tool: Tool) -> Option<Vec<String>> {
    use integrity::dm_integrity::SuperblockFault as I;
    use integrity::verity::SuperblockFault as V;
    let CliError::Activate(activate::Error::Integrity { device, source }) = e else {
        return None;
    };
    let d = device.display();
    let (why, kind) = match source {
        integrity::Error::VeritySuperblock(f) => (
            match f {
                V::Version(v) => Some(format!("Unsupported VERITY version {v}.")),
                V::HashType(t) => Some(format!("Unsupported VERITY hash type {t}.")),
                V::BlockSize(_) => Some("Unsupported VERITY block size.".into()),
                V::Algorithm(a) => Some(format!("Hash algorithm {a} not supported.")),
                V::SaltSize(_) => Some("VERITY header corrupted.".into()),
                _ => None,
            },
            "VERITY",
        ),
        integrity::Error::IntegritySuperblock(f) if tool == Tool::Integritysetup => (
            match f {
                I::NoSignature => None,
                I::Version(v) => Some(format!(
                    "Incompatible kernel dm-integrity metadata (version {v}) detected on {d}."
                )),
                _ => return None,
            },
            "INTEGRITY",
        ),
        _ => return None,
    };
    Some(
        why.into_iter()
            .chain([format!("Device {d} is not a valid {kind} device.")])
            .collect(),
    )
}

/// [`tool_message`]'s one-line sentences.
fn tool_line(e: &CliError, luks2_only: bool) -> Option<String> {
    use activate::DmError as D;
    use activate::Error as A;
    use luks2::Error as L;
    Some(match e {
        CliError::Activate(A::Luks { device, source }) => match source {
            L::WrongPassphrase => "No key available with this passphrase.".into(),
            L::NoUsableKeyslot => "No usable keyslot is available.".into(),
            L::NotLuks2 | L::Overwritten { .. } | L::IsLuks1 => format!(
                "Device {} is not a valid LUKS{} device.",
                device.display(),
                if luks2_only { "2" } else { "" }
            ),
            L::KeyslotNotFound(n) => format!("Keyslot {n} is not active."),
            L::KeyslotInUse(n) => format!("Key slot {n} is full, please select another one."),
            L::WrongVolumeKey => "Volume key does not match the volume.".into(),
            L::TokenInUse(n) => format!("Token {n} in use."),
            L::NotLuks1Compatible(why) => {
                format!(
                    "Cannot convert to LUKS1 format - {}.",
                    why.cryptsetup_reason()?
                )
            }
            _ => return None,
        },
        CliError::Activate(A::Dm {
            source: D::NoDeviceMapper,
            ..
        }) => no_device_mapper_line().into(),
        CliError::Activate(A::Suspend { name, refusal }) => {
            use activate::SuspendRefusal as R;
            match refusal {
                R::NotLuks => "This operation is supported only for LUKS device.".into(),
                R::AlreadySuspended => format!("Volume {name} is already suspended."),
                R::NotSuspended => format!("Volume {name} is not suspended."),
                R::ForeignHeader => {
                    format!("{name} is not active LUKS device name or header is missing.")
                }
                _ => return None,
            }
        }
        CliError::Activate(A::Integrity { source, .. }) => match source {
            integrity::Error::Corrupt { .. } => "Verification of data area failed.".into(),
            integrity::Error::WrongRootHash => "Verification of root hash failed.".into(),
            // Its read of a device that ends early fails.
            integrity::Error::ShortDevice { .. } => "Verification of data area failed.".into(),
            _ => return None,
        },
        CliError::WrongType { device, .. } => {
            format!("Device {} is not a valid LUKS device.", device.display())
        }
        CliError::Activate(A::Device { path, source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            format!("Device {} does not exist or access denied.", path.display())
        }
        CliError::Activate(A::Device { path, source, .. })
            if source.kind() == std::io::ErrorKind::Unsupported =>
        {
            format!("Device {} is not compatible.", path.display())
        }
        CliError::Activate(A::Device { path, source, .. })
            if source.kind() == std::io::ErrorKind::ResourceBusy =>
        {
            format!(
                "Cannot use device {} which is in use (already mapped or mounted).",
                path.display()
            )
        }
        CliError::Activate(A::DiscardsOverIntegrity) => "Discard/TRIM is not supported.".into(),
        CliError::Activate(A::Mismatch { name }) => {
            format!("Mismatching parameters on device {name}.")
        }
        CliError::Activate(A::Dm { name, source }) => match source {
            D::Exists(_) => format!("Device {name} already exists."),
            D::NotFound(_) => format!("Device {name} is not active."),
            D::Busy { .. } => format!("Device {name} is still in use."),
            _ => return None,
        },
        CliError::Aborted(m, _) => (*m).to_owned(),
        CliError::Stated(m) => m.to_string(),
        CliError::NothingToRead(_) => "Nothing to read on input.".into(),
        // libdevmapper's words, with the node's base name.
        CliError::NotMapped { path, .. } => format!(
            "Device {} not found",
            path.rsplit('/').next().unwrap_or(path)
        ),
        CliError::PassphraseMismatch => "Passphrases do not match.".into(),
        CliError::Terminal {
            reading: Reading::Passphrase,
            ..
        } => "Error reading passphrase from terminal.".into(),
        CliError::Terminal {
            reading: Reading::Answer,
            stop: Stop::End | Stop::Failed(_),
        } => "Error reading response from terminal.".into(),
        CliError::File { what, .. } if what.contains("key file") => {
            "Failed to open key file.".into()
        }
        _ => return None,
    })
}

/// Whether `arg` names one of the tools (for `cryptpilot cryptsetup ...`).
pub(crate) fn tool_of(arg: &OsStr) -> Option<Tool> {
    arg.to_str().and_then(Tool::from_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our command line for `line`, words joined by spaces, or the refusal.
    fn run(tool: Tool, line: &str) -> Result<String, String> {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        match translate(tool, &args) {
            Ok(Request::Run { argv, .. }) => Ok(argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")),
            Ok(Request::Print(p)) => Ok(p),
            Ok(Request::Fail { line, code, .. }) => Err(format!("{line} (exit {code})")),
            Err(Refused(m)) => Err(m),
        }
    }

    #[test]
    fn version_is_the_tools_with_the_flags_this_build_has() {
        for (tool, name) in [
            (Tool::Cryptsetup, "cryptsetup"),
            (Tool::Veritysetup, "veritysetup"),
            (Tool::Integritysetup, "integritysetup"),
        ] {
            for flag in ["--version", "-V"] {
                let line = run(tool, flag).expect("printed");
                assert_eq!(
                    line,
                    format!(
                        "{name} 2.6.1 flags: KEYRING KERNEL_CAPI cryptpilot-{}\n",
                        env!("CARGO_PKG_VERSION")
                    )
                );
            }
        }
    }

    #[test]
    fn options_anywhere_clusters_and_renames() {
        assert_eq!(
            run(
                Tool::Cryptsetup,
                "-q --type luks2 luksFormat -d- --pbkdf=pbkdf2 /dev/x"
            ),
            Ok("cryptpilot luks format --batch-mode --type=luks2 --key-file=- --pbkdf=pbkdf2 -- /dev/x".into())
        );
        assert_eq!(
            run(Tool::Cryptsetup, "luksDump --dump-json-metadata img"),
            Ok("cryptpilot luks dump --json -- img".into())
        );
        // -h is --hash in cryptsetup; -S takes its value attached.
        assert_eq!(
            run(Tool::Cryptsetup, "luksFormat -h sha512 -S1 img"),
            Ok("cryptpilot luks format --hash=sha512 --key-slot=1 -- img".into())
        );
        // Plain mode, and its old action create NAME DEVICE.
        assert_eq!(
            run(
                Tool::Cryptsetup,
                "open --type plain -c aes-xts-plain64 -s512 -h sha256 -o 8 -p 2 -b 64 d p"
            ),
            Ok("cryptpilot plain open --cipher=aes-xts-plain64 --key-size=512 --hash=sha256 --offset=8 --skip=2 --size=64 -- d p".into())
        );
        assert_eq!(
            run(Tool::Cryptsetup, "create -d /dev/urandom swap /dev/x"),
            Ok("cryptpilot plain open --key-file=/dev/urandom -- /dev/x swap".into())
        );
        // veritysetup's old create NAME DATA HASH ROOT.
        assert_eq!(
            run(Tool::Veritysetup, "create v data hash 00"),
            Ok("cryptpilot verity open -- data v hash 00".into())
        );
    }

    #[test]
    fn refresh_is_open_dash_dash_refresh() {
        for line in [
            "refresh r",
            "open --refresh /dev/x r",
            "luksOpen --refresh --type luks2 -r /dev/x r",
        ] {
            assert_eq!(
                run(Tool::Cryptsetup, line),
                Ok("cryptpilot luks refresh -- r".into()),
                "{line}"
            );
        }
        assert_eq!(
            run(
                Tool::Cryptsetup,
                "refresh --allow-discards --persistent --perf-no_read_workqueue r"
            ),
            Ok("cryptpilot luks refresh --allow-discards --persistent --perf-no_read_workqueue -- r".into())
        );
        assert_eq!(
            run(Tool::Cryptsetup, "refresh --test-passphrase r"),
            Err("Options --refresh and --test-passphrase are mutually exclusive.".into())
        );
        assert_eq!(
            run(Tool::Cryptsetup, "open --persistent --test-passphrase img"),
            Err("Option --persistent is not allowed with --test-passphrase.".into())
        );
    }

    #[test]
    fn timeout_goes_to_actions_that_ask() {
        assert_eq!(
            run(Tool::Cryptsetup, "luksDump -t 3 x"),
            Ok("cryptpilot luks dump --timeout=3 -- x".into())
        );
        assert_eq!(
            run(Tool::Cryptsetup, "open --type plain --timeout 3 x p"),
            Ok("cryptpilot plain open --timeout=3 -- x p".into())
        );
        // cryptsetup takes it everywhere; where nothing is asked it changes nothing.
        assert_eq!(
            run(Tool::Cryptsetup, "isLuks --timeout 3 x"),
            Ok("cryptpilot luks is-luks -- x".into())
        );
    }

    #[test]
    fn unsupported_is_refused_by_name() {
        assert_eq!(
            run(Tool::Cryptsetup, "frobnicate x"),
            Err("Unknown action.".into())
        );
        let e = run(Tool::Cryptsetup, "open --type tcrypt /dev/x p").unwrap_err();
        assert!(e.contains("--type tcrypt"), "{e}");
        let e = run(Tool::Cryptsetup, "open --type plain -S 1 /dev/x p").unwrap_err();
        assert!(e.contains("--key-slot"), "{e}");
        let e = run(Tool::Cryptsetup, "open --serialize-memory-hard-pbkdf x y").unwrap_err();
        assert!(e.contains("--serialize-memory-hard-pbkdf"), "{e}");
        let e = run(Tool::Integritysetup, "open --integrity-key-file k x y").unwrap_err();
        assert!(e.contains("--integrity-key-file"), "{e}");
        assert_eq!(
            run(Tool::Integritysetup, "create -D i x"),
            Ok("cryptpilot integrity open --integrity-no-journal -- x i".into())
        );
        // veritysetup has no batch mode (2.6.1 refuses -q); integritysetup has.
        assert_eq!(
            run(Tool::Veritysetup, "-q dump h"),
            Err("-q: unknown option".into())
        );
        assert!(run(Tool::Integritysetup, "-q dump h").is_ok());
    }

    #[test]
    fn short_options_are_each_tools_own() {
        assert_eq!(
            run(Tool::Integritysetup, "format -s 4096 -t 8 -q d"),
            Ok(
                "cryptpilot integrity format --sector-size=4096 --tag-size=8 --batch-mode -- d"
                    .into()
            )
        );
        assert_eq!(
            run(Tool::Veritysetup, "format -h sha1 -s 00 d h"),
            Ok("cryptpilot verity format --hash=sha1 --salt=00 -- d h".into())
        );
        // isLuks keeps --type: it is the question.
        assert_eq!(
            run(Tool::Cryptsetup, "isLuks --type luks1 d"),
            Ok("cryptpilot luks is-luks --type=luks1 -- d".into())
        );
    }
}
