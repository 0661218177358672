//! The binary as a drop-in for cryptsetup, veritysetup and integritysetup, on the host (header
//! work; activation needs device-mapper, which the VM suite has): each case runs the same
//! command line with the real tool (Debian's cryptsetup-bin) and with our binary under the
//! tool's name, each in its own directory holding copies of the same images, and compares exit
//! codes, standard output where the case says so, and the images afterwards as the real tool
//! dumps them (salts, digests, UUIDs and calibrated iteration counts masked where a command
//! makes new ones). Cases where we knowingly differ say why and check that we refuse in one
//! line with exit 1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::tool_path;

/// Fast PBKDF2 for every new keyslot.
const FAST: &str = "--pbkdf pbkdf2 --pbkdf-force-iterations 1000";

/// `{KEY}` in a command line: the name of a kernel keyring `user` key for keyring tokens,
/// this process's own (runs at the same time do not share it).
fn keyring_name() -> String {
    format!("cryptpilot-dropin-{}", std::process::id())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    /// Exit codes only.
    Code,
    /// Exit codes and standard output.
    Stdout,
    /// Exit codes and standard output with measured numbers masked (benchmark).
    Measured,
    /// Exit codes and standard error: libcryptsetup's sentence for the failure.
    Stderr,
    /// We refuse (exit 1, one line naming the reason); the real tool does it.
    Unsupported(&'static str),
}

struct Case {
    /// `cryptsetup ...`, `veritysetup ...` or `integritysetup ...`; `{FAST}` expands.
    line: &'static str,
    /// Standard input.
    stdin: Option<&'static str>,
    /// Run with the real tool first (set-up; steps joined by ` && `), then copied to both sides.
    pre: &'static str,
    check: Check,
    /// Run with the real tool on both sides afterwards; masked outputs must agree
    /// (`sha256sum FILE` compares the whole image).
    after: &'static str,
}

const fn c(line: &'static str, check: Check) -> Case {
    Case {
        line,
        stdin: None,
        pre: "",
        check,
        after: "",
    }
}

const fn after(line: &'static str, check: Check, after: &'static str) -> Case {
    Case {
        line,
        stdin: None,
        pre: "",
        check,
        after,
    }
}

/// A verity tree whose superblock has version 2.
const VFORMAT_SPOILT_VERSION: &str =
    "veritysetup format data.img hash.img && dd if=u32-2 of=hash.img bs=1 seek=8 conv=notrunc";
/// A verity tree and its root hash file.
const VFORMAT_ROOT: &str = "veritysetup format --salt 00 --root-hash-file root data.img hash.img";

const DUMP: &str = "cryptsetup luksDump img";
const BDUMP: &str = "cryptsetup luksDump blank.img";

fn cases() -> Vec<Case> {
    use Check::*;
    let with_stdin = |line, stdin, check| Case {
        line,
        stdin: Some(stdin),
        pre: "",
        check,
        after: "",
    };
    let with_pre = |pre, line, check, after| Case {
        line,
        stdin: None,
        pre,
        check,
        after,
    };
    vec![
        // Reading headers.
        c("cryptsetup luksDump img", Stdout),
        c("cryptsetup luksDump --dump-json-metadata img", Stdout),
        c("cryptsetup -q luksDump img", Stdout),
        c("cryptsetup luksDump -v img", Stdout),
        c("cryptsetup luksDump luks1.img", Stdout),
        c("cryptsetup luksDump nofile", Code),
        c("cryptsetup luksDump plain.img", Code),
        c("cryptsetup luksDump", Code),
        c("cryptsetup isLuks img", Stdout),
        c("cryptsetup isLuks -v img", Stdout),
        c("cryptsetup isLuks plain.img", Stdout),
        c("cryptsetup isLuks nofile", Code),
        c("cryptsetup isLuks --type luks2 img", Code),
        c("cryptsetup isLuks --type luks1 img", Code),
        c("cryptsetup isLuks --type luks1 luks1.img", Code),
        c("cryptsetup isLuks --type luks2 luks1.img", Code),
        c("cryptsetup isLuks --type luks luks1.img", Code),
        c("cryptsetup isLuks luks1.img", Code),
        // libcryptsetup's own type names; other spellings are not types.
        c("cryptsetup isLuks --type LUKS2 img", Code),
        c("cryptsetup isLuks --type LUKS1 luks1.img", Code),
        c("cryptsetup isLuks --type LUKS1 img", Code),
        c("cryptsetup isLuks --type Luks2 img", Code),
        after("cryptsetup luksFormat -q {FAST} --type LUKS1 blank.img key", Code, BDUMP),
        // The volume key instead of a passphrase: its first key-size bytes, checked.
        with_pre(
            "cryptsetup luksDump -q --dump-volume-key --volume-key-file vk img -d key",
            "cryptsetup open --test-passphrase -v --volume-key-file vk img",
            Stdout,
            "",
        ),
        with_pre(
            "cryptsetup luksDump -q --dump-volume-key --volume-key-file vk luks1.img -d key",
            "cryptsetup open --test-passphrase -v --volume-key-file vk luks1.img",
            Stdout,
            "",
        ),
        with_pre(
            "cryptsetup luksDump -q --dump-volume-key --volume-key-file vk other.img -d key2",
            "cryptsetup open --test-passphrase --volume-key-file vk img",
            Stderr,
            "",
        ),
        with_pre(
            "cryptsetup luksDump -q --dump-volume-key --volume-key-file vk img -d key",
            "cryptsetup luksAddKey {FAST} --volume-key-file vk img key2",
            Code,
            DUMP,
        ),
        c("cryptsetup open --test-passphrase --volume-key-file key img", Stderr),
        c("cryptsetup open --test-passphrase --volume-key-file nofile img", Stderr),
        after("cryptsetup luksAddKey {FAST} --volume-key-file key img key2", Stderr, DUMP),
        // -v's report of a failure is on standard output; arguments after those an action
        // takes are ignored (isLuks refuses them).
        c("cryptsetup -v isLuks plain.img", Stdout),
        after("cryptsetup -v luksRemoveKey img bad", Stdout, DUMP),
        c("cryptsetup luksDump img extra", Stdout),
        c("cryptsetup luksUUID img extra", Stdout),
        c("veritysetup dump plain.img extra", Code),
        c("cryptsetup isLuks img extra", Stderr),
        // --type on actions that load an existing header: a header of another type is not
        // a valid LUKS device (some actions say nothing); the header is left as it was.
        c("cryptsetup luksDump --type luks1 img", Stderr),
        c("cryptsetup luksDump --type luks2 luks1.img", Stderr),
        c("cryptsetup luksDump --type luks1 luks1.img", Stdout),
        c("cryptsetup luksDump --type luks img", Stdout),
        c("cryptsetup luksDump --type plain img", Stderr),
        c("cryptsetup luksDump --type luks1 nofile", Stderr),
        c("cryptsetup luksUUID --type luks1 img", Stderr),
        c("cryptsetup repair --type luks1 img", Stderr),
        after("cryptsetup luksAddKey --type luks1 img key2 -d key {FAST}", Stderr, DUMP),
        after("cryptsetup luksRemoveKey --type luks1 img key", Stderr, DUMP),
        after("cryptsetup luksChangeKey --type luks1 img key2 -d key {FAST}", Stderr, DUMP),
        after("cryptsetup luksKillSlot -q --type luks1 img 0", Stderr, DUMP),
        after("cryptsetup erase -q --type luks1 img", Stderr, DUMP),
        after("cryptsetup luksAddKey -M luks2 img key2 -d key {FAST}", Code, DUMP),
        c("cryptsetup luksUUID img", Stdout),
        c("cryptsetup luksUUID luks1.img", Stdout),
        c("cryptsetup luksUUID plain.img", Code),
        c("cryptsetup frobnicate img", Code),
        c("cryptsetup", Code),
        c("cryptsetup --bogus-option luksDump img", Code),
        // Passphrases.
        c("cryptsetup open --test-passphrase img -d key", Code),
        c("cryptsetup open --test-passphrase img --key-file=key", Code),
        c("cryptsetup open --test-passphrase img -d bad", Code),
        c("cryptsetup open --test-passphrase -v img -d key", Stdout),
        c("cryptsetup luksOpen --test-passphrase img -d key", Code),
        // --timeout limits a terminal's prompt only; everywhere else it changes nothing.
        c("cryptsetup open --test-passphrase -t 1 img -d key", Code),
        c("cryptsetup isLuks --timeout 1 img", Code),
        c("cryptsetup luksDump --timeout=1 img", Stdout),
        c("cryptsetup open --test-passphrase --type luks2 img -d key", Code),
        c("cryptsetup open --test-passphrase --type luks img -d key", Code),
        c("cryptsetup open --test-passphrase --type luks1 img -d key", Code),
        c("cryptsetup open --test-passphrase --type luks2 luks1.img -d key", Code),
        c("cryptsetup open --test-passphrase --type luks1 luks1.img -d key", Code),
        c("cryptsetup open --test-passphrase --type luks1 img -d bad", Code),
        c("cryptsetup open --test-passphrase -S 0 img -d key", Code),
        c("cryptsetup open --test-passphrase -S 3 img -d key", Code),
        c("cryptsetup open --test-passphrase --key-slot=0 img -d key", Code),
        c("cryptsetup open --test-passphrase -d key nofile", Code),
        c("cryptsetup open --test-passphrase -d key plain.img", Code),
        c("cryptsetup open --test-passphrase -d nofile img", Code),
        c("cryptsetup open --test-passphrase --keyfile-size 3 -d key img", Code),
        c("cryptsetup open --test-passphrase --keyfile-offset 1 -d key img", Code),
        c("cryptsetup open --test-passphrase --keyfile-size 5 -d key img", Code),
        c("cryptsetup open --test-passphrase luks1.img -d key", Code),
        c("cryptsetup open --test-passphrase luks1.img -d bad", Code),
        with_stdin("cryptsetup open --test-passphrase --key-file=- img", "pass1", Code),
        with_stdin("cryptsetup open --test-passphrase -d - img", "wrong", Code),
        with_stdin("cryptsetup open --test-passphrase img", "pass1\n", Code),
        c("cryptsetup open --type plain --test-passphrase img -d key", Code),
        c("cryptsetup open --type plain -s 100 img p", Code),
        c("cryptsetup open --type plain img", Code),
        c("cryptsetup open --type tcrypt img x", Unsupported("--type tcrypt")),
        // libcryptsetup's sentences on standard error.
        c("cryptsetup open --test-passphrase img -d bad", Stderr),
        c("cryptsetup open --test-passphrase nofile -d key", Stderr),
        c("cryptsetup open --test-passphrase plain.img -d key", Stderr),
        c("cryptsetup luksDump plain.img", Stderr),
        c("cryptsetup luksDump nofile", Stderr),
        c("cryptsetup luksKillSlot -q img 7", Stderr),
        c("cryptsetup open --test-passphrase img -d nofile", Stderr),
        c("cryptsetup open --test-passphrase img -d /dev/null", Stderr),
        with_stdin("cryptsetup open --test-passphrase img", "", Stderr),
        with_stdin("cryptsetup open --test-passphrase img -d -", "", Stderr),
        c("cryptsetup luksChangeKey img key2 -d bad", Stderr),
        c("cryptsetup luksRemoveKey img bad", Stderr),
        c("cryptsetup luksDump --dump-volume-key -q img -d bad", Stderr),
        // The key to a file: the dump's head, then where the key went (a file that exists
        // is refused).
        c("cryptsetup luksDump --dump-volume-key --volume-key-file vk -q img -d key", Stdout),
        c("cryptsetup luksDump --dump-volume-key --volume-key-file vk -q luks1.img -d key", Stdout),
        c("cryptsetup luksDump --dump-volume-key --volume-key-file key -q img -d key", Code),
        c("cryptsetup config --label x plain.img", Stderr),
        with_pre("cryptsetup -q erase img", "cryptsetup open --test-passphrase img -d key", Stderr, ""),
        // Keyslots.
        after("cryptsetup luksAddKey {FAST} img key2 -d key", Code, DUMP),
        after("cryptsetup -q luksAddKey {FAST} -S 5 img key2 -d key", Code, DUMP),
        after("cryptsetup luksAddKey {FAST} --key-slot 2 img key2 --key-file key", Code, DUMP),
        // cryptsetup 2.6's --new-key-slot (then -S is the keyslot to unlock) and --new-keyfile.
        after("cryptsetup luksAddKey {FAST} --new-key-slot 5 img key2 -d key", Stdout, DUMP),
        after("cryptsetup luksAddKey {FAST} -S 0 --new-key-slot 4 img key2 -d key", Stdout, DUMP),
        after("cryptsetup luksAddKey {FAST} -S 3 --new-key-slot 4 img key2 -d key", Code, DUMP),
        after("cryptsetup luksAddKey {FAST} --new-keyfile key2 img -d key", Code, "cryptsetup open --test-passphrase -v img -d key2"),
        after("cryptsetup luksAddKey {FAST} --new-keyfile key2 --new-keyfile-size 3 img -d key", Code, "cryptsetup open --test-passphrase -v img -d key2 --keyfile-size 3"),
        after("cryptsetup luksAddKey {FAST} --new-keyfile-offset 2 img key2 -d key", Code, "cryptsetup open --test-passphrase -v img -d key2 --keyfile-offset 2"),
        c("cryptsetup luksAddKey {FAST} --new-key-slot 0 img key2 -d key", Code),
        // luksConvertKey: new key derivation costs, the passphrase kept (LUKS2 only).
        after("cryptsetup -v luksConvertKey --pbkdf pbkdf2 --pbkdf-force-iterations 2000 img -d key", Stdout, DUMP),
        after("cryptsetup luksConvertKey -S 0 --pbkdf argon2i --pbkdf-memory 32 --pbkdf-force-iterations 4 img -d key", Code, "cryptsetup open --test-passphrase -v img -d key"),
        after("cryptsetup luksConvertKey --pbkdf pbkdf2 --pbkdf-force-iterations 2000 img -d bad", Stderr, DUMP),
        after("cryptsetup luksConvertKey -S 5 --pbkdf pbkdf2 --pbkdf-force-iterations 2000 img -d key", Code, DUMP),
        c("cryptsetup -v isLuks img extra", Stdout),
        c("cryptsetup luksDump --type LUKS2 img", Stdout),
        c("cryptsetup benchmark --hash sha1 -s 0", Measured),
        c("cryptsetup luksConvertKey --pbkdf pbkdf2 --pbkdf-force-iterations 2000 luks1.img -d key", Stderr),
        c("cryptsetup luksAddKey {FAST} --new-key-slot 40 img key2 -d key", Code),
        after("cryptsetup luksAddKey {FAST} --new-key-slot 2 luks1.img key2 -d key", Code, "cryptsetup luksDump luks1.img"),
        after("cryptsetup luksAddKey {FAST} img key2 -d bad", Stderr, DUMP),
        after("cryptsetup luksAddKey {FAST} luks1.img key2 -d bad", Stderr, "cryptsetup luksDump luks1.img"),
        Case {
            line: "cryptsetup luksAddKey {FAST} img key2 -d -",
            stdin: Some("wrong"),
            pre: "",
            check: Stderr,
            after: DUMP,
        },
        after("cryptsetup luksAddKey {FAST} -S 0 img key2 -d key", Code, DUMP),
        after("cryptsetup luksAddKey {FAST} img key2 -d key -S 40", Code, DUMP),
        after("cryptsetup luksAddKey --pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 32768 --pbkdf-parallel 1 img key2 -d key", Code, DUMP),
        after("cryptsetup luksAddKey {FAST} luks1.img key2 -d key", Code, "cryptsetup luksDump luks1.img"),
        after("cryptsetup -q luksRemoveKey img key", Code, DUMP),
        after("cryptsetup luksRemoveKey img bad", Code, DUMP),
        after("cryptsetup -q luksRemoveKey img -d key", Code, DUMP),
        after("cryptsetup luksChangeKey {FAST} img key2 -d key", Code, DUMP),
        after("cryptsetup luksChangeKey {FAST} img key2 -d bad", Code, DUMP),
        // With the slot named, cryptsetup rewrites the key material in place; we write it to
        // a free area first and switch (an interruption cannot lose the slot), so only the
        // area offset differs afterwards: exit codes compared, and the new passphrase opens.
        after("cryptsetup luksChangeKey {FAST} -S 0 img key2 -d key", Code, "cryptsetup open --test-passphrase -S 0 img -d key2"),
        after("cryptsetup -q luksKillSlot img 0", Code, DUMP),
        after("cryptsetup -q luksKillSlot img 3", Code, DUMP),
        after("cryptsetup -q luksKillSlot img 40", Code, DUMP),
        after("cryptsetup -q luksKillSlot nofile 0", Code, ""),
        with_pre("cryptsetup luksAddKey {FAST} -S 1 img key2 -d key", "cryptsetup luksKillSlot img 1 -d key", Code, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} -S 1 img key2 -d key", "cryptsetup luksKillSlot img 1 -d bad", Code, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} -S 1 img key2 -d key", "cryptsetup -q luksRemoveKey img key2", Code, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} -S 1 img key2 -d key", "cryptsetup open --test-passphrase -S 1 img -d key2", Code, ""),
        with_pre("cryptsetup luksAddKey {FAST} -S 1 img key2 -d key", "cryptsetup open --test-passphrase -S 0 img -d key2", Code, ""),
        // UUID, label, subsystem.
        after("cryptsetup luksUUID --uuid 12345678-1234-1234-1234-123456789abc img", Code, DUMP),
        after("cryptsetup -q luksUUID --uuid 12345678-1234-1234-1234-123456789abc img", Code, DUMP),
        after("cryptsetup luksUUID --uuid not-a-uuid img", Code, DUMP),
        after("cryptsetup config img --label backup", Code, DUMP),
        after("cryptsetup config img --subsystem cryptpilot", Code, DUMP),
        after("cryptsetup config --label a --subsystem b img", Code, DUMP),
        after("cryptsetup config plain.img --label x", Code, ""),
        // Keyslot priorities: prefer, normal (the field left out), ignore (tried only when
        // named).
        after("cryptsetup config --priority prefer -S 0 img", Code, DUMP),
        after("cryptsetup config --priority ignore -S 0 img --label x", Code, DUMP),
        with_pre("cryptsetup config --priority prefer -S 0 img", "cryptsetup config --priority normal -S 0 img", Code, DUMP),
        with_pre("cryptsetup config --priority ignore -S 0 img", "cryptsetup open --test-passphrase img -d key", Code, ""),
        with_pre("cryptsetup config --priority ignore -S 0 img", "cryptsetup open --test-passphrase -S 0 img -d key", Code, ""),
        c("cryptsetup config --priority prefer -S 3 img", Stderr),
        c("cryptsetup config --priority bogus -S 0 img", Code),
        c("cryptsetup config --priority prefer img", Code),
        c("cryptsetup config -S 0 img", Code),
        // Header backups.
        after("cryptsetup luksHeaderBackup img --header-backup-file hdr.bak", Code, "cryptsetup luksDump hdr.bak"),
        after("cryptsetup luksHeaderBackup plain.img --header-backup-file hdr.bak", Code, ""),
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr.bak", "cryptsetup luksHeaderBackup img --header-backup-file hdr.bak", Code, ""),
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr.bak", "cryptsetup -q luksHeaderRestore img --header-backup-file hdr.bak", Code, DUMP),
        with_pre("cryptsetup luksHeaderBackup other.img --header-backup-file hdr.bak", "cryptsetup -q luksHeaderRestore img --header-backup-file hdr.bak", Code, DUMP),
        // cryptsetup grows an image file smaller than the header; we refuse.
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr.bak", "cryptsetup -q luksHeaderRestore plain.img --header-backup-file hdr.bak", Unsupported("too small"), ""),
        after("cryptsetup -q luksHeaderRestore img --header-backup-file nofile", Stderr, DUMP),
        after("cryptsetup -q luksHeaderRestore img --header-backup-file plain.img", Stderr, DUMP),
        // Tokens.
        after("cryptsetup token import img --json-file token.json", Stdout, DUMP),
        after("cryptsetup -v token import img --json-file token.json", Stdout, DUMP),
        after("cryptsetup token import --token-id 3 img --json-file token.json", Code, DUMP),
        after("cryptsetup token import img --json-file badtoken.json", Stderr, DUMP),
        with_pre("cryptsetup token import img --json-file token.json", "cryptsetup token export img --token-id 0", Stdout, ""),
        with_pre("cryptsetup token import img --json-file token.json", "cryptsetup token remove img --token-id 0", Stdout, DUMP),
        with_pre("cryptsetup token import img --json-file token.json", "cryptsetup -v token remove img --token-id 0", Stdout, DUMP),
        c("cryptsetup token export img --token-id 5", Stderr),
        // cryptsetup's checks and sentences (they name no cause; our own name does).
        with_pre("cryptsetup token import img --json-file token.json", "cryptsetup token import --token-id 0 img --json-file token.json", Stderr, DUMP),
        after("cryptsetup token import --token-id 32 img --json-file token.json", Stderr, DUMP),
        after("cryptsetup token import --key-slot 5 img --json-file token.json", Stderr, DUMP),
        after("cryptsetup token import img --json-file nofile", Stderr, DUMP),
        after("cryptsetup token add --key-description k --token-id 32 img", Stderr, DUMP),
        after("cryptsetup token add --key-description k -S 5 img", Stderr, DUMP),
        c("cryptsetup token remove img --token-id 5", Stderr),
        c("cryptsetup token remove img --token-id 32", Stderr),
        c("cryptsetup token export img --token-id 32", Stderr),
        with_pre("cryptsetup token import img --json-file token.json", "cryptsetup token export img --token-id 0 --json-file nodir/t.json", Stderr, ""),
        // Usage errors: cryptsetup prints its usage first, so the exit codes only.
        c("cryptsetup token export img", Code),
        c("cryptsetup token remove img", Code),
        c("cryptsetup token frob img", Code),
        // --key-slot adds the keyslot to the imported token's.
        with_pre(
            "cryptsetup luksAddKey -q {FAST} img key2 -d key",
            "cryptsetup token import --key-slot 1 img --json-file token.json",
            Stdout,
            "cryptsetup luksDump --dump-json-metadata img",
        ),
        Case {
            line: "cryptsetup token import img",
            stdin: Some("{\"type\":\"cryptpilot-test\",\"keyslots\":[\"0\"]}"),
            pre: "",
            check: Stdout,
            after: DUMP,
        },
        Case {
            line: "cryptsetup token import --json-file - img",
            stdin: Some("{\"type\":\"cryptpilot-test\",\"keyslots\":[\"0\"]}"),
            pre: "",
            check: Stdout,
            after: DUMP,
        },
        // Repair and conversion.
        after("cryptsetup -q repair img", Stdout, DUMP),
        c("cryptsetup -v repair img", Stdout),
        c("cryptsetup repair luks1.img", Stdout),
        c("cryptsetup -v repair luks1.img", Stdout),
        c("cryptsetup repair plain.img", Code),
        after("cryptsetup -q convert --type luks2 luks1.img", Code, "cryptsetup luksDump luks1.img"),
        // Back to LUKS1: what cryptsetup converts, it converts to the same bytes; what it
        // refuses, it refuses with the same sentence and leaves as it was.
        c("cryptsetup -q convert --type luks1 img", Stderr),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 -S 3 blank.img key && cryptsetup luksAddKey {FAST} blank.img key2 -d key",
            "cryptsetup -q convert --type luks1 blank.img",
            Stdout,
            "sha256sum blank.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 --hash sha512 -c aes-cbc-essiv:sha256 -s 256 --offset 8192 blank.img key",
            "cryptsetup -q convert --type luks1 blank.img",
            Code,
            "sha256sum blank.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 --header hdr.img blank.img key",
            "cryptsetup -q convert --type luks1 --header hdr.img blank.img",
            Code,
            "sha256sum hdr.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 blank.img key && cryptsetup -q convert --type luks1 blank.img",
            "cryptsetup -q convert --type luks2 blank.img",
            Code,
            BDUMP,
        ),
        with_pre(
            "cryptsetup luksFormat -q --pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 32768 --sector-size 512 blank.img key",
            "cryptsetup -q convert --type luks1 blank.img",
            Stderr,
            "sha256sum blank.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 -S 9 blank.img key",
            "cryptsetup -q convert --type luks1 blank.img",
            Stderr,
            "sha256sum blank.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 --keyslot-cipher aes-cbc-essiv:sha256 --keyslot-key-size 256 blank.img key",
            "cryptsetup -q convert --type luks1 blank.img",
            Stderr,
            "sha256sum blank.img",
        ),
        with_pre(
            "cryptsetup luksFormat -q {FAST} --sector-size 512 blank.img key && cryptsetup token import --json-file token.json blank.img",
            "cryptsetup -q convert --type luks1 blank.img",
            Stderr,
            "sha256sum blank.img",
        ),
        // cryptsetup's built-in keyring token: the passphrase is a kernel keyring `user` key
        // (in the user keyring: both tools find it there, or, where the session does not
        // link it, neither does), tried before anyone is asked.
        after("cryptsetup token add --key-description {KEY} -v img", Stdout, DUMP),
        after("cryptsetup token add --key-description k -S 3 img", Stderr, DUMP),
        after("cryptsetup token add img", Code, DUMP),
        with_pre(
            "cryptsetup token add --key-description k img",
            "cryptsetup token add --key-description k2 --token-id 0 img",
            Stderr,
            DUMP,
        ),
        with_pre(
            "cryptsetup token add --key-description k img",
            "cryptsetup token add --key-description k2 --token-id 0 --token-replace -S 0 img",
            Code,
            DUMP,
        ),
        with_pre(
            "cryptsetup token add --key-description {KEY}-absent img",
            "cryptsetup open --test-passphrase -v --token-only img",
            Stdout,
            "",
        ),
        with_pre(
            "cryptsetup token add --key-description {KEY} img && keyctl add user {KEY} pass1 @u",
            "cryptsetup open --test-passphrase -v --token-only img",
            Stdout,
            "",
        ),
        with_pre(
            "cryptsetup token add --key-description {KEY}-wrong img && keyctl add user {KEY}-wrong wrong @u",
            "cryptsetup open --test-passphrase -v --token-only --token-id 0 img",
            Stdout,
            "",
        ),
        with_pre(
            "cryptsetup token add --key-description {KEY}-wrong -S 0 img",
            "cryptsetup open --test-passphrase -v img -d key",
            Stdout,
            "",
        ),
        c("cryptsetup open --test-passphrase -v --token-only img", Stdout),
        Case {
            line: "cryptsetup token import img",
            stdin: Some("{\"type\":\"luks2-keyring\",\"keyslots\":[\"0\"]}"),
            pre: "",
            check: Stderr,
            after: DUMP,
        },
        Case {
            line: "cryptsetup token import img",
            stdin: Some("{\"type\":\"luks2-keyring\",\"keyslots\":[],\"key_description\":\"\"}"),
            pre: "",
            check: Code,
            after: DUMP,
        },
        Case {
            line: "cryptsetup token import img",
            stdin: Some("{\"type\":\"luks2-keyring\",\"keyslots\":[],\"key_description\":\"k\",\"x\":1}"),
            pre: "",
            check: Code,
            after: DUMP,
        },
        c("cryptsetup -q convert --type luks1 luks1.img", Stderr),
        c("cryptsetup -q convert --type luks2 img", Stderr),
        c("cryptsetup -q convert --type luks3 img", Stderr),
        c("cryptsetup -q convert --type LUKS1 img", Stderr),
        c("cryptsetup open --test-passphrase -v --token-only luks1.img", Stdout),
        c("cryptsetup -q convert --type luks1 plain.img", Code),
        // Formatting.
        after("cryptsetup -q luksFormat {FAST} blank.img key", Code, BDUMP),
        after("cryptsetup -q -v luksFormat {FAST} blank.img key", Stdout, BDUMP),
        after("cryptsetup -q -v luksFormat {FAST} -S 3 blank.img key", Stdout, BDUMP),
        // erase/luksErase: every keyslot wiped, the header (digests, tokens) kept; without a
        // terminal, cryptsetup takes the question as answered yes.
        after("cryptsetup erase img", Stdout, DUMP),
        after("cryptsetup -q -v luksErase img", Stdout, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} img key2 -d key", "cryptsetup -v erase img", Stdout, DUMP),
        after("cryptsetup -q -v erase luks1.img", Stdout, "cryptsetup luksDump luks1.img"),
        with_pre("cryptsetup -q erase img", "cryptsetup open --test-passphrase img -d key", Code, DUMP),
        with_pre("cryptsetup -q erase img", "cryptsetup -q erase img", Code, DUMP),
        c("cryptsetup erase plain.img", Code),
        c("cryptsetup erase nofile", Code),
        c("cryptsetup erase", Code),
        // -v reports of the keyslot verbs.
        after("cryptsetup -v luksAddKey {FAST} img key2 -d key", Stdout, DUMP),
        after("cryptsetup luksAddKey {FAST} -S 5 img key2 -d key", Stdout, DUMP),
        after("cryptsetup -v luksChangeKey {FAST} img key2 -d key", Stdout, DUMP),
        after("cryptsetup -v luksChangeKey {FAST} luks1.img key2 -d key", Stdout, "cryptsetup luksDump luks1.img"),
        after("cryptsetup -v -q luksKillSlot img 0", Stdout, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} img key2 -d key", "cryptsetup -v luksKillSlot img 0 -d key2", Stdout, DUMP),
        with_pre("cryptsetup luksAddKey {FAST} img key2 -d key", "cryptsetup -v luksRemoveKey img key2", Stdout, DUMP),
        after("cryptsetup -v -q luksRemoveKey luks1.img key", Stdout, "cryptsetup luksDump luks1.img"),
        after("cryptsetup -q luksFormat --type luks2 {FAST} blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --label L --subsystem S blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --sector-size 512 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --key-size 256 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} -c aes-cbc-essiv:sha256 -s 256 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --uuid 11111111-2222-3333-4444-555555555555 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --luks2-metadata-size 64k --luks2-keyslots-size 4m blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --offset 32768 blank.img key", Code, BDUMP),
        // A format that leaves no data area: cryptsetup makes it (and grows an image file);
        // we refuse.
        c("cryptsetup luksFormat -q {FAST} --offset 65536 blank.img key", Unsupported("too small")),
        after("cryptsetup luksFormat -q {FAST} -S 3 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q --pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 32768 --pbkdf-parallel 1 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --hash sha512 blank.img key", Code, BDUMP),
        c("cryptsetup luksFormat -q {FAST} tiny.img key", Unsupported("too small")),
        c("cryptsetup luksFormat -q {FAST} nodir/new.img key", Code),
        c("cryptsetup luksFormat -q {FAST} --cipher nonsense-cipher blank.img key", Code),
        Case {
            line: "cryptsetup luksFormat {FAST} blank.img key",
            stdin: Some("YES\n"),
            pre: "",
            check: Code,
            after: BDUMP,
        },
        Case {
            line: "cryptsetup luksFormat {FAST} blank.img key",
            stdin: Some("no\n"),
            pre: "",
            check: Code,
            after: "",
        },
        // LUKS1 volumes (for boot loaders that read only LUKS1): the same header, and the
        // real tool opens ours.
        after("cryptsetup luksFormat -q --type luks1 {FAST} blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q --type luks1 {FAST} blank.img key", Code, "cryptsetup open --test-passphrase -v blank.img -d key"),
        after("cryptsetup luksFormat -q -v --type luks1 {FAST} -c aes-cbc-essiv:sha256 -s 256 --hash sha1 -S 3 blank.img key", Stdout, BDUMP),
        after("cryptsetup luksFormat -q --type luks1 {FAST} --offset 8192 --uuid 11111111-2222-3333-4444-555555555555 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q --type luks1 {FAST} --hash sha512 -s 512 blank.img key", Code, "cryptsetup open --test-passphrase blank.img -d key"),
        // cryptsetup writes the header, fails to add the keyslot, and exits 0 with no
        // keyslot: we refuse before writing.
        c("cryptsetup luksFormat -q --type luks1 --pbkdf argon2id blank.img key", Unsupported("PBKDF")),
        c("cryptsetup luksFormat -q --type luks1 {FAST} --sector-size 4096 blank.img key", Code),
        // --align-payload: the data at the first multiple past the header's areas.
        after("cryptsetup luksFormat -q {FAST} --align-payload 3000 blank.img key", Code, BDUMP),
        after("cryptsetup luksFormat -q {FAST} --align-payload 8192 blank.img key", Code, BDUMP),
        // cryptsetup leaves no data area here (the data offset is the device's end).
        c("cryptsetup luksFormat -q {FAST} --align-payload 65536 blank.img key", Unsupported("too small")),
        after("cryptsetup luksFormat -q --type luks1 {FAST} --align-payload 3000 blank.img key", Code, BDUMP),
        c("cryptsetup luksFormat -q {FAST} --align-payload 8 --offset 40000 blank.img key", Code),
        // A key size the cipher does not take: refused before the header is written.
        after("cryptsetup luksFormat -q --type luks1 {FAST} -s 384 blank.img key", Code, BDUMP),
        c("cryptsetup luksFormat -q --type luks1 {FAST} --offset 16 blank.img key", Code),
        // A header whose data would start past the device's end (as for LUKS2).
        c("cryptsetup luksFormat -q --type luks1 {FAST} tiny.img key", Unsupported("too small")),
        // A detached LUKS1 header: the data from sector 0 (or --offset past the header's
        // size) on the device, which is not written.
        after("cryptsetup luksFormat -q --type luks1 {FAST} --header hdr1 blank.img key", Code, "cryptsetup luksDump hdr1"),
        after("cryptsetup luksFormat -q --type luks1 {FAST} --header hdr1 blank.img key", Code, "cryptsetup open --test-passphrase -v --header hdr1 blank.img -d key"),
        after("cryptsetup luksFormat -q --type luks1 {FAST} -s 256 --offset 4096 --header hdr1 blank.img key", Code, "cryptsetup luksDump hdr1"),
        after("cryptsetup luksFormat -q --type luks1 {FAST} --header hdr1 blank.img key", Code, BDUMP),
        c("cryptsetup luksFormat -q --type luks1 {FAST} -s 256 --offset 2048 --header hdr1 blank.img key", Code),
        // veritysetup, with a fixed salt and UUID: its output is deterministic.
        c("veritysetup format data.img hash.img --salt 00112233445566778899aabbccddeeff --uuid 11111111-2222-3333-4444-555555555555", Stdout),
        c("veritysetup format --hash sha1 data.img hash.img --salt 0011 --uuid 11111111-2222-3333-4444-555555555555", Stdout),
        c("veritysetup format --data-block-size 1024 --hash-block-size 1024 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout),
        c("veritysetup format --no-superblock data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout),
        // One data block has no tree: its hash is the root hash.
        after("veritysetup format --data-blocks 1 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout, "sha256sum hash.img"),
        with_pre("veritysetup format --data-blocks 1 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify -v --data-blocks 1 data.img hash.img b16f12015b9072cc1be2a3360f8a5c5569babbed082ba369db47f292b4d866bc", Stdout, ""),
        // Format 0, Chrome OS's original.
        after("veritysetup format --format 0 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout, "sha256sum hash.img"),
        after("veritysetup format --format 0 --hash sha1 --hash-block-size 512 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout, "sha256sum hash.img"),
        c("veritysetup format --format 2 data.img hash.img", Stderr),
        with_pre("veritysetup format --format 0 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup dump hash.img", Stdout, ""),
        with_pre("veritysetup format --format 0 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify -v data.img hash.img c9d916c1614b80ff441cb453281e3e9f3181916f44c4cd923f0bf9f1adfbf0b4", Stdout, ""),
        with_pre("veritysetup format --format 0 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify data-bad.img hash.img c9d916c1614b80ff441cb453281e3e9f3181916f44c4cd923f0bf9f1adfbf0b4", Stderr, ""),
        with_pre("veritysetup format --format 0 --no-superblock data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify -v --format 0 --no-superblock --salt 00 data.img hash.img c9d916c1614b80ff441cb453281e3e9f3181916f44c4cd923f0bf9f1adfbf0b4", Stdout, ""),
        // Where the tree goes for a --hash-offset that is not a whole hash block.
        after("veritysetup format --no-superblock --hash-offset 512 data.img hash.img --salt 00", Stdout, "sha256sum hash.img"),
        after("veritysetup format --hash-offset 1536 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", Stdout, "sha256sum hash.img"),
        with_pre("veritysetup format --hash-offset 1536 data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup dump --hash-offset 1536 hash.img", Stdout, ""),
        c("veritysetup format --no-superblock --hash-offset 1000 data.img hash.img", Stderr),
        c("veritysetup format . hash.img", Stderr),
        c("veritysetup -v format --hash foo data.img hash.img", Stdout),
        c("cryptsetup -v luksDump --key-slot abc img", Stdout),
        c("veritysetup format data.img hash.img --salt xyz", Stderr),
        after("veritysetup format --data-blocks 0 --no-superblock data.img hash.img --salt 00", Stdout, "sha256sum hash.img"),
        with_pre("veritysetup format data.img hash.img --salt 00", "veritysetup verify data.img hash.img zz", Stderr, ""),
        with_pre("veritysetup format data.img hash.img --salt 00", "veritysetup verify data.img hash.img abcd", Stderr, ""),
        // veritysetup has no batch mode: refused before anything is written.
        after("veritysetup -q format data.img hash.img", Code, "sha256sum hash.img"),
        c("veritysetup --batch-mode dump hash.img", Code),
        c("veritysetup format data.img /dev/null", Stderr),
        c("veritysetup format data.img nodir/hash.img", Code),
        c("veritysetup format nofile hash.img", Code),
        with_pre("veritysetup format data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup dump hash.img", Stdout, ""),
        with_pre("veritysetup format data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify data.img hash.img 0000000000000000000000000000000000000000000000000000000000000000", Stderr, ""),
        with_pre("veritysetup format data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify data-bad.img hash.img e4688a2bd65c55cdaefef24f6245e179b18a7b74c648aedd8bbdf7a234f776a7", Stderr, ""),
        with_pre("veritysetup format data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify -v data-bad.img hash.img e4688a2bd65c55cdaefef24f6245e179b18a7b74c648aedd8bbdf7a234f776a7", Stdout, ""),
        // A spoilt hash block is named bottom up, as veritysetup names it: a level-0 entry by
        // the data block it covers, a top-block entry by the hash block below it.
        with_pre(
            "veritysetup format --salt 00 --root-hash-file root data.img hash.img && dd if=data.img of=hash.img bs=1 count=1 skip=1 seek=8300 conv=notrunc",
            "veritysetup verify data.img hash.img --root-hash-file root",
            Stderr,
            "",
        ),
        with_pre(
            "veritysetup format --salt 00 --root-hash-file root data.img hash.img && dd if=data.img of=hash.img bs=1 count=1 skip=1 seek=4196 conv=notrunc",
            "veritysetup verify data.img hash.img --root-hash-file root",
            Stderr,
            "",
        ),
        with_pre("veritysetup format data.img hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555", "veritysetup verify data.img hash.img nothex", Code, ""),
        c("veritysetup dump plain.img", Code),
        // Data and hash in one file: the tree may not start inside the data.
        after("veritysetup format --hash-offset 1048576 data.img data.img", Code, "veritysetup verify --hash-offset 4194304 data.img data.img 00"),
        after("veritysetup format --hash-offset 4194304 --salt 00 --uuid 11111111-2222-3333-4444-555555555555 data.img data.img", Stdout, "veritysetup dump --hash-offset 4194304 data.img"),
        c("veritysetup dump nofile", Code),
        c("veritysetup frobnicate", Code),
        // veritysetup status, integritysetup open/close/status: device-mapper, the VM suite's.
        // integritysetup (its format needs device-mapper even for an image file: the VM
        // suite's).
        // format needs device-mapper for its tag wipe (as integritysetup, even with --no-wipe).
        c("integritysetup format -q data.img", Code),
        c("integritysetup format -q -I sha256 data.img", Code),
        c("integritysetup dump plain.img", Code),
        // A directory is no device.
        c("integritysetup dump .", Stderr),
        c("integritysetup format -q --no-wipe .", Stderr),
        c("cryptsetup luksFormat -q . key", Stderr),
        c("veritysetup verify data.img . 00", Stderr),
        c("integritysetup", Code),
        c("integritysetup frobnicate data.img", Code),
        c("integritysetup dump nofile", Code),
        c("integritysetup open --integrity-key-file key data.img i", Unsupported("--integrity-key-file")),
        // Superblocks the tools do not load, in their words: why, then whose device it is not.
        with_pre(VFORMAT_SPOILT_VERSION, "veritysetup dump hash.img", Stderr, ""),
        with_pre(VFORMAT_SPOILT_VERSION, "veritysetup verify data.img hash.img 00", Stderr, ""),
        with_pre(VFORMAT_SPOILT_VERSION, "veritysetup open data.img v hash.img 00", Stderr, ""),
        with_pre("veritysetup format data.img hash.img && dd if=u32-2 of=hash.img bs=1 seek=12 conv=notrunc", "veritysetup dump hash.img", Stderr, ""),
        with_pre("veritysetup format data.img hash.img && dd if=u32-1000 of=hash.img bs=1 seek=64 conv=notrunc", "veritysetup dump hash.img", Stderr, ""),
        with_pre("veritysetup format data.img hash.img && dd if=foo of=hash.img bs=1 seek=32 conv=notrunc", "veritysetup dump hash.img", Stderr, ""),
        with_pre("veritysetup format data.img hash.img && dd if=u16-300 of=hash.img bs=1 seek=80 conv=notrunc", "veritysetup verify data.img hash.img 00", Stderr, ""),
        c("veritysetup dump data.img", Stderr),
        c("veritysetup verify data.img data.img 00", Stderr),
        c("veritysetup -v format --hash foo data.img hash.img", Stderr),
        c("veritysetup format --hash FOO data.img hash.img", Stderr),
        // integritysetup reads a superblock's fields as they are; only its signature and
        // version must be known.
        c("integritysetup dump isb.img", Stdout),
        c("integritysetup dump irec.img", Stdout),
        c("veritysetup dump short.img", Stderr),
        // A data or hash device that ends early: the blocks it holds are checked first.
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && truncate -s 600K data.img", "veritysetup verify data.img hash.img --root-hash-file root", Stderr, ""),
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && truncate -s 614500 data.img", "veritysetup verify -v data.img hash.img --root-hash-file root", Stdout, ""),
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && truncate -s 600K data-bad.img", "veritysetup verify data-bad.img hash.img --root-hash-file root", Stderr, ""),
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && truncate -s 5000 hash.img", "veritysetup verify data.img hash.img --root-hash-file root", Stderr, ""),
        // A format-0 level-0 block whose entries the short data covers: its unused end is checked.
        with_pre("veritysetup format --format 0 --hash sha1 --salt 00 --root-hash-file root data.img hash.img && dd if=key of=hash.img bs=1 seek=10800 conv=notrunc && truncate -s 600K data.img", "veritysetup verify data.img hash.img --root-hash-file root", Stderr, ""),
        c("veritysetup verify data.img short.img 00", Stderr),
        // format writes the root hash file; --hash in any case, used where veritysetup uses it.
        after("veritysetup format --salt 00 --uuid 11111111-2222-3333-4444-555555555555 --root-hash-file root data.img hash.img", Stdout, "sha256sum root"),
        // (veritysetup's report prints the name as typed; the superblock has it in lower case.)
        after("veritysetup format --hash SHA1 --salt 00 --uuid 11111111-2222-3333-4444-555555555555 data.img hash.img", Code, "veritysetup dump hash.img"),
        with_pre(VFORMAT_ROOT, "veritysetup verify -v --hash foo data.img hash.img --root-hash-file root", Stdout, ""),
        with_pre(VFORMAT_ROOT, "veritysetup dump --hash foo hash.img", Stdout, ""),
        with_pre(VFORMAT_ROOT, "veritysetup verify --no-superblock --hash foo data.img hash.img 00", Stderr, ""),
        c("integritysetup dump isb9.img", Stderr),
        c("integritysetup dump data.img", Stderr),
        c("integritysetup open isb9.img i", Stderr),
        c("integritysetup open data.img i", Stderr),
        // A root hash file: veritysetup takes it over the argument, and reads two characters
        // per hash byte, whatever follows.
        with_pre(VFORMAT_ROOT, "veritysetup verify -v data.img hash.img 00 --root-hash-file root", Stdout, ""),
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && dd if=key of=root bs=1 seek=64 conv=notrunc", "veritysetup verify -v data.img hash.img --root-hash-file root", Stdout, ""),
        with_pre("veritysetup format --salt 00 --root-hash-file root data.img hash.img && dd if=space of=root bs=1 conv=notrunc", "veritysetup verify data.img hash.img --root-hash-file root", Stderr, ""),
        with_pre(VFORMAT_ROOT, "veritysetup verify data.img hash.img --root-hash-file key", Stderr, ""),
        with_pre(VFORMAT_ROOT, "veritysetup verify data.img hash.img --root-hash-file .", Stderr, ""),
        // veritysetup 2.6.1 says it but then verifies nothing and exits 0.
        with_pre(VFORMAT_ROOT, "veritysetup verify data.img hash.img --root-hash-file nofile", Unsupported("Cannot read root hash file nofile."), ""),
        // No device-mapper on this host: cryptsetup reads the header, then each try to
        // activate fails (two for LUKS2: its tokens, then the passphrase), exit 1; status
        // exits 1, close 4.
        c("cryptsetup open img x -d key", Stderr),
        c("cryptsetup open -v img x -d bad", Stdout),
        c("cryptsetup open img x -d key --token-only", Stderr),
        c("cryptsetup luksOpen luks1.img x -d key", Stderr),
        c("cryptsetup open plain.img x -d key", Stderr),
        c("cryptsetup open --type plain -q -d key plain.img x", Stderr),
        c("cryptsetup create -q x plain.img -d key", Stderr),
        c("cryptsetup status x", Stderr),
        // A header whose data offset is past the device's end: refused before device-mapper.
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr", "cryptsetup open --header hdr plain.img x -d key", Stderr, ""),
        with_pre("cryptsetup luksHeaderBackup luks1.img --header-backup-file hdr", "cryptsetup open --header hdr tiny.img x -d key", Stderr, ""),
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr", "cryptsetup open hdr x -d key", Stderr, ""),
        // (cryptsetup counts whole sectors: 100 bytes past the offset are no room either.)
        with_pre("cryptsetup luksHeaderBackup img --header-backup-file hdr && truncate -s 16777316 hdr", "cryptsetup open hdr x -d key", Stderr, ""),
        c("cryptsetup status -v x", Stdout),
        c("cryptsetup close x", Stderr),
        with_pre(VFORMAT_ROOT, "veritysetup open data.img v hash.img --root-hash-file root", Stderr, ""),
        c("veritysetup status v", Stderr),
        c("integritysetup status i", Stderr),
        // A path for a mapping's name, as libcryptsetup takes one: a path to nothing is no
        // mapping (found without device-mapper); a path to something needs device-mapper.
        c("cryptsetup status /dev/mapper/nothere", Stdout),
        c("cryptsetup status ./nothere", Stdout),
        c("veritysetup status /dev/mapper/nothere", Stdout),
        c("integritysetup status ./nothere", Stdout),
        c("cryptsetup close /dev/mapper/nothere", Stderr),
        c("veritysetup close ./nothere", Stderr),
        c("integritysetup close /dev/mapper/nothere", Stderr),
        c("cryptsetup resize /dev/mapper/nothere", Stderr),
        c("cryptsetup luksSuspend ./nothere", Stderr),
        c("cryptsetup luksResume -d key /dev/mapper/nothere", Stderr),
        c("cryptsetup status ./img", Stderr),
        c("cryptsetup close ./img", Stderr),
        // refresh (open --refresh) finds the mapping first (the VM suite refreshes them).
        c("cryptsetup refresh x", Stderr),
        c("cryptsetup -v refresh x", Stdout),
        c("cryptsetup refresh /dev/mapper/nothere", Stderr),
        c("cryptsetup open --refresh img x", Stderr),
        c("cryptsetup refresh --test-passphrase x", Code),
        c("cryptsetup open --persistent --test-passphrase img -d key", Code),
        // Deferred closes (the VM suite has the mappings).
        c("cryptsetup close --deferred x", Stderr),
        c("cryptsetup close --deferred /dev/mapper/nothere", Stderr),
        c("cryptsetup close --deferred --cancel-deferred x", Code),
        c("cryptsetup status --deferred x", Code),
        c("integritysetup open --cancel-deferred data.img x", Code),
        c("veritysetup close --deferred x", Stderr),
        c("integritysetup close --cancel-deferred x", Stderr),
        // benchmark's key derivation lines (measured numbers masked; this host has no
        // AF_ALG, so the real tool's cipher rows are compared in the VM suite).
        c("cryptsetup benchmark --pbkdf pbkdf2 --hash sha256", Measured),
        c("cryptsetup benchmark -h sha512 -s 512", Measured),
        c("cryptsetup benchmark --hash ripemd160", Measured),
        c("cryptsetup benchmark --pbkdf PBKDF2 --hash sha1 --cipher aes-xts-plain64", Measured),
        c("cryptsetup benchmark --pbkdf argon2id -i 100 --pbkdf-memory 32768", Measured),
        c("cryptsetup benchmark --pbkdf argon2i --iter-time 100 --pbkdf-memory 65536 --pbkdf-parallel 2 -s 512", Measured),
        c("cryptsetup benchmark --hash nope", Measured),
        c("cryptsetup benchmark --pbkdf pbkdf2", Measured),
        c("cryptsetup benchmark --pbkdf argon2id --pbkdf-memory 16 --iter-time 100", Measured),
        c("cryptsetup benchmark --pbkdf scrypt", Code),
        c("cryptsetup benchmark -s 100 -h sha1", Code),
        c("cryptsetup benchmark --sector-size 4096", Code),
        c("cryptsetup benchmark --iv-large-sectors", Code),
        c("cryptsetup benchmark --pbkdf-force-iterations 4", Code),
        // Every option takes effect as in cryptsetup, or is refused as there.
        // --keyfile-offset and --keyfile-size apply to a passphrase on standard input too.
        Case {
            line: "cryptsetup open --test-passphrase -v --keyfile-offset 4 img",
            stdin: Some("XXXXpass1"),
            pre: "",
            check: Stdout,
            after: "",
        },
        Case {
            line: "cryptsetup open --test-passphrase -v -l 5 img",
            stdin: Some("pass1YYYY"),
            pre: "",
            check: Stdout,
            after: "",
        },
        Case {
            line: "cryptsetup luksFormat -q {FAST} --keyfile-offset 4 blank.img",
            stdin: Some("XXXXpass1"),
            pre: "",
            check: Code,
            after: "cryptsetup open --test-passphrase -v blank.img -d key",
        },
        Case {
            line: "cryptsetup luksAddKey {FAST} --new-keyfile-offset 2 img",
            stdin: Some("pass1\nZZpass2\n"),
            pre: "",
            check: Code,
            after: "cryptsetup open --test-passphrase -v img -d key2",
        },
        Case {
            line: "cryptsetup luksAddKey {FAST} -d key --new-keyfile-size 5 img",
            stdin: Some("pass1YYYY"),
            pre: "",
            check: Code,
            after: "cryptsetup open --test-passphrase -v img -d key",
        },
        // Input that ends before --keyfile-offset, or gives fewer than --keyfile-size bytes,
        // is an error (never an empty passphrase that skips a check).
        Case {
            line: "cryptsetup luksKillSlot --keyfile-offset 100 img 0",
            stdin: Some("pw\n"),
            pre: "",
            check: Stderr,
            after: DUMP,
        },
        Case {
            line: "cryptsetup open --test-passphrase -l 64 img",
            stdin: Some("pass1\n"),
            pre: "",
            check: Stderr,
            after: "",
        },
        // A new key file `-` after a prompted passphrase: the rest of standard input.
        Case {
            line: "cryptsetup luksAddKey {FAST} img -",
            stdin: Some("pass1\nnewpw\n"),
            pre: "",
            check: Code,
            after: "cryptsetup luksDump img",
        },
        // With nothing to ask (-q), a passphrase piped in is still checked.
        Case {
            line: "cryptsetup luksKillSlot -q img 1",
            stdin: Some("wrong\n"),
            pre: "cryptsetup luksAddKey -q {FAST} img key2 -d key",
            check: Stderr,
            after: DUMP,
        },
        with_pre("cryptsetup luksAddKey -q {FAST} img key2 -d key", "cryptsetup luksRemoveKey -q img key2 --key-file key", Stderr, DUMP),
        with_pre("cryptsetup luksAddKey -q {FAST} img key2 -d key", "cryptsetup luksAddKey -q --key-slot 5 -d key img key2 {FAST}", Stdout, DUMP),
        c("cryptsetup open --test-passphrase -d key2 -d key img", Code),
        after("cryptsetup luksFormat -q {FAST} --iter-time 10 blank.img key", Code, BDUMP),
        c("cryptsetup luksKillSlot --key-file key --key-slot 0 img 0", Code),
        with_pre("cryptsetup luksAddKey -q {FAST} img key2 -d key", "cryptsetup luksDump -q --dump-volume-key --key-slot 1 -d key --volume-key-file vk img", Stdout, ""),
        c("cryptsetup luksRemoveKey --key-slot 0 img key", Code),
        after("cryptsetup luksFormat -q --header hdr.img --offset 40960 --align-payload 0 blank.img key", Code, BDUMP),
        // Forced iterations skip the digest's benchmark too (1000 iterations).
        after("cryptsetup luksFormat -q {FAST} blank.img key", Code, "cryptsetup luksDump --dump-json-metadata blank.img"),
    ]
}

/// benchmark's output with the measured counts (and the padding they take) masked: the
/// words before `iterations` and `memory,` on key derivation lines.
fn mask_measured(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        if !(line.starts_with("PBKDF2-") || line.starts_with("argon2")) {
            out.push_str(line);
        } else {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut m: Vec<&str> = Vec::new();
            for (i, w) in words.iter().enumerate() {
                let next = words.get(i + 1).copied().unwrap_or("");
                let measured = w.chars().all(|c| c.is_ascii_digit())
                    && matches!(next, "iterations" | "iterations," | "memory,");
                m.push(if measured { "<n>" } else { w });
            }
            out.push_str(&m.join(" "));
        }
        out.push('\n');
    }
    out
}

/// Masks what differs between two runs of the same command: UUIDs, hex byte groups (salts,
/// digests), base64 salts and digests, and calibrated iteration counts.
fn mask(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let t = line.trim();
        let hex_groups = !t.is_empty()
            && t.split(' ')
                .all(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()));
        let masked = if hex_groups {
            "<hex>".to_owned()
        } else if let Some((k, _)) = line.split_once("Epoch:") {
            // The count of header writes: cryptsetup's format and key change make more.
            format!("{k}Epoch: <n>")
        } else if let Some((k, _)) = line.split_once("Iterations:") {
            format!("{k}Iterations: <n>")
        } else if let Some((k, _)) = line.split_once("UUID:") {
            format!("{k}UUID: <uuid>")
        } else if let Some((k, _)) = line.split_once("Salt:") {
            format!("{k}Salt: <hex>")
        } else if let Some((k, _)) = line.split_once("Digest:") {
            format!("{k}Digest: <hex>")
        } else if let Some(k) = ["MK digest:", "MK salt:"]
            .iter()
            .find(|k| line.starts_with(**k))
        {
            // LUKS1's: random for each new header.
            format!("{k} <hex>")
        } else if let Some((k, _)) = ["\"salt\":", "\"digest\":"].iter().find_map(|k| {
            line.split_once(*k)
                .map(|(before, _)| (format!("{before}{k}"), ()))
        }) {
            // The JSON metadata's (base64).
            format!("{k}<base64>")
        } else {
            line.to_owned()
        };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

struct Side {
    dir: PathBuf,
    /// Where `cryptsetup` etc. are found: the real tools' directory or our links.
    real: bool,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(side: &Side, line: &str, stdin: Option<&str>, links: &Path) -> Out {
    let line = line
        .replace("{FAST}", FAST)
        .replace("{KEY}", &keyring_name());
    let mut words = line.split_whitespace();
    let tool = words.next().expect("a tool");
    let program = if side.real {
        PathBuf::from(tool_path(tool))
    } else {
        links.join(tool)
    };
    let mut cmd = Command::new(program);
    cmd.args(words)
        .current_dir(&side.dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("stdin");
    }
    let o = child.wait_with_output().expect("wait");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The images every case starts from, made once by the real tools in `base`.
fn make_base(base: &Path) {
    let w = |name: &str, data: &[u8]| std::fs::write(base.join(name), data).expect("write");
    w("key", b"pass1");
    w("key2", b"pass2");
    w("bad", b"wrong");
    w(
        "token.json",
        b"{\"type\":\"cryptpilot-test\",\"keyslots\":[\"0\"],\"x\":\"y\"}",
    );
    w("badtoken.json", b"{\"keyslots\":\"zero\"}");
    // Bytes to spoil superblock fields with.
    w("u32-2", &2u32.to_le_bytes());
    w("u32-1000", &1000u32.to_le_bytes());
    w("u16-300", &300u16.to_le_bytes());
    w("foo", b"foo\0");
    w("space", b" ");
    // dm-integrity superblocks (integritysetup format needs device-mapper): one with fields
    // no kernel takes (tag size 0, 2^0 interleave), one of an unknown version.
    let mut sb = vec![0u8; 1 << 20];
    sb[..8].copy_from_slice(b"integrt\0");
    sb[8] = 4;
    sb[12..16].copy_from_slice(&1u32.to_le_bytes());
    sb[16..24].copy_from_slice(&1000u64.to_le_bytes());
    sb[24..28].copy_from_slice(&16u32.to_le_bytes());
    sb[29] = 15;
    w("isb.img", &sb);
    sb[8] = 9;
    w("isb9.img", &sb);
    // Version 2, recalculating (its sector printed), every flag, interleave byte 0x80
    // (printed signed).
    sb[8] = 2;
    sb[9] = 0x80;
    sb[24..28].copy_from_slice(&31u32.to_le_bytes());
    sb[32..40].copy_from_slice(&77u64.to_le_bytes());
    w("irec.img", &sb);
    w("short.img", &[0u8; 100]);
    let sized = |name: &str, bytes: u64| {
        let f = std::fs::File::create(base.join(name)).expect("create");
        f.set_len(bytes).expect("size");
    };
    sized("img", 32 << 20);
    sized("other.img", 32 << 20);
    sized("luks1.img", 8 << 20);
    sized("blank.img", 32 << 20);
    sized("tiny.img", 1 << 20);
    sized("plain.img", 4 << 20);
    let mut data = vec![0u8; 4 << 20];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    w("data.img", &data);
    // One byte changed in data block 122.
    data[500_000] ^= 0xff;
    w("data-bad.img", &data);
    let side = Side {
        dir: base.to_owned(),
        real: true,
    };
    for line in [
        "cryptsetup luksFormat -q {FAST} img key",
        "cryptsetup luksFormat -q {FAST} other.img key2",
        "cryptsetup luksFormat -q --type luks1 {FAST} luks1.img key",
    ] {
        let r = run(&side, line, None, base);
        assert_eq!(r.code, 0, "{line}: {}", r.stderr);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn same_command_lines_same_results() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let links = tmp.path().join("bin");
    std::fs::create_dir(&links).expect("mkdir");
    for t in ["cryptsetup", "veritysetup", "integritysetup"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cryptpilot"), links.join(t)).expect("link");
    }
    let base = tmp.path().join("base");
    std::fs::create_dir(&base).expect("mkdir");
    make_base(&base);
    let cases = cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let sides: Vec<Side> = [true, false]
            .iter()
            .map(|&real| {
                let dir = tmp
                    .path()
                    .join(format!("{i}-{}", if real { "real" } else { "ours" }));
                copy_dir(&base, &dir);
                Side { dir, real }
            })
            .collect();
        let real_side = Side {
            dir: sides[1].dir.clone(),
            real: true,
        };
        // The set-up runs once; both sides start from copies of what it made.
        if !case.pre.is_empty() {
            for step in case.pre.split(" && ") {
                let r = run(&sides[0], step, None, &links);
                assert_eq!(r.code, 0, "set-up {step}: {}", r.stderr);
            }
            std::fs::remove_dir_all(&sides[1].dir).expect("rm");
            copy_dir(&sides[0].dir, &sides[1].dir);
        }
        let real = run(&sides[0], case.line, case.stdin, &links);
        let ours = run(&sides[1], case.line, case.stdin, &links);
        let mut fail = |why: String| failures.push(format!("{}: {why}", case.line));
        match case.check {
            Check::Unsupported(needle) => {
                if ours.code != 1
                    || ours.stderr.lines().count() != 1
                    || !ours.stderr.contains(needle)
                {
                    fail(format!(
                        "should be refused naming '{needle}' (exit 1, one line); got {}: {}",
                        ours.code, ours.stderr
                    ));
                }
                continue;
            }
            Check::Code | Check::Stdout | Check::Measured | Check::Stderr => {
                if real.code != ours.code {
                    fail(format!(
                        "exit {} (real: {}); ours said: {} real said: {}",
                        ours.code,
                        real.code,
                        ours.stderr.trim(),
                        real.stderr.trim()
                    ));
                }
                if case.check == Check::Measured
                    && mask_measured(&real.stdout) != mask_measured(&ours.stdout)
                {
                    fail(format!(
                        "standard output differs (measured numbers masked):\n--- real\n{}--- ours\n{}",
                        real.stdout, ours.stdout
                    ));
                }
                if case.check == Check::Stdout && real.stdout != ours.stdout {
                    fail(format!(
                        "standard output differs:\n--- real\n{}--- ours\n{}",
                        real.stdout, ours.stdout
                    ));
                }
                if case.check == Check::Stderr && real.stderr != ours.stderr {
                    fail(format!(
                        "standard error differs:\n--- real\n{}--- ours\n{}",
                        real.stderr, ours.stderr
                    ));
                }
                if ours.stderr.contains("panicked") {
                    fail(format!("panic: {}", ours.stderr));
                }
            }
        }
        if !case.after.is_empty() {
            let a = run(&sides[0], case.after, None, &links);
            let b = run(&real_side, case.after, None, &links);
            if a.code != b.code || mask(&a.stdout) != mask(&b.stdout) {
                fail(format!(
                    "afterwards `{}` differs:\n--- real ({})\n{}--- ours ({})\n{}",
                    case.after,
                    a.code,
                    mask(&a.stdout),
                    b.code,
                    mask(&b.stdout)
                ));
            }
        }
        for s in &sides {
            let _ = std::fs::remove_dir_all(&s.dir);
        }
    }
    for suffix in ["", "-wrong"] {
        let _ = Command::new(tool_path("keyctl"))
            .args(["purge", "user", &format!("{}{suffix}", keyring_name())])
            .output();
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
