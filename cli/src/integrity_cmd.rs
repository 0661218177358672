//! The `integrity` verbs: a standalone dm-integrity superblock, written and shown.

use std::io::{Read, Write};

use activate::{IntegrityMode, IntegrityOptions};
use integrity::dm_integrity::{self, IntegrityParams, Superblock, FLAG_FIXED_PADDING};

use crate::args::IntegrityCommand;
use crate::error::{CliError, CliResult};
use crate::luks::{confirm_format, open_device, write_out, Warn};
use crate::progress::Progress;

/// The superblock's flag names, each followed by a space (as integritysetup prints them).
fn flags_text(sb: &Superblock) -> String {
    let names = [
        (dm_integrity::FLAG_HAVE_JOURNAL_MAC, "have_journal_mac"),
        (dm_integrity::FLAG_RECALCULATING, "recalculating"),
        (dm_integrity::FLAG_DIRTY_BITMAP, "dirty_bitmap"),
        (FLAG_FIXED_PADDING, "fix_padding"),
        (dm_integrity::FLAG_FIXED_HMAC, "fix_hmac"),
    ];
    names
        .iter()
        .filter(|(bit, _)| sb.flags & bit != 0)
        .map(|(_, n)| format!("{n} "))
        .collect()
}

/// The superblock's fields as integritysetup reads them: its signature and version checked.
fn decoded(device: &std::path::Path, f: &mut std::fs::File) -> CliResult<Superblock> {
    // A device shorter than a superblock has none, as integritysetup finds.
    let mut b = Vec::with_capacity(512);
    f.take(512)
        .read_to_end(&mut b)
        .map_err(CliError::device(device, "read the superblock of"))?;
    Superblock::decode(&b).map_err(CliError::integrity(device))
}

/// integritysetup's dump of a superblock whose fields may be anything but its version.
fn report(device: &std::path::Path, sb: &Superblock, json: bool) -> String {
    // As integritysetup computes it (x86's shift, which takes the count modulo 32).
    let sector_size = 512u32.wrapping_shl(u32::from(sb.log2_sectors_per_block));
    if json {
        // Derived from the layout: only for a superblock the kernel would take.
        let journal_sectors = sb.check().ok().map(|()| sb.journal_area_sectors());
        return format!(
            "{}\n",
            serde_json::json!({
                "device": device.display().to_string(),
                "superblock_version": sb.version,
                "log2_interleave_sectors": sb.log2_interleave_sectors,
                "integrity_tag_size": sb.tag_size,
                "journal_sections": sb.journal_sections,
                "journal_sectors": journal_sectors,
                "provided_data_sectors": sb.provided_data_sectors,
                "sector_size": sector_size,
                "log2_blocks_per_bitmap": sb.log2_blocks_per_bitmap_bit,
                "flags": flags_text(sb).trim_end(),
            })
        );
    }
    // A recalculation's position, from version 2 on.
    let recalc = match sb.version >= 2 && sb.flags & dm_integrity::FLAG_RECALCULATING != 0 {
        true => format!("recalc_sector {}\n", sb.recalc_sector),
        false => String::new(),
    };
    format!(
        "Info for integrity device {}.\nsuperblock_version {}\nlog2_interleave_sectors {}\nintegrity_tag_size {}\njournal_sections {}\nprovided_data_sectors {}\nsector_size {}\n{recalc}log2_blocks_per_bitmap {}\nflags {}\n",
        device.display(),
        sb.version,
        // A signed byte on disk, as integritysetup prints it.
        sb.log2_interleave_sectors as i8,
        sb.tag_size,
        sb.journal_sections,
        sb.provided_data_sectors,
        sector_size,
        sb.log2_blocks_per_bitmap_bit,
        flags_text(sb)
    )
}

pub(crate) fn run(cmd: IntegrityCommand, out: &mut dyn Write) -> CliResult<i32> {
    match cmd {
        IntegrityCommand::Format {
            device,
            algorithm,
            tag_size,
            no_wipe,
            sector_size,
            journal_size,
            interleave_sectors,
            legacy_padding,
            common,
        } => {
            let digest_size: u16 = match algorithm.as_str() {
                "crc32c" | "crc32" => 4,
                "sha1" => 20,
                "sha256" => 32,
                "sha512" => 64,
                a if a.starts_with("hmac") => {
                    return Err(CliError::Usage(format!(
                    "--integrity {a}: keyed integrity (an --integrity-key-file) is not supported"
                )))
                }
                a => {
                    return Err(CliError::Usage(format!(
                        "--integrity {a}: not a tag algorithm (crc32c, crc32, sha1, sha256, sha512)"
                    )))
                }
            };
            // 0, as integritysetup takes it, is the algorithm's size.
            let tag_size = tag_size.filter(|&t| t > 0).unwrap_or(digest_size);
            let mut params = IntegrityParams::new(tag_size);
            params.block_size = sector_size;
            params.fix_padding = !legacy_padding;
            params.interleave_sectors = interleave_sectors;
            params.journal_sectors = journal_size
                .map(|b| u32::try_from(luks2::Bytes(b).sectors().0))
                .transpose()
                .map_err(|_| CliError::Usage("--journal-size is too large".into()))?;
            let mut f = open_device(&device, true, true)?;
            let size = luks2::BlockIo::size(&mut f).map_err(CliError::device(&device, "read"))?;
            // Check the layout before asking or writing anything.
            Superblock::new(&params, luks2::Bytes(size).sectors().0, 0)
                .map_err(CliError::integrity(&device))?;
            let sig = luks2::probe::signature(&mut f).map_err(CliError::device(&device, "read"))?;
            // integritysetup asks before any format, then names a signature it overwrites.
            confirm_format(&common, &device, sig, Warn::AfterAsking)?;
            // The wipe needs device-mapper: make sure of it before anything is written
            // (after the question, as integritysetup asks first).
            let mapper = match no_wipe {
                true => None,
                false => Some(activate::Mapper::open().map_err(|e| {
                    CliError::Usage(format!(
                        "initialising the tags needs device-mapper ({e}); pass --no-wipe to format without it"
                    ))
                })?),
            };
            dm_integrity::format(&mut f, 0, &params).map_err(CliError::integrity(&device))?;
            if let Some(mapper) = mapper {
                // The mapping claims the device: the exclusive handle goes first.
                drop(f);
                let mut f = open_device(&device, true, false)?;
                let mut progress = Progress::new("Wiping device to initialize integrity checksum");
                let o = IntegrityOptions {
                    mode: IntegrityMode::Direct,
                    algorithm: algorithm.clone(),
                    allow_discards: false,
                    fix_padding: !legacy_padding,
                    fix_hmac: true,
                };
                activate::wipe_standalone_integrity(&mapper, &device, &mut f, &o, &mut |d, t| {
                    progress.update(d, t)
                })?;
                progress.finish();
            }
            // integritysetup's line (none in batch mode).
            if common.batch {
                return Ok(0);
            }
            write_out(
                out,
                &format!("Formatted with tag size {tag_size}, internal integrity {algorithm}.\n"),
            )
        }
        IntegrityCommand::Open(a) => {
            let name = crate::mapping::dm_name(&a.name)?;
            let mut f = open_device(&a.device, true, false)?;
            // The superblock first, as integritysetup loads it before it activates (the
            // kernel checks the rest of it).
            decoded(&a.device, &mut f)?;
            let mapper = crate::mapping::mapper_for(&name, 1)?;
            let mode = if a.bitmap {
                IntegrityMode::Bitmap
            } else if a.recovery {
                IntegrityMode::Recovery
            } else if a.no_journal {
                IntegrityMode::Direct
            } else {
                IntegrityMode::Journal
            };
            let o = IntegrityOptions {
                mode,
                algorithm: a.algorithm,
                allow_discards: a.allow_discards,
                fix_padding: !a.legacy_padding,
                fix_hmac: !a.legacy_hmac,
            };
            mapper.open_integrity(&a.device, &mut f, &name, &o)?;
            Ok(0)
        }
        IntegrityCommand::Close { name, deferral } => crate::mapping::close(&name, &deferral, out),
        IntegrityCommand::Status { name } => crate::mapping::integrity_status(&name, out),
        IntegrityCommand::Dump { device, json } => {
            let mut f = open_device(&device, false, false)?;
            let sb = decoded(&device, &mut f)?;
            write_out(out, &report(&device, &sb, json))
        }
    }
}
