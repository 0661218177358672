//! `cryptpilot crypt` (also run as `cryptpilot-crypt`): data volumes from configuration
//! files. Parsing and the volumes' lifecycle are the `volumes` library's; this file picks
//! volumes, asks and prints.

use std::io::Write;
use std::path::Path;

use activate::Mapper;
use keyprovider::for_config;
use serde_json::json;
use volumes::lifecycle::{self, State, Ui};
use volumes::{MakeFs, Volume};

use crate::args::{BootStage, CryptArgs, CryptCommand, CryptConfigCommand};
use crate::error::{code, CliError, CliResult};
use crate::luks::write_out;
use crate::progress::Progress;

pub(crate) fn run(args: CryptArgs, out: &mut dyn Write) -> CliResult<i32> {
    let dir = &args.config_dir;
    match args.command {
        CryptCommand::Config(CryptConfigCommand::Check { keep_checking: _ }) => check(dir, out),
        CryptCommand::Show { volumes, json } => show(&load(dir)?, &volumes, json, out),
        CryptCommand::Init {
            volumes,
            force_reinit,
            yes,
        } => {
            let all = load(dir)?;
            let mut ui = Terminal::new(yes);
            for v in select(&all, &volumes)? {
                lifecycle::init(v, force_reinit, &mut ui)?;
                writeln!(out, "{}: initialized", v.name).ok();
            }
            Ok(0)
        }
        CryptCommand::Open { volumes, check_fs } => {
            let all = load(dir)?;
            for v in select(&all, &volumes)? {
                lifecycle::open(v, check_fs, &mut Terminal::new(false))?;
            }
            Ok(0)
        }
        CryptCommand::Close { volumes } => {
            let all = load(dir)?;
            for v in select(&all, &volumes)? {
                lifecycle::close(v)?;
            }
            Ok(0)
        }
        CryptCommand::BootService {
            stage: BootStage::SystemVolumesAutoOpen,
        } => auto_open(dir, out),
    }
}

/// The CLI's side of a volume's lifecycle: confirmation on the terminal (or `-y`), notices
/// and the wipe's progress on standard error.
struct Terminal {
    yes: bool,
    wipe: Option<Progress>,
}

impl Terminal {
    fn new(yes: bool) -> Self {
        Terminal { yes, wipe: None }
    }
}

impl Ui for Terminal {
    fn confirm(&mut self, warning: &str) -> bool {
        if self.yes {
            return true;
        }
        let common = crate::args::Common { batch: false };
        crate::luks::confirm(&common, warning).is_ok()
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn wipe_progress(&mut self, done: u64, total: u64) {
        let p = self
            .wipe
            .get_or_insert_with(|| Progress::new("Wiping device to initialize integrity checksum"));
        p.update(done, total);
        if done >= total {
            if let Some(p) = self.wipe.take() {
                p.finish();
            }
        }
    }
}

fn select<'a>(all: &'a [Volume], names: &[String]) -> CliResult<Vec<&'a Volume>> {
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|v| v.name.as_str() == n).ok_or_else(|| {
                CliError::Usage(format!("no volume named '{n}' in the configuration"))
            })
        })
        .collect()
}

fn load(dir: &Path) -> CliResult<Vec<Volume>> {
    let (volumes, errors) = volumes::load_all(dir);
    match errors.into_iter().next() {
        Some(e) => Err(CliError::Usage(e.to_string())),
        None => Ok(volumes),
    }
}

/// Every error of every file, then what each provider can check offline.
fn check(dir: &Path, out: &mut dyn Write) -> CliResult<i32> {
    let (volumes, errors) = volumes::load_all(dir);
    for e in &errors {
        eprintln!("cryptpilot: {e}");
    }
    let mut bad_providers = 0;
    for v in &volumes {
        if let Err(e) = for_config(&v.provider).check() {
            eprintln!("cryptpilot: {}: volume '{}': {e}", v.file.display(), v.name);
            bad_providers += 1;
        }
    }
    if errors.is_empty() && bad_providers == 0 {
        let msg = format!("configuration OK: {} volume(s)\n", volumes.len());
        write_out(out, &msg)
    } else {
        Ok(code::FAILURE)
    }
}

/// One row per volume, as a table or JSON.
fn show(all: &[Volume], names: &[String], json: bool, out: &mut dyn Write) -> CliResult<i32> {
    let mapper = Mapper::open().ok();
    let mut rows = Vec::new();
    let row = |cells: [&str; 7]| {
        format!(
            "{:<16} {:<24} {:<8} {:<12} {:<6} {:<10} {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )
    };
    let mut text = row([
        "Volume",
        "Device",
        "Provider",
        "Initialized",
        "Open",
        "Integrity",
        "Auto-open",
    ]);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for v in select(all, names)? {
        let init = match (v.provider.name(), lifecycle::state(v)) {
            (_, State::Missing) => "no device",
            ("otp", _) => "not needed",
            (_, State::Initialized) => "yes",
            (_, State::Interrupted) => "interrupted",
            (_, State::Other(_)) => "no",
        };
        let open = mapper
            .as_ref()
            .map_or("unknown", |m| yes_no(m.is_active(&v.name)));
        let dev = v.dev.display().to_string();
        text += &row([
            v.name.as_str(),
            &dev,
            v.provider.name(),
            init,
            open,
            yes_no(v.integrity),
            yes_no(v.auto_open),
        ]);
        rows.push(json!({
            "volume": v.name.as_str(), "dev": dev,
            "key_provider": v.provider.name(), "initialized": init, "open": open,
            "integrity": v.integrity, "auto_open": v.auto_open,
            "makefs": v.makefs.map(MakeFs::name), "config_file": v.file.display().to_string(),
        }));
    }
    if json {
        write_out(out, &format!("{}\n", serde_json::Value::Array(rows)))
    } else {
        write_out(out, &text)
    }
}

/// The boot service: opens every `auto_open` volume, reporting each failure and going on.
fn auto_open(dir: &Path, out: &mut dyn Write) -> CliResult<i32> {
    let (volumes, errors) = volumes::load_all(dir);
    let mut failed = errors.len();
    for e in &errors {
        eprintln!("cryptpilot: skipped: {e}");
    }
    let mapper = Mapper::open().ok();
    for v in volumes.iter().filter(|v| v.auto_open) {
        if mapper.as_ref().is_some_and(|m| m.is_active(&v.name)) {
            writeln!(out, "{}: already open", v.name).ok();
            continue;
        }
        match lifecycle::open(v, false, &mut Terminal::new(false)) {
            Ok(()) => {
                writeln!(out, "{}: opened", v.name).ok();
            }
            Err(e) => {
                failed += 1;
                eprintln!("cryptpilot: {}: {e}", v.name);
            }
        }
    }
    Ok(if failed == 0 { 0 } else { code::FAILURE })
}
