//! `cryptpilot fde`: the full-disk layout's volume group, through the `fde` library.

use std::io::Write;

use crate::args::{FdeCommand, FdeStage, VgAction};
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
            fde::boot::after_sysroot(&config, &sysroot, &mut StderrLog).map_err(CliError::Fde)?;
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
            let root = fde::boot::before_sysroot(&stage, &mut StderrLog).map_err(CliError::Fde)?;
            write_out(out, &format!("{}\n", root.display()))
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

/// Boot steps as lines on standard error (the journal or console in an initrd).
struct StderrLog;

impl fde::boot::Log for StderrLog {
    fn step(&mut self, line: &str) {
        eprintln!("cryptpilot-fde: {line}");
    }
}
