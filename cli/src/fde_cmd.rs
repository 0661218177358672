//! `cryptpilot fde`: the full-disk layout's volume group, through the `fde` library.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::args::{FdeCommand, FdeStage, RefFormat, RefHashAlgo, VgAction};
use crate::error::{CliError, CliResult};
use crate::luks::write_out;

/// Runs one `fde` verb.
pub(crate) fn run(cmd: FdeCommand, out: &mut dyn Write) -> CliResult<i32> {
    match cmd {
        FdeCommand::BootService {
            stage: FdeStage::AfterSysroot,
            config_dir,
            sysroot,
            ..
        } => {
            let config = fde::load(&config_dir).map_err(|e| CliError::Fde(e.into()))?;
            let mut log = StderrLog {
                verbose: config.global.boot.verbose,
            };
            fde::boot::after_sysroot(&config, &sysroot, &mut log).map_err(CliError::Fde)?;
            Ok(0)
        }
        FdeCommand::BootService {
            stage: FdeStage::BeforeSysroot,
            config_dir,
            pv,
            ..
        } => {
            let config = fde::load(&config_dir).map_err(|e| CliError::Fde(e.into()))?;
            let pv = match pv {
                Some(p) => p,
                None => fde::vg::find_pv(fde::boot::VG).map_err(CliError::Fde)?,
            };
            let stage = fde::boot::Stage {
                config: &config,
                pv,
            };
            let mut log = StderrLog {
                verbose: config.global.boot.verbose,
            };
            let root = fde::boot::before_sysroot(&stage, &mut log).map_err(CliError::Fde)?;
            write_out(out, &format!("{}\n", root.display()))
        }
        FdeCommand::Initrd {
            config_dir,
            kernel_modules,
            module,
            include,
            init,
            out: file,
            force,
        } => initrd(
            fde::initrd::Options {
                init: match init {
                    Some(p) => p,
                    None => std::env::current_exe()
                        .map_err(CliError::file(Path::new("/proc/self/exe"), "find"))?,
                },
                config_dir,
                kernel_modules,
                modules: fde::initrd::DEFAULT_MODULES
                    .iter()
                    .map(|m| (*m).to_owned())
                    .chain(module)
                    .collect(),
                include: include.iter().map(|i| split_include(i)).collect(),
            },
            &file,
            force,
            out,
        ),
        FdeCommand::ShowReferenceValue {
            disk,
            hash_algo,
            format,
        } => {
            let mut algos: Vec<fde::authenticode::HashAlgo> = Vec::new();
            for a in hash_algo {
                let a = match a {
                    RefHashAlgo::Sha1 => fde::authenticode::HashAlgo::Sha1,
                    RefHashAlgo::Sha256 => fde::authenticode::HashAlgo::Sha256,
                    RefHashAlgo::Sha384 => fde::authenticode::HashAlgo::Sha384,
                    RefHashAlgo::Sm3 => fde::authenticode::HashAlgo::Sm3,
                };
                if !algos.contains(&a) {
                    algos.push(a);
                }
            }
            let values = match &disk {
                Some(d) => {
                    let img = fde::image::DiskImage::open(d).map_err(CliError::Fde)?;
                    let mut files = fde::reference::ImageBoot::open(&img).map_err(CliError::Fde)?;
                    fde::reference::compute(&mut files, &algos)
                }
                None => {
                    let mut files = fde::reference::LocalBoot::new().map_err(CliError::Fde)?;
                    fde::reference::compute(&mut files, &algos)
                }
            }
            .map_err(CliError::Fde)?;
            let json = serde_json::to_string_pretty(&values)
                .map_err(|e| CliError::Refused(format!("cannot print JSON: {e}")))?;
            match format {
                RefFormat::Json => write_out(out, &format!("{json}\n")),
                RefFormat::Rvps => {
                    use base64::Engine;
                    let payload =
                        base64::engine::general_purpose::STANDARD.encode(format!("{json}\n"));
                    let doc = serde_json::json!({
                        "version": "0.1.0", "type": "sample", "payload": payload,
                    });
                    write_out(out, &format!("{doc}\n"))
                }
            }
        }
        FdeCommand::Vg {
            action,
            device,
            json,
        } => match action {
            VgAction::Show => {
                let vg = fde::vg::read(&device).map_err(CliError::Fde)?;
                write_out(out, &show(&vg, json))
            }
            VgAction::Activate => {
                let mapper = activate::Mapper::open()?;
                for p in fde::vg::activate(&mapper, &device).map_err(CliError::Fde)? {
                    write_out(out, &format!("{}\n", p.display()))?;
                }
                Ok(0)
            }
            VgAction::Deactivate => {
                let mapper = activate::Mapper::open()?;
                fde::vg::deactivate(&mapper, &device).map_err(CliError::Fde)?;
                Ok(0)
            }
        },
    }
}

/// `SRC[:DST]`, DST defaulting to SRC.
fn split_include(spec: &str) -> (PathBuf, PathBuf) {
    match spec.split_once(':') {
        Some((s, d)) => (s.into(), d.into()),
        None => (spec.into(), spec.into()),
    }
}

/// Writes the initrd to a temporary file beside `file` and renames it into place, so a
/// failed build leaves no partial initrd behind.
fn initrd(
    o: fde::initrd::Options,
    file: &Path,
    force: bool,
    out: &mut dyn Write,
) -> CliResult<i32> {
    if !force && file.exists() {
        return Err(CliError::Refused(format!(
            "{} exists; pass --force to replace it",
            file.display()
        )));
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".partial-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = write_initrd(&o, &tmp).and_then(|b| {
        std::fs::rename(&tmp, file)
            .map_err(CliError::file(file, "replace"))
            .map(|()| b)
    });
    let built = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    if !built.missing.is_empty() {
        eprintln!(
            "cryptpilot: note: not in this kernel (neither a module nor built in): {}",
            built.missing.join(", ")
        );
    }
    write_out(
        out,
        &format!(
            "{}: {} files, {} kernel modules{}\n",
            file.display(),
            built.entries,
            built.modules.len(),
            built
                .kernel_version
                .map(|v| format!(" of {v}"))
                .unwrap_or_default()
        ),
    )
}

fn write_initrd(o: &fde::initrd::Options, tmp: &Path) -> CliResult<fde::initrd::Built> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(CliError::file(tmp, "create"))?;
    let mut w = std::io::BufWriter::new(f);
    let built = fde::initrd::build(o, &mut w).map_err(CliError::Fde)?;
    let f = w
        .into_inner()
        .map_err(|e| CliError::file(tmp, "write")(e.into_error()))?;
    f.sync_all().map_err(CliError::file(tmp, "sync"))?;
    Ok(built)
}

/// `vgs`/`lvs`-like text, or JSON; sizes in 512-byte sectors.
fn show(vg: &lvm::VolumeGroup, json: bool) -> String {
    let sectors = |extents: u64| extents.saturating_mul(vg.extent_size);
    let total: u64 = vg.pvs.iter().map(|p| p.pe_count).sum();
    if json {
        let lvs: Vec<_> = vg
            .lvs
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "uuid": l.uuid, "size_sectors": sectors(l.extents()),
                    "segments": l.segments.len(), "dm_name": vg.dm_name(l),
                })
            })
            .collect();
        let v = serde_json::json!({
            "name": vg.name, "uuid": vg.uuid, "seqno": vg.seqno,
            "extent_size_sectors": vg.extent_size, "extents": total,
            "free_extents": vg.free_extents(), "lvs": lvs,
        });
        return format!("{v}\n");
    }
    let mut s = format!(
        "VG {} ({}), seqno {}, {} extents of {} sectors, {} free\n",
        vg.name,
        vg.uuid,
        vg.seqno,
        total,
        vg.extent_size,
        vg.free_extents()
    );
    for l in &vg.lvs {
        s.push_str(&format!(
            "  LV {:<16} {:>12} sectors  {} segment(s)  /dev/mapper/{}\n",
            l.name,
            sectors(l.extents()),
            l.segments.len(),
            vg.dm_name(l)
        ));
    }
    s
}

/// Boot steps as lines on standard error (the journal or console in an initrd); details
/// when `global.toml` sets `[boot] verbose`.
struct StderrLog {
    verbose: bool,
}

impl fde::boot::Log for StderrLog {
    fn step(&mut self, line: &str) {
        eprintln!("cryptpilot-fde: {line}");
    }

    fn detail(&mut self, line: &str) {
        if self.verbose {
            eprintln!("cryptpilot-fde:   {line}");
        }
    }
}
