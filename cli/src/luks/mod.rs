//! The `cryptpilot luks` verbs: argument handling around the `luks2` library. One file per
//! group of verbs; this one dispatches and holds what they share.

pub(crate) mod any;
mod format;
mod header;
mod image;
mod keyslots;

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use luks2::{FormatOptions, KeyslotOptions, Luks2, Passphrase, PbkdfParams, SecretBuf, VolumeKey};

use crate::args::{
    Common, KeyOpts, LuksCommand as Luks, NewVolumeOpts, OpenArgs, PbkdfOpts, TokenOpts,
};
use crate::error::{CliError, CliResult, Reading};
use crate::keys::Keys;

/// Opens a device or image (exclusively locked for writers, `O_EXCL` when `exclusive`).
pub(crate) fn open_device(path: &Path, write: bool, exclusive: bool) -> CliResult<File> {
    Ok(activate::open_device(path, write, exclusive)?)
}

pub(crate) fn open_luks(path: &Path, write: bool) -> CliResult<Luks2<File>> {
    let f = open_device(path, write, false)?;
    Luks2::open(f).map_err(CliError::luks(path))
}

/// Run under cryptsetup's or integritysetup's name: libcryptsetup's conventions for questions
/// and warnings.
static AS_CRYPTSETUP: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Follows the drop-in names' conventions from here on: under cryptsetup's and
/// integritysetup's (`questions`, libcryptsetup's tools' questions), a question with no
/// terminal to ask on counts as answered yes, except before overwriting a signature;
/// `verbose` reports the keyslot that opened.
pub(crate) fn cryptsetup_conventions(questions: bool, verbose: bool) {
    AS_CRYPTSETUP.store(questions, Ordering::Relaxed);
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// What answering no to a question gives: cryptsetup's words and exit code.
pub(crate) type Abort = (&'static str, i32);

/// cryptsetup's answer to a "no" in most questions (luksFormat's, among others).
pub(crate) const ABORTED: Abort = ("Operation aborted.", 1);

/// Asks for confirmation of a destructive step; `--batch-mode` skips the question, and
/// without a terminal to ask on, the step is refused (under cryptsetup's or integritysetup's
/// name, taken as confirmed, as they do).
pub(crate) fn confirm(common: &Common, warning: &str) -> CliResult {
    confirm_as(common, warning, ABORTED)
}

/// [`confirm`], with what a "no" says and exits with.
pub(crate) fn confirm_as(common: &Common, warning: &str, abort: Abort) -> CliResult {
    if !common.batch && !io::stdin().is_terminal() && AS_CRYPTSETUP.load(Ordering::Relaxed) {
        return Ok(());
    }
    ask_yes(common, warning, abort)
}

/// [`confirm`] before overwriting a file system or other signature: never without
/// `--batch-mode` or an answer, whatever the name the binary runs under.
pub(crate) fn confirm_overwrite(common: &Common, warning: &str) -> CliResult {
    ask_yes(common, warning, ABORTED)
}

fn ask_yes(common: &Common, warning: &str, abort: Abort) -> CliResult {
    if common.batch {
        return Ok(());
    }
    if !io::stdin().is_terminal() {
        return Err(CliError::Refused(format!(
            "{warning} Not confirmed (no terminal to ask on); pass --batch-mode to proceed"
        )));
    }
    let question = format!(
        "\nWARNING!\n========\n{warning}\n\nAre you sure? (Type 'yes' in capital letters): "
    );
    // cryptsetup asks on standard output; our own verbs keep it for results.
    match crate::terminal::answer_is_yes(&question, AS_CRYPTSETUP.load(Ordering::Relaxed)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CliError::Aborted(abort.0, abort.1)),
        // cryptsetup ends on ^C without a word.
        Err(stop @ crate::terminal::Stop::Interrupted(_)) => {
            Err(CliError::Quiet(Box::new(CliError::Terminal {
                reading: Reading::Answer,
                stop,
            })))
        }
        Err(stop) => Err(CliError::Terminal {
            reading: Reading::Answer,
            stop,
        }),
    }
}

pub(crate) fn pbkdf_params(o: &PbkdfOpts) -> CliResult<PbkdfParams> {
    let mut p = PbkdfParams::default();
    if let Some(k) = o.pbkdf {
        p.kind = k;
    }
    if let Some(h) = o.hash {
        p.hash = h;
    }
    if let Some(m) = o.pbkdf_memory {
        p.memory_kib = m;
    }
    if let Some(n) = o.pbkdf_parallel {
        p.parallel = n;
    }
    if let Some(ms) = o.iter_time {
        if o.pbkdf_force_iterations.is_some() {
            return Err(CliError::Stated(
                "PBKDF forced iterations cannot be combined with iteration time option.".into(),
            ));
        }
        p.iter_time = Duration::from_millis(ms);
    }
    p.force_iterations = o.pbkdf_force_iterations;
    Ok(p)
}

pub(crate) fn keyslot_options(o: &PbkdfOpts) -> CliResult<KeyslotOptions> {
    let mut k = KeyslotOptions {
        pbkdf: pbkdf_params(o)?,
        ..KeyslotOptions::default()
    };
    // cryptsetup's --hash is the anti-forensic splitter's hash too.
    if let Some(h) = o.hash {
        k.af_hash = h;
    }
    Ok(k)
}

/// FormatOptions from the layout, KDF and key-slot flags.
pub(crate) fn format_options(
    new: &NewVolumeOpts,
    pbkdf: &PbkdfOpts,
    key: &KeyOpts,
) -> CliResult<FormatOptions> {
    let mut opts = FormatOptions::default();
    if let Some(c) = &new.cipher {
        opts.cipher = c.clone();
    }
    if let Some(bits) = new.key_size {
        if bits % 8 != 0 {
            return Err(CliError::Usage(format!(
                "key size {bits} is not a multiple of 8 bits"
            )));
        }
        opts.key_size = bits / 8;
    } else if !opts.cipher.contains("-xts-") {
        opts.key_size = 32;
    }
    opts.sector_size = new.sector_size;
    if let Some(m) = new.metadata_size {
        opts.metadata_size = m;
    }
    opts.keyslots_size = new.keyslots_size;
    opts.data_offset = match new.offset {
        Some(s) => Some(
            luks2::Sectors(s)
                .bytes()
                .ok_or_else(|| CliError::Usage(format!("--offset {s} sectors is too large")))?
                .0,
        ),
        None => None,
    };
    opts.label = new.label.clone().unwrap_or_default();
    opts.subsystem = new.subsystem.clone().unwrap_or_default();
    opts.uuid = new.uuid.clone();
    opts.keyslot = keyslot_options(pbkdf)?;
    if let Some(h) = pbkdf.hash {
        opts.digest_hash = h;
    }
    if let Some(s) = key.key_slot {
        opts.keyslot_id = s;
    }
    Ok(opts)
}

/// The largest volume key file read (LUKS2 keys are at most 512 bytes).
const VOLUME_KEY_MAX: usize = 4096;

/// Reads a volume key file into a buffer that never grows.
pub(crate) fn read_volume_key(path: &Path, size: usize) -> CliResult<VolumeKey> {
    use std::io::Read as _;
    let shown = path.display();
    let mut buf = SecretBuf::with_capacity(size.min(VOLUME_KEY_MAX));
    File::open(path)
        .and_then(|f| buf.read_to_end(&mut f.take(size.min(VOLUME_KEY_MAX) as u64)))
        .map_err(|e| match as_cryptsetup() {
            // cryptsetup names no cause; our own name keeps the system's.
            true => CliError::Stated(format!("Cannot read keyfile {shown}.").into()),
            false => CliError::file(path, "read the volume key file")(e),
        })?;
    if buf.len() < size {
        return Err(CliError::Stated(
            format!("Cannot read {size} bytes from keyfile {shown}.").into(),
        ));
    }
    Ok(VolumeKey::from(buf))
}

/// Writes `bytes` to a new file (mode 0400) that appears only once complete.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> CliResult {
    let mut out = crate::output::Output::create(path, 0o400, false)?;
    out.file()
        .write_all(bytes)
        .map_err(CliError::file(path, "write"))?;
    out.commit()
}

pub(crate) fn unlock<D: luks2::BlockIo>(
    dev: &mut Luks2<D>,
    device: &Path,
    pass: &Passphrase,
    slot: Option<u32>,
    key: &KeyOpts,
) -> CliResult<(u32, VolumeKey)> {
    let (n, vk) = dev
        .unlock(pass, slot, &key.kdf_limits())
        .map_err(CliError::luks(device))?;
    report_unlocked(n);
    Ok((n, vk))
}

/// Asks for the existing passphrase and tries it with `attempt`; typed on a terminal, a wrong
/// one is asked for again, `--tries` times in all, as cryptsetup does.
pub(crate) fn with_tries<T>(
    keys: &mut Keys,
    key: &KeyOpts,
    prompt: &str,
    mut attempt: impl FnMut(&Passphrase) -> CliResult<T>,
) -> CliResult<T> {
    let again = key.key_file.is_none() && io::stdin().is_terminal();
    let mut n = 1;
    loop {
        let pass = keys.existing(key, prompt)?;
        match attempt(&pass) {
            Err(
                e @ CliError::Activate(activate::Error::Luks {
                    source: luks2::Error::WrongPassphrase,
                    ..
                }),
            ) if again && n < key.tries => {
                // The line the command would end with, under the name it runs as.
                let line = match as_cryptsetup() {
                    true => crate::compat::tool_message(&e, crate::compat::Tool::Cryptsetup, false)
                        .map(|l| l.join("\n")),
                    false => None,
                };
                eprintln!(
                    "{}",
                    line.unwrap_or_else(|| crate::error::chain("cryptpilot", &e))
                );
                n += 1;
            }
            r => return r,
        }
    }
}

/// The key file of a verb that also takes one as its argument (format, remove-key): our own
/// name refuses both; cryptsetup's takes --key-file and says so.
pub(crate) fn key_file_of<'a>(
    arg: Option<&'a Path>,
    key: &'a KeyOpts,
) -> CliResult<Option<&'a Path>> {
    match (arg, key.key_file.as_deref()) {
        (Some(_), Some(f)) if as_cryptsetup() => {
            eprintln!("Option --key-file takes precedence over specified key file argument.");
            Ok(Some(f))
        }
        (Some(_), Some(_)) => Err(CliError::Usage(
            "give the key file either as an argument or with --key-file, not both".into(),
        )),
        (a, f) => Ok(f.or(a)),
    }
}

/// A line of cryptsetup's `-v` report ("Key slot 1 created."), on standard output.
pub(crate) fn say(line: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        println!("{line}");
    }
}

/// When a tool names a signature it is about to format over: cryptsetup before its question,
/// integritysetup after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Warn {
    BeforeAsking,
    AfterAsking,
}

/// The question before `device` is formatted over the signature `sig` it holds (if any). The
/// drop-in names ask before any format (with no terminal, that is a yes) and name a signature
/// as `warn` says; our own name asks only over a signature. A signature always needs a
/// terminal's yes, or `--batch-mode`.
pub(crate) fn confirm_format(
    common: &Common,
    device: &Path,
    sig: Option<&str>,
    warn: Warn,
) -> CliResult {
    let overwrite = format!(
        "This will overwrite data on {} irrevocably.",
        device.display()
    );
    let Some(sig) = sig else {
        return match as_cryptsetup() {
            true => confirm(common, &overwrite),
            false => Ok(()),
        };
    };
    if !as_cryptsetup() {
        return confirm_overwrite(
            common,
            &format!(
                "{} contains a {sig} signature. This will overwrite data on it irrevocably.",
                device.display()
            ),
        );
    }
    let warning = signature_warning(device, sig);
    let say = |when: Warn| {
        if when == warn && !common.batch {
            println!("{warning}");
        }
    };
    say(Warn::BeforeAsking);
    // Named only after the question, a signature is named in the refusal without a terminal.
    let question = match warn == Warn::AfterAsking && !io::stdin().is_terminal() {
        true => format!(
            "{} contains a {sig} signature. {overwrite}",
            device.display()
        ),
        false => overwrite,
    };
    confirm_overwrite(common, &question)?;
    say(Warn::AfterAsking);
    Ok(())
}

/// libcryptsetup's warning before it overwrites the signature `luks2::probe` found on
/// `device` (with blkid's name and kind for it).
pub(crate) fn signature_warning(device: &Path, sig: &str) -> String {
    let (name, kind) = match sig {
        "LUKS1" | "LUKS2" => ("crypto_LUKS", "superblock"),
        "mbr" => ("dos", "partition"),
        "gpt" => ("gpt", "partition"),
        other => (other, "superblock"),
    };
    format!(
        "WARNING: Device {} already contains a '{name}' {kind} signature.",
        device.display()
    )
}

/// Whether the binary runs under cryptsetup's (or integritysetup's) name: libcryptsetup's
/// conventions for questions and warnings apply then.
pub(crate) fn as_cryptsetup() -> bool {
    AS_CRYPTSETUP.load(Ordering::Relaxed)
}

/// cryptsetup -v's report of an unlock.
pub(crate) fn report_unlocked(slot: u32) {
    say(&format!("Key slot {slot} unlocked."));
}

/// cryptsetup's first try at opening a LUKS2 volume: its keyring tokens. `Some` keyslot and
/// volume key when a token opened one; `None` to ask for the passphrase; with --token-only,
/// the failure instead (exit 1 without a usable token, 2 when the tokens' keys open nothing).
pub(crate) fn try_tokens<D: luks2::BlockIo>(
    dev: &mut Luks2<D>,
    device: &Path,
    key: &KeyOpts,
    t: &TokenOpts,
) -> CliResult<Option<(u32, VolumeKey)>> {
    use activate::TokenUnlock as T;
    let limits = key.kdf_limits();
    let shown = device.display();
    let token_error = |message: String, code| {
        // cryptsetup says why only with -v.
        CliError::Quiet(Box::new(CliError::Token { message, code }))
    };
    let failed = match activate::unlock_by_keyring_token(dev, key.key_slot, t.token_id, &limits) {
        T::Unlocked { slot, key, .. } => {
            report_unlocked(slot);
            return Ok(Some((slot, key)));
        }
        T::NoUsableToken => {
            say("No usable token is available.");
            token_error(
                format!("{shown}: no keyring token for this keyslot or token"),
                1,
            )
        }
        T::KeyMissing { token } => token_error(
            format!("{shown}: the kernel keyring holds no key for token {token}"),
            crate::error::code::PERMISSION,
        ),
        T::WrongPassphrase { token } => {
            if t.token_id.is_some() {
                say(&format!(
                    "Token {token} cannot unlock assigned keyslot(s) (wrong keyslot passphrase)."
                ));
            }
            token_error(
                format!("{shown}: the key of token {token} opens none of its keyslots"),
                crate::error::code::PERMISSION,
            )
        }
        T::Failed { error, .. } => CliError::luks(device)(error),
    };
    match t.token_only {
        true => Err(failed),
        false => Ok(None),
    }
}

/// --token-only on LUKS1, which has no tokens: cryptsetup fails (exit 1) without asking.
pub(crate) fn no_luks1_tokens(device: &Path) -> CliError {
    CliError::Quiet(Box::new(CliError::Token {
        message: format!("{}: LUKS1 has no tokens (--token-only)", device.display()),
        code: crate::error::code::FAILURE,
    }))
}

/// Runs one `luks` verb; returns the exit code for verbs that report through it (is-luks,
/// status).
pub(crate) fn run(cmd: Luks, out: &mut dyn Write) -> CliResult<i32> {
    let mut keys = Keys::new(cmd.key_opts().and_then(KeyOpts::timeout));
    let keys = &mut keys;
    match cmd {
        Luks::Format(a) => format::run(a, keys),
        Luks::Open(a) => open(a, keys),
        Luks::Refresh(a) => crate::mapping::refresh(&a, keys),
        Luks::Close(a) => crate::mapping::close(&a.name, &a.deferral, out),
        Luks::Resize(a) => crate::mapping::resize(&a, keys),
        Luks::Status(a) => crate::mapping::status(&a.name, a.json, out),
        Luks::Dump(a) => header::dump(a, keys, out),
        Luks::AddKey(a) => keyslots::add(a, keys),
        Luks::RemoveKey(a) => keyslots::remove(a, keys),
        Luks::ChangeKey(a) => keyslots::change(a, keys),
        Luks::ConvertKey(a) => keyslots::convert(a, keys),
        Luks::KillSlot(a) => keyslots::kill(a, keys),
        Luks::Erase(a) => keyslots::erase(a),
        Luks::Suspend(a) => crate::mapping::suspend(&a.name),
        Luks::Resume(a) => crate::mapping::resume(&a, keys),
        Luks::HeaderBackup(a) => header::backup(a),
        Luks::HeaderRestore(a) => header::restore(a),
        Luks::Repair(a) => header::repair(a, out),
        Luks::Uuid(a) => header::uuid(a, out),
        Luks::IsLuks(a) => header::is_luks(a),
        Luks::Config(a) => header::config(a),
        Luks::Token(a) => header::token(a, out),
        Luks::Convert(a) => header::convert(a),
        Luks::EncryptImage(a) => image::encrypt(a, keys),
        Luks::DecryptImage(a) => image::decrypt(a, keys),
        Luks::Read(a) => image::read(a, keys, out),
        Luks::Write(a) => image::write(a, keys, out),
    }
}

/// `open`: checks the passphrase only (`--test-passphrase`), or unlocks and maps.
fn open(a: OpenArgs, keys: &mut Keys) -> CliResult<i32> {
    if let Some(ty) = a.luks_type.as_deref() {
        let header = a.hdr.of(&a.device);
        any::require_type(header, ty)?;
    }
    if a.test_passphrase {
        let header = a.hdr.of(&a.device);
        let mut dev = any::open_any(header, false)?;
        let prompt = format!("Enter passphrase for {}: ", a.device.display());
        if let Some(f) = &a.volume_key_file {
            let vk = read_volume_key(f, dev.key_size(header)?)?;
            dev.verify_volume_key(header, &vk)?;
            return Ok(0);
        }
        match &mut dev {
            any::AnyLuks::V2(d) => {
                if try_tokens(d, header, &a.key, &a.tokens)?.is_some() {
                    return Ok(0);
                }
            }
            any::AnyLuks::V1(_) if a.tokens.token_only => return Err(no_luks1_tokens(header)),
            any::AnyLuks::V1(_) => {}
        }
        let (slot, _) = with_tries(keys, &a.key, &prompt, |pass| {
            dev.unlock(header, pass, a.key.key_slot, &a.key)
        })?;
        report_unlocked(slot);
        return Ok(0);
    }
    let Some(name) = &a.name else {
        return Err(CliError::Usage(
            "open needs a mapping NAME (or --test-passphrase)".into(),
        ));
    };
    let options = crate::mapping::luks_options(&a.map, a.readonly);
    let device = crate::mapping::Volume {
        data: &a.device,
        header: a.hdr.header.as_deref(),
        named: &a.device,
    };
    let unlock = crate::mapping::Unlock {
        key: &a.key,
        tokens: &a.tokens,
        volume_key_file: a.volume_key_file.as_deref(),
    };
    crate::mapping::open(&device, name, &unlock, keys, &options, a.map.persistent)
}

/// Writes to standard output; a closed pipe is not an error.
pub(crate) fn write_out(out: &mut dyn Write, s: &str) -> CliResult<i32> {
    write_bytes(out, s.as_bytes())
}

/// Writes to standard output; a closed pipe is not an error.
pub(crate) fn write_bytes(out: &mut dyn Write, bytes: &[u8]) -> CliResult<i32> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(CliError::File {
            path: PathBuf::from("standard output"),
            what: "write to",
            source: e,
        }),
    }
}
