//! Command-line arguments, with cryptsetup's flag names for the `luks` verbs.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use luks2::{HashAlg, PbkdfKind, SegmentIntegrity};

/// cryptpilot: LUKS2 disk encryption for confidential VMs, without libcryptsetup.
#[derive(Debug, Parser)]
#[command(
    name = "cryptpilot",
    version,
    propagate_version = true,
    args_override_self = true,
    after_help = "Run as cryptsetup, veritysetup or integritysetup (a link or copy of this binary by that name, or `cryptpilot cryptsetup ...`), it takes those tools' command lines: `cryptsetup luksFormat DEVICE`, `veritysetup format DATA HASH`."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Low-level LUKS2 operations, named and flagged as in cryptsetup.
    #[command(subcommand)]
    Luks(LuksCommand),
    /// dm-verity: read-only devices checked block by block against a root hash (for root
    /// file systems), named and flagged as in veritysetup.
    #[command(subcommand)]
    Verity(VerityCommand),
    /// dm-integrity superblocks on their own (integritysetup's format and dump); LUKS2
    /// volumes get theirs from `luks format --integrity`.
    #[command(subcommand)]
    Integrity(IntegrityCommand),
    /// Plain dm-crypt: no header, the key hashed from the passphrase (cryptsetup's `open
    /// --type plain`), for swap and scratch disks whose data need not outlive the mapping.
    #[command(subcommand)]
    Plain(PlainCommand),
    /// Full-disk protection: the `cryptpilot` volume group on the disk, brought up without
    /// lvm2.
    #[command(subcommand)]
    Fde(FdeCommand),
    /// Data volumes described by configuration files (DIR/volumes/*.toml), opened with keys
    /// from their key providers; the same verbs as cryptpilot-crypt (which runs this).
    Crypt(CryptArgs),
    /// Measure key derivation and sector encryption in memory, like `cryptsetup benchmark`:
    /// PBKDF2 iterations per second, Argon2 costs calibrated to --iter-time, and AES
    /// MiB/s on one thread and on all.
    Benchmark(BenchmarkArgs),
    /// Print the completion script for SHELL (of cryptpilot and its verbs) to standard output,
    /// e.g. `cryptpilot completions bash > /usr/share/bash-completion/completions/cryptpilot`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write the man pages into DIR: one per command group and verb (section 1), and the
    /// drop-in names' (cryptsetup, veritysetup, integritysetup; section 8). Prints their paths.
    Manpages {
        /// The directory (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CryptArgs {
    /// Configuration directory: volumes are read from DIR/volumes/*.toml.
    #[arg(
        short = 'c',
        long = "config-dir",
        value_name = "DIR",
        default_value = "/etc/cryptpilot",
        global = true
    )]
    pub(crate) config_dir: PathBuf,
    #[command(subcommand)]
    pub(crate) command: CryptCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CryptCommand {
    /// One row per volume: device, key provider, initialized, open, integrity, auto-open.
    Show {
        /// Only these volumes (default: all).
        volumes: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Format each volume as LUKS2 (with integrity when configured), create its file system,
    /// and mark it initialized. Refuses a device that holds data unless confirmed.
    Init {
        /// Volume names.
        #[arg(required = true)]
        volumes: Vec<String>,
        /// Re-initialize a volume that is already initialized (erases it).
        #[arg(long = "force-reinit")]
        force_reinit: bool,
        /// Answer yes to the confirmation (the device's data will be lost).
        #[arg(short = 'y', long = "yes")]
        yes: bool,
    },
    /// Unlock each volume with its key provider and map it as /dev/mapper/NAME (an otp
    /// volume is formatted anew, with its file system).
    Open {
        /// Volume names.
        #[arg(required = true)]
        volumes: Vec<String>,
        /// Check the file system before handing the volume out; a damaged one is closed again.
        #[arg(long = "check-fs")]
        check_fs: bool,
    },
    /// Remove each volume's mapping.
    Close {
        /// Volume names.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Configuration commands.
    #[command(subcommand)]
    Config(CryptConfigCommand),
    /// What the systemd unit runs at boot.
    BootService {
        /// The boot stage.
        #[arg(long, value_enum)]
        stage: BootStage,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CryptConfigCommand {
    /// Parse and check every volume file; print every error, one per line.
    Check {
        /// Accepted for compatibility: every file is always checked.
        #[arg(long = "keep-checking")]
        keep_checking: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum BootStage {
    /// Open every volume with auto_open = true; report each failure, go on with the rest.
    SystemVolumesAutoOpen,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntegrityCommand {
    /// Write a dm-integrity superblock and empty journal at the start of DEVICE, as the
    /// kernel does on first use, then initialise every tag through a temporary mapping (so
    /// that every sector reads back; needs device-mapper) unless --no-wipe.
    Format {
        /// Device or image.
        device: PathBuf,
        /// The tags' algorithm, the one `open` must be given too: crc32c (default), crc32,
        /// sha1 or sha256 (keyed algorithms need a key file, not supported).
        #[arg(
            short = 'I',
            long = "integrity",
            value_name = "ALG",
            default_value = "crc32c"
        )]
        algorithm: String,
        /// Tag bytes per sector (default: the algorithm's digest size, 4 for crc32c).
        #[arg(short = 't', long = "tag-size", value_name = "BYTES")]
        tag_size: Option<u16>,
        /// Leave the tags uninitialised: sectors not written since fail to read.
        #[arg(long = "no-wipe")]
        no_wipe: bool,
        /// Block size: 512 (default), 1024, 2048 or 4096.
        #[arg(
            short = 's',
            long = "sector-size",
            value_name = "BYTES",
            default_value_t = 512
        )]
        sector_size: u32,
        /// Journal size in bytes (default: 1/128 of the device, at most 64 MiB).
        #[arg(short = 'j', long = "journal-size", value_name = "BYTES", value_parser = parse_size)]
        journal_size: Option<u64>,
        /// Data sectors between tag runs (default 32768).
        #[arg(long = "interleave-sectors", value_name = "SECTORS")]
        interleave_sectors: Option<u32>,
        /// The 128 KiB tag padding of kernels before 5.4.
        #[arg(long = "integrity-legacy-padding")]
        legacy_padding: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Print the dm-integrity superblock at the start of DEVICE.
    Dump {
        /// Device or image.
        device: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Map the formatted DEVICE as /dev/mapper/NAME: every sector read is checked against
    /// its tag, a mismatch fails with an I/O error (integritysetup open).
    Open(IntegrityOpenArgs),
    /// Remove the mapping NAME.
    Close {
        /// Mapping name (or a path to its device node).
        name: String,
        #[command(flatten)]
        deferral: Deferral,
    },
    /// Show the mapping NAME as integritysetup status does, with the count of tag mismatches
    /// so far (exit 4 when not mapped).
    Status {
        /// Mapping name.
        name: String,
    },
}

/// `integrity open`.
#[derive(Debug, Args)]
pub(crate) struct IntegrityOpenArgs {
    /// Device or image formatted by `integrity format` (or integritysetup).
    pub(crate) device: PathBuf,
    /// Mapping name.
    pub(crate) name: String,
    /// The tags' algorithm: the one the device was written with (crc32c, integritysetup's
    /// default; crc32, sha1, sha256). The superblock does not record it.
    #[arg(
        short = 'I',
        long = "integrity",
        value_name = "ALG",
        default_value = "crc32c"
    )]
    pub(crate) algorithm: String,
    /// Write data and tags directly, without the journal (faster; a crash can leave sectors
    /// whose tags do not match).
    #[arg(short = 'D', long = "integrity-no-journal")]
    pub(crate) no_journal: bool,
    /// Track dirty regions in a bitmap instead of journalling (a crash leaves them to be
    /// recalculated rather than checked).
    #[arg(short = 'B', long = "integrity-bitmap-mode", conflicts_with_all = ["no_journal", "recovery"])]
    pub(crate) bitmap: bool,
    /// Without checking tags: to copy data off a damaged device.
    #[arg(
        short = 'R',
        long = "integrity-recovery-mode",
        conflicts_with = "no_journal"
    )]
    pub(crate) recovery: bool,
    /// Pass discards (TRIM) through.
    #[arg(long = "allow-discards")]
    pub(crate) allow_discards: bool,
    /// Without the tag padding fix of kernels from 5.4 (for devices formatted before it).
    #[arg(long = "integrity-legacy-padding")]
    pub(crate) legacy_padding: bool,
    /// Without the HMAC fix of kernels from 5.11.
    #[arg(long = "integrity-legacy-hmac")]
    pub(crate) legacy_hmac: bool,
}

/// Where the (existing) passphrase comes from.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct KeyOpts {
    /// Read the passphrase from this file (`-` for standard input); the whole file, newlines
    /// included, is the passphrase. Without it the passphrase is asked on the terminal, or
    /// read up to the first newline from standard input when that is not a terminal.
    #[arg(short = 'd', long = "key-file", value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Read at most this many bytes from the key file.
    #[arg(short = 'l', long = "keyfile-size", value_name = "BYTES")]
    pub(crate) keyfile_size: Option<u64>,
    /// Skip this many bytes at the start of the key file.
    #[arg(long = "keyfile-offset", value_name = "BYTES", default_value_t = 0)]
    pub(crate) keyfile_offset: u64,
    /// Use (or, when adding, create) this keyslot only.
    #[arg(short = 'S', long = "key-slot", value_name = "NUM")]
    pub(crate) key_slot: Option<u32>,
    /// On a terminal, how many times a passphrase may be typed before a wrong one ends the
    /// command (opening and resuming; at least once: 0 is one try, as cryptsetup).
    #[arg(short = 'T', long, value_name = "N", default_value_t = 3)]
    pub(crate) tries: u32,
    /// On a terminal, how many seconds to wait for each passphrase before giving up (0: no
    /// limit).
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) timeout: u32,
    /// Do not try a keyslot whose key derivation would take longer than this many seconds on
    /// this machine, estimated from the header's costs before any work is done (a hostile
    /// header can ask for days). 0 lifts the limit.
    #[arg(long = "kdf-time-limit", value_name = "SECONDS", default_value_t = 120)]
    pub(crate) kdf_time_limit: u64,
}

impl KeyOpts {
    /// `--timeout`, if one was given.
    pub(crate) fn timeout(&self) -> Option<std::time::Duration> {
        seconds(self.timeout)
    }

    /// The caps for KDF costs read from a header.
    pub(crate) fn kdf_limits(&self) -> luks2::KdfLimits {
        let max_duration = match self.kdf_time_limit {
            0 => std::time::Duration::MAX,
            s => std::time::Duration::from_secs(s),
        };
        luks2::KdfLimits {
            max_duration,
            ..luks2::KdfLimits::default()
        }
    }
}

/// Cost of the key derivation for new keyslots.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PbkdfOpts {
    /// Key derivation: argon2id (default), argon2i or pbkdf2.
    #[arg(long, value_name = "KDF", value_parser = parse_pbkdf)]
    pub(crate) pbkdf: Option<PbkdfKind>,
    /// Argon2 memory cost in KiB (the maximum when calibrating; default 1048576).
    #[arg(long = "pbkdf-memory", value_name = "KIB")]
    pub(crate) pbkdf_memory: Option<u32>,
    /// Argon2 threads (default: online CPUs, at most 4).
    #[arg(long = "pbkdf-parallel", value_name = "N")]
    pub(crate) pbkdf_parallel: Option<u32>,
    /// Fixed PBKDF2 iterations or Argon2 time cost; skips calibration.
    #[arg(long = "pbkdf-force-iterations", value_name = "N")]
    pub(crate) pbkdf_force_iterations: Option<u32>,
    /// Calibrate the key derivation to take this long (default 2000 ms).
    #[arg(short = 'i', long = "iter-time", value_name = "MS")]
    pub(crate) iter_time: Option<u64>,
    /// Hash for PBKDF2 (default sha256).
    #[arg(long = "hash", value_name = "HASH", value_parser = parse_hash)]
    pub(crate) hash: Option<HashAlg>,
}

/// dm-crypt performance and discard options for `open`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PerfOpts {
    /// Pass discards (TRIM) through (reveals which blocks are unused).
    #[arg(long = "allow-discards")]
    pub(crate) allow_discards: bool,
    /// Encrypt on the CPU that submitted the I/O.
    #[arg(long = "perf-same_cpu_crypt")]
    pub(crate) same_cpu_crypt: bool,
    /// Do not offload writes to a separate thread after encryption.
    #[arg(long = "perf-submit_from_crypt_cpus")]
    pub(crate) submit_from_crypt_cpus: bool,
    /// Decrypt reads synchronously, without the read workqueue.
    #[arg(long = "perf-no_read_workqueue")]
    pub(crate) no_read_workqueue: bool,
    /// Encrypt writes synchronously, without the write workqueue.
    #[arg(long = "perf-no_write_workqueue")]
    pub(crate) no_write_workqueue: bool,
}

/// Where the LUKS2 header is: cryptsetup's `--header`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct HeaderOpt {
    /// The header is in this file (or device), detached from the data device: the verb reads
    /// and writes the header there, and the data device holds only data (from sector 0
    /// unless --offset said otherwise at format time). `format` creates the file.
    #[arg(long = "header", value_name = "FILE")]
    pub(crate) header: Option<PathBuf>,
}

impl HeaderOpt {
    /// Where the header of `device` is read and written.
    pub(crate) fn of<'a>(&'a self, device: &'a Path) -> &'a Path {
        self.header.as_deref().unwrap_or(device)
    }
}

/// Options every `luks` verb takes.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Common {
    /// Do not ask for confirmation (cryptsetup's batch mode).
    #[arg(short = 'q', long = "batch-mode", global = true)]
    pub(crate) batch: bool,
}

/// How a new LUKS2 volume is laid out (format and encrypt-image).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct NewVolumeOpts {
    /// Data cipher (default aes-xts-plain64).
    #[arg(short = 'c', long, value_name = "CIPHER")]
    pub(crate) cipher: Option<String>,
    /// Volume key size in bits (default 512 for XTS).
    #[arg(short = 's', long = "key-size", value_name = "BITS")]
    pub(crate) key_size: Option<usize>,
    /// Encryption sector size (default 4096 where the device allows).
    #[arg(long = "sector-size", value_name = "BYTES")]
    pub(crate) sector_size: Option<u32>,
    /// Size of each header copy: 16k, 32k, 64k, ... 4m bytes (default 16384).
    #[arg(long = "luks2-metadata-size", value_name = "BYTES", value_parser = parse_size)]
    pub(crate) metadata_size: Option<u64>,
    /// Size of the keyslots area (default: up to the data offset).
    #[arg(long = "luks2-keyslots-size", value_name = "BYTES", value_parser = parse_size)]
    pub(crate) keyslots_size: Option<u64>,
    /// Data offset in 512-byte sectors (default 32768, i.e. 16 MiB).
    #[arg(long, value_name = "SECTORS")]
    pub(crate) offset: Option<u64>,
    /// Label.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Subsystem label.
    #[arg(long)]
    pub(crate) subsystem: Option<String>,
    /// Use this UUID instead of a random one.
    #[arg(long)]
    pub(crate) uuid: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FdeCommand {
    /// A boot stage of the full-disk protection, run from the initrd (also as
    /// `cryptpilot-fde-guest boot-service`).
    BootService {
        /// initrd-fde-before-sysroot: bring up the volume group, the verity-checked rootfs and
        /// the encrypted delta, leaving /dev/mapper/rootfs to mount. initrd-fde-after-sysroot:
        /// check that the sysroot is mounted from it.
        #[arg(long, value_name = "STAGE")]
        stage: FdeStage,
        /// The configuration directory (fde.toml, metadata.toml, global.toml).
        #[arg(
            short = 'c',
            long = "config-dir",
            value_name = "DIR",
            default_value = "/etc/cryptpilot"
        )]
        config_dir: PathBuf,
        /// The physical volume (default: the device holding volume group cryptpilot).
        #[arg(long, value_name = "DEVICE")]
        pv: Option<PathBuf>,
        /// Where the root file system is mounted (after-sysroot).
        #[arg(long, value_name = "DIR", default_value = "/sysroot")]
        sysroot: PathBuf,
    },
    /// Write a minimal initrd (gzip-compressed newc cpio) whose /init is this static binary:
    /// it loads the listed kernel modules, runs both boot stages, mounts /dev/mapper/rootfs
    /// and switches to it. No shell, udev or systemd is needed inside. Kernel command line:
    /// init=PATH, cryptpilot.pv=DEVICE, rootdelay=SECONDS, rootfstype=TYPE, ro.
    Initrd {
        /// The configuration directory (fde.toml, metadata.toml, optional global.toml); it is
        /// checked here and carried as /etc/cryptpilot.
        #[arg(short = 'c', long = "config-dir", value_name = "DIR")]
        config_dir: PathBuf,
        /// The kernel's module tree (lib/modules/VERSION, with modules.dep); the modules the
        /// boot needs are carried with their dependencies.
        #[arg(long = "kernel-modules", value_name = "DIR")]
        kernel_modules: Option<PathBuf>,
        /// Another module to carry (repeatable), besides the default set.
        #[arg(long = "module", value_name = "NAME")]
        module: Vec<String>,
        /// An extra file, SRC or SRC:DST (DST absolute; default the same path), such as an
        /// exec key provider's program. Repeatable.
        #[arg(long, value_name = "SRC[:DST]")]
        include: Vec<String>,
        /// The binary to run as /init (default: this one; it must be statically linked).
        #[arg(long, value_name = "FILE")]
        init: Option<PathBuf>,
        /// Where to write the initrd.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the reference values of a protected image's boot chain (the existing tool's
    /// JSON): GRUB boot: kernel_cmdline and the digests of the command line, kernel, initrd
    /// (whole file) and of GRUB and shim (PE Authenticode); UKI boot: the UKI's Authenticode
    /// digest. Read from the image file without mounting (raw; a .qcow2/.vhd through a
    /// temporary raw copy by qemu-img), or from this system's /boot and /boot/efi.
    ShowReferenceValue {
        /// The disk image (or block device) to read (default: the running system).
        #[arg(long, value_name = "IMG")]
        disk: Option<PathBuf>,
        /// A hash algorithm (repeatable): sha1, sha256, sha384, sm3.
        #[arg(long = "hash-algo", value_name = "ALG", default_value = "sha384")]
        hash_algo: Vec<RefHashAlgo>,
        /// json: the values as a JSON object. rvps: wrapped as Trustee's reference value
        /// provider registers them ({"version":"0.1.0","type":"sample","payload":BASE64}).
        #[arg(long, value_name = "FORMAT", default_value = "json")]
        format: RefFormat,
    },
    /// Convert a GPT disk image (raw, .qcow2 or .vhd) into the protected layout, without root:
    /// the root file system shrunk and read-only in LV rootfs (plain or LUKS2) with its
    /// dm-verity tree in LV rootfs_hash, a boot partition with the kernel, an initrd
    /// carrying the configuration and root hash, and GRUB pointed at it. SRC is never
    /// changed; a failed run leaves no DST. Also run as `cryptpilot-convert`.
    Convert(FdeConvertArgs),
    /// Check the full-disk configuration, or print the one an image's initrd carries.
    #[command(subcommand)]
    Config(FdeConfigCommand),
    /// The LVM2 volume group on a physical volume, read and mapped natively (as `vgs`/`lvs`,
    /// `vgchange -ay` and `vgchange -an` for a group on one PV).
    Vg {
        /// show, activate or deactivate.
        action: VgAction,
        /// The physical volume (the disk's last partition).
        device: PathBuf,
        /// With show: print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The full-disk boot stages.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FdeStage {
    /// Before the root file system is mounted.
    #[value(name = "initrd-fde-before-sysroot")]
    BeforeSysroot,
    /// After it is mounted on the sysroot.
    #[value(name = "initrd-fde-after-sysroot")]
    AfterSysroot,
}

/// `fde convert` (and `cryptpilot-convert`): the existing tool's flags.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("rootfs_key").required(true).args(["rootfs_no_encryption", "rootfs_passphrase_file", "rootfs_passphrase"])))]
pub(crate) struct FdeConvertArgs {
    /// The source disk image (raw, or .qcow2/.vhd through qemu-img).
    #[arg(long = "in", value_name = "SRC")]
    pub(crate) input: PathBuf,
    /// The output image (raw, or .qcow2/.vhd by its name).
    #[arg(long = "out", value_name = "DST")]
    pub(crate) output: PathBuf,
    /// The configuration directory with fde.toml (and optionally global.toml).
    #[arg(short = 'c', long = "config-dir", value_name = "DIR")]
    pub(crate) config_dir: PathBuf,
    /// Leave the rootfs unencrypted (dm-verity only); fde.toml must have no [rootfs.encrypt].
    #[arg(long = "rootfs-no-encryption")]
    pub(crate) rootfs_no_encryption: bool,
    /// Encrypt the rootfs with the passphrase in FILE (all of it, as cryptsetup --key-file);
    /// it must be what fde.toml's [rootfs.encrypt] provider gives at boot.
    #[arg(long = "rootfs-passphrase-file", value_name = "FILE")]
    pub(crate) rootfs_passphrase_file: Option<PathBuf>,
    /// As --rootfs-passphrase-file, on the command line (other users can see it: a warning).
    #[arg(long = "rootfs-passphrase", value_name = "PASSPHRASE")]
    pub(crate) rootfs_passphrase: Option<String>,
    /// The rootfs keyslot's Argon2id memory in KiB (default: calibrated, at most 262144, so
    /// that a small VM can open it).
    #[arg(long = "pbkdf-memory", value_name = "KIB")]
    pub(crate) pbkdf_memory: Option<u32>,
    /// The rootfs keyslot's Argon2id threads (default: online CPUs, at most 4).
    #[arg(long = "pbkdf-parallel", value_name = "N")]
    pub(crate) pbkdf_parallel: Option<u32>,
    /// The rootfs keyslot's Argon2id time cost, skipping calibration: with --pbkdf-memory, the
    /// unlock costs the same on every machine (the calibration measures the converting one).
    #[arg(long = "pbkdf-force-iterations", value_name = "N")]
    pub(crate) pbkdf_force_iterations: Option<u32>,
    /// Calibrate the rootfs keyslot to take this long here (default 2000 ms).
    #[arg(short = 'i', long = "iter-time", value_name = "MS")]
    pub(crate) iter_time: Option<u64>,
    /// The root partition's number (default: the largest ext4 partition with /etc and /usr).
    #[arg(long = "rootfs-part-num", value_name = "N")]
    pub(crate) rootfs_part_num: Option<u32>,
    /// The boot partition's size (K, M, G suffixes).
    #[arg(short = 'b', long = "boot-part-size", alias = "boot_part_size", value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub(crate) boot_part_size: u64,
    /// Boot through a unified kernel image at EFI/BOOT/BOOTX64.EFI (systemd's EFI stub with
    /// the kernel, our initrd and the command line) instead of GRUB: no boot partition; the
    /// ESP's other boot loaders are removed.
    #[arg(long)]
    pub(crate) uki: bool,
    /// Appended to the UKI's kernel command line.
    #[arg(
        long = "uki-append-cmdline",
        value_name = "ARGS",
        requires = "uki",
        default_value = "console=tty0 console=ttyS0,115200n8"
    )]
    pub(crate) uki_append_cmdline: String,
    /// systemd's EFI stub for --uki (default: the image's
    /// /usr/lib/systemd/boot/efi/linuxx64.efi.stub, else this machine's).
    #[arg(long = "uki-stub", value_name = "FILE", requires = "uki")]
    pub(crate) uki_stub: Option<PathBuf>,
    /// Accepted for compatibility: the output is a new sparse image, so the space the root
    /// file system freed never holds old data.
    #[arg(long = "wipe-freed-space")]
    pub(crate) wipe_freed_space: bool,
    /// The static binary to use as the initrd's /init (default: this one).
    #[arg(long, value_name = "FILE")]
    pub(crate) init: Option<PathBuf>,
    /// An extra file for the initrd, SRC or SRC:DST (as `fde initrd --include`), such as an
    /// exec key provider's program. Repeatable.
    #[arg(long = "initrd-include", value_name = "SRC[:DST]")]
    pub(crate) initrd_include: Vec<String>,
    /// Replace DST if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `fde config` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum FdeConfigCommand {
    /// Load fde.toml, global.toml and metadata.toml as the boot does, then fetch the key of
    /// each encrypted volume (rootfs when encrypted, delta) from its key provider: one line
    /// per volume. Exit 1 when anything fails.
    Check {
        /// The configuration directory.
        #[arg(
            short = 'c',
            long = "config-dir",
            value_name = "DIR",
            default_value = "/etc/cryptpilot"
        )]
        config_dir: PathBuf,
        /// Check the providers' settings offline only; fetch no key.
        #[arg(long = "skip-check-passphrase")]
        skip_check_passphrase: bool,
        /// Go on to the next volume after a failure (the default stops at the first).
        #[arg(long = "keep-checking")]
        keep_checking: bool,
    },
    /// Print the configuration bundle (fde.toml and global.toml) inside the initrd that an
    /// image boots (GRUB's default entry, or the UKI's .initrd section), as cloud-init user
    /// data, with its SHA-384 (over the bundle's compact TOML as this tool writes it: the
    /// existing tool serializes its own structs, so the two digests may differ).
    Dump {
        /// The disk image (default: this system's boot files).
        #[arg(long, value_name = "IMG")]
        disk: Option<PathBuf>,
    },
}

/// The hash algorithms of reference values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RefHashAlgo {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SM3.
    Sm3,
}

/// How reference values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RefFormat {
    /// The JSON object.
    Json,
    /// A provenance document for Trustee's RVPS (`rvps-tool register --path`).
    Rvps,
}

/// What `fde vg` does.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum VgAction {
    /// Print the group and its logical volumes.
    Show,
    /// Map every logical volume (`/dev/mapper/<vg>-<lv>`, `/dev/<vg>/<lv>`).
    Activate,
    /// Unmap them.
    Deactivate,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LuksCommand {
    /// Format DEVICE as LUKS2 with one keyslot. Refuses a device that holds a LUKS header or
    /// a file-system signature unless confirmed (or --batch-mode).
    Format(FormatArgs),
    /// Unlock DEVICE and map it as /dev/mapper/NAME (an image file gets a loop device that
    /// goes away on close); with --test-passphrase, only check the passphrase.
    Open(OpenArgs),
    /// Give the open LUKS or plain mapping NAME new flags (--allow-discards, --perf-*,
    /// --integrity-no-journal) without closing it: the passphrase unlocks its header again (or,
    /// plain, makes its key again; it must be the live one) and the new tables are swapped in.
    /// Flags not given are dropped, unless stored with --persistent. The mapping stays
    /// read-only or read-write as it is.
    Refresh(RefreshArgs),
    /// Remove the mapping NAME (retries briefly while it is busy; --deferred: once no one
    /// has it open).
    Close(LuksCloseArgs),
    /// Give the open mapping NAME a new size: --size sectors, or all of its device (after the
    /// data offset) after the device grew. A mapping whose key is in the kernel keyring (the
    /// default) asks for a passphrase, as cryptsetup does; one opened with --disable-keyring
    /// needs none.
    Resize(ResizeArgs),
    /// Show whether NAME is mapped and how (exit 4 when it is not).
    Status(StatusArgs),
    /// Print the header (cryptsetup's luksDump layout).
    Dump(DumpArgs),
    /// Add a keyslot; the existing passphrase (or --volume-key-file) proves access.
    AddKey(AddKeyArgs),
    /// Remove the keyslot that the given passphrase opens.
    RemoveKey(RemoveKeyArgs),
    /// Change the passphrase of a keyslot (kept under the same number).
    ChangeKey(ChangeKeyArgs),
    /// Give the keyslot the passphrase opens new key derivation costs (--pbkdf,
    /// --iter-time, ...), the passphrase unchanged (LUKS2; cryptsetup luksConvertKey).
    ConvertKey(ConvertKeyArgs),
    /// Wipe keyslot SLOT. Asks for a remaining passphrase unless --batch-mode.
    KillSlot(KillSlotArgs),
    /// Suspend the mapping NAME and wipe its key from the kernel (cryptsetup's
    /// luksSuspend): I/O waits until `resume` gives the key back (for suspend to RAM).
    Suspend(CloseArgs),
    /// Give the suspended mapping NAME its key back from a passphrase, and resume its I/O.
    Resume(ResumeArgs),
    /// Wipe every keyslot (cryptsetup's erase/luksErase): no passphrase opens the volume
    /// again; the header, its digests and tokens stay. Asks first unless --batch-mode.
    Erase(EraseArgs),
    /// Save the header and keyslots area to a file.
    HeaderBackup(HeaderBackupArgs),
    /// Write a header backup back to the device.
    HeaderRestore(HeaderRestoreArgs),
    /// Rewrite a damaged or outdated header copy from the good one.
    Repair(RepairArgs),
    /// Print the UUID, or set it with --uuid.
    Uuid(UuidArgs),
    /// Exit 0 if DEVICE holds a valid LUKS2 header, 1 otherwise.
    IsLuks(IsLuksArgs),
    /// Set the label and/or subsystem.
    Config(ConfigArgs),
    /// Encrypt a plain image into a new LUKS2 image (header included), in userspace: no root
    /// and no device-mapper needed. The result opens with cryptsetup and the kernel.
    EncryptImage(EncryptImageArgs),
    /// Decrypt a LUKS2 image's data into a plain image; all-zero sectors become holes.
    DecryptImage(DecryptImageArgs),
    /// Print decrypted bytes of the data segment (whole sectors) to standard output or a file.
    Read(ReadArgs),
    /// Encrypt bytes from standard input or a file into the data segment at an offset
    /// (whole sectors).
    Write(WriteArgs),
    /// Token JSON: import (from standard input), export (to standard output), remove.
    Token(TokenArgs),
    /// Convert a LUKS1 volume to LUKS2 in place (`--type luks2`) or back (`--type luks1`), as
    /// cryptsetup convert: the keyslots move 28 KiB up for the LUKS2 header copies (or down
    /// again), keys and data stay. LUKS1 takes PBKDF2 keyslots 0-7, 512-byte sectors and no
    /// tokens. Back up the header first (an interruption midway can leave neither format
    /// openable).
    Convert(ConvertArgs),
}

impl LuksCommand {
    /// The passphrase options of a verb that reads a passphrase.
    pub(crate) fn key_opts(&self) -> Option<&KeyOpts> {
        match self {
            LuksCommand::Format(a) => Some(&a.key),
            LuksCommand::Open(a) => Some(&a.key),
            LuksCommand::Refresh(a) => Some(&a.key),
            LuksCommand::Resize(a) => Some(&a.key),
            LuksCommand::Dump(a) => Some(&a.key),
            LuksCommand::AddKey(a) => Some(&a.key),
            LuksCommand::RemoveKey(a) => Some(&a.key),
            LuksCommand::ChangeKey(a) => Some(&a.key),
            LuksCommand::ConvertKey(a) => Some(&a.key),
            LuksCommand::KillSlot(a) => Some(&a.key),
            LuksCommand::Resume(a) => Some(&a.key),
            LuksCommand::EncryptImage(a) => Some(&a.key),
            LuksCommand::DecryptImage(a) => Some(&a.key),
            LuksCommand::Read(a) => Some(&a.key),
            LuksCommand::Write(a) => Some(&a.key),
            LuksCommand::Close(_)
            | LuksCommand::Status(_)
            | LuksCommand::Suspend(_)
            | LuksCommand::Erase(_)
            | LuksCommand::HeaderBackup(_)
            | LuksCommand::HeaderRestore(_)
            | LuksCommand::Repair(_)
            | LuksCommand::Uuid(_)
            | LuksCommand::IsLuks(_)
            | LuksCommand::Config(_)
            | LuksCommand::Token(_)
            | LuksCommand::Convert(_) => None,
        }
    }
}

/// `n` seconds; 0 is none (cryptsetup's `--timeout 0`: no limit).
pub(crate) fn seconds(n: u32) -> Option<std::time::Duration> {
    (n > 0).then(|| std::time::Duration::from_secs(n.into()))
}

/// `luks convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// LUKS device.
    pub(crate) device: PathBuf,
    /// The format to convert to: luks2 or luks1.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) kind: String,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// `luks format`.
#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Block device or image file.
    pub(crate) device: PathBuf,
    /// The new passphrase's key file (same as --key-file).
    #[arg(value_name = "KEY_FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) pbkdf: PbkdfOpts,
    #[command(flatten)]
    pub(crate) new: NewVolumeOpts,
    /// Align the data to a multiple of this many 512-byte sectors, past the header's
    /// areas (cryptsetup's --align-payload; 0 is the default alignment).
    #[arg(long = "align-payload", value_name = "SECTORS")]
    pub(crate) align_payload: Option<u64>,
    /// Use the volume key in this file instead of a random one.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    /// luks2 (the default), or luks1 for boot loaders and systems that read only LUKS1
    /// (PBKDF2 keyslots, 512-byte sectors, no labels or integrity).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["luks", "luks1", "luks2"])]
    pub(crate) luks_type: Option<String>,
    /// Authenticated encryption over dm-integrity: hmac-sha256, hmac-sha512, hmac-sha1
    /// (with an XTS cipher; the MAC key is added to --key-size) or aead (with
    /// --cipher aes-gcm-random). Opening then detects any change to the data.
    #[arg(short = 'I', long, value_name = "ALG", value_parser = parse_integrity)]
    pub(crate) integrity: Option<SegmentIntegrity>,
    /// With --integrity: skip writing every sector once. Sectors never written then fail
    /// to read (with an I/O error) until they are written.
    #[arg(long = "integrity-no-wipe", requires = "integrity")]
    pub(crate) integrity_no_wipe: bool,
    /// With --integrity: the tag layout of kernels before 5.4 (128 KiB padding).
    #[arg(long = "integrity-legacy-padding", requires = "integrity")]
    pub(crate) integrity_legacy_padding: bool,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks open`.
#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// LUKS2 device or image file.
    pub(crate) device: PathBuf,
    /// Mapping name (not needed with --test-passphrase).
    pub(crate) name: Option<String>,
    /// Only check that the passphrase opens a keyslot.
    #[arg(long = "test-passphrase")]
    pub(crate) test_passphrase: bool,
    /// Only a header of this version opens (`luks` takes either, as without the option).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["luks", "luks1", "luks2"])]
    pub(crate) luks_type: Option<String>,
    /// Map read-only.
    #[arg(short = 'r', long)]
    pub(crate) readonly: bool,
    #[command(flatten)]
    pub(crate) map: LuksMapFlags,
    /// Open with the volume key in this file (its first key-size bytes) instead of a
    /// passphrase, as after `luks dump --dump-volume-key --volume-key-file`.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tokens: TokenOpts,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// How `open` and `refresh` map a LUKS volume: the flags cryptsetup can store in its header.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct LuksMapFlags {
    /// For a volume with integrity protection: write data and tags directly, without the
    /// journal (faster; a crash can leave sectors whose tags do not match).
    #[arg(long = "integrity-no-journal")]
    pub(crate) integrity_no_journal: bool,
    /// Put the volume key into the dm-crypt table itself instead of the kernel keyring (where
    /// it goes by default, as with cryptsetup, so that reading the table back never shows
    /// it). Only for kernels whose keyring cannot be used.
    #[arg(long = "disable-keyring")]
    pub(crate) disable_keyring: bool,
    /// Store these flags (--allow-discards, --perf-*, --integrity-no-journal) in the LUKS2
    /// header, replacing those stored; every later open applies them. Without it the stored
    /// flags are applied with the ones given.
    #[arg(long)]
    pub(crate) persistent: bool,
    #[command(flatten)]
    pub(crate) perf: PerfOpts,
}

/// `luks refresh`.
#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    /// The open mapping (a name, or a path to its device node).
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) map: LuksMapFlags,
    /// A plain mapping: how the passphrase becomes the key, as given to `open` (default
    /// ripemd160). Its cipher, key size, offsets and size are the mapping's.
    #[arg(long, value_name = "HASH")]
    pub(crate) hash: Option<String>,
    /// Unlock with the volume key in this file instead of a passphrase.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tokens: TokenOpts,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PlainCommand {
    /// Map DEVICE as NAME with a key hashed from the passphrase, or read from a key file. No
    /// header records the key: a wrong passphrase is not detected, it maps noise. `luks
    /// status` and `luks close` show and remove the mapping. The defaults are cryptsetup
    /// 2.6's (aes-cbc-essiv:sha256, 256-bit key, ripemd160); for new uses prefer
    /// `--cipher aes-xts-plain64 --key-size 512 --hash sha256`, or a random key:
    /// `--key-file /dev/urandom` for swap.
    Open(PlainOpenArgs),
}

/// `plain open`.
#[derive(Debug, Args)]
pub(crate) struct PlainOpenArgs {
    /// Device or image file.
    pub(crate) device: PathBuf,
    /// Mapping name.
    pub(crate) name: String,
    /// Cipher in dm-crypt notation (`aes-xts-plain64`); a bare name gets `-cbc-plain`.
    #[arg(
        short = 'c',
        long,
        value_name = "CIPHER",
        default_value = "aes-cbc-essiv:sha256"
    )]
    pub(crate) cipher: String,
    /// Key size in bits (a multiple of 8).
    #[arg(
        short = 's',
        long = "key-size",
        value_name = "BITS",
        default_value_t = 256
    )]
    pub(crate) key_size: u32,
    /// How the passphrase becomes the key: a hash (`sha256`, `sha512`, `sha1`, `ripemd160`;
    /// default ripemd160), `HASH:LEN` to hash only LEN bytes of the key, or `plain` to use
    /// the passphrase's bytes. Ignored with a key file other than `-`, whose bytes are the key.
    #[arg(long, value_name = "HASH")]
    pub(crate) hash: Option<String>,
    /// Start of the data on DEVICE, in 512-byte sectors.
    #[arg(short = 'o', long, value_name = "SECTORS", default_value_t = 0)]
    pub(crate) offset: u64,
    /// IV offset: the first sector's IV is computed as for this sector number.
    #[arg(short = 'p', long, value_name = "SECTORS", default_value_t = 0)]
    pub(crate) skip: u64,
    /// Mapping size in 512-byte sectors (default: the rest of DEVICE).
    #[arg(short = 'b', long, value_name = "SECTORS")]
    pub(crate) size: Option<u64>,
    /// Encryption sector size: 512 (default), 1024, 2048 or 4096 bytes.
    #[arg(long = "sector-size", value_name = "BYTES", default_value_t = 512)]
    pub(crate) sector_size: u32,
    /// With a sector size above 512: count IVs in those sectors, not in 512-byte ones.
    #[arg(long = "iv-large-sectors")]
    pub(crate) iv_large_sectors: bool,
    /// Map read-only.
    #[arg(short = 'r', long)]
    pub(crate) readonly: bool,
    /// Ask for the passphrase twice on a terminal (there is no header to catch a typo).
    #[arg(short = 'y', long = "verify-passphrase")]
    pub(crate) verify_passphrase: bool,
    /// On a terminal, how many seconds to wait for the passphrase before giving up (0: no
    /// limit).
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) timeout: u32,
    /// The key comes from this file: its first key-size bytes (after --keyfile-offset) are
    /// the key, unhashed. `-` reads standard input to its end (or --keyfile-size bytes), and
    /// that is hashed.
    #[arg(short = 'd', long = "key-file", value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// With `--key-file -`: read at most this many bytes.
    #[arg(short = 'l', long = "keyfile-size", value_name = "BYTES")]
    pub(crate) keyfile_size: Option<u64>,
    /// Skip this many bytes of the key file first.
    #[arg(long = "keyfile-offset", value_name = "BYTES", default_value_t = 0)]
    pub(crate) keyfile_offset: u64,
    /// Map DEVICE even when it is in use (mounted or mapped), as one of several plain
    /// mappings over parts of it (cryptsetup's --shared). Without it a device in use is busy.
    #[arg(long)]
    pub(crate) shared: bool,
    #[command(flatten)]
    pub(crate) perf: PerfOpts,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// `luks close`.
#[derive(Debug, Args)]
pub(crate) struct CloseArgs {
    /// Mapping name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// `luks close`.
#[derive(Debug, Args)]
pub(crate) struct LuksCloseArgs {
    /// Mapping name (or a path to its device node).
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) deferral: Deferral,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// When a close takes effect (the close verbs of cryptsetup, veritysetup and integritysetup).
#[derive(Debug, Args)]
pub(crate) struct Deferral {
    /// Remove the mapping once its last user (a mount, an open file) lets it go: now if it
    /// has none, else it stays until then.
    #[arg(long, conflicts_with = "cancel_deferred")]
    pub(crate) deferred: bool,
    /// Cancel a deferred close of the mapping.
    #[arg(long)]
    pub(crate) cancel_deferred: bool,
}

/// `luks resize`.
#[derive(Debug, Args)]
pub(crate) struct ResizeArgs {
    /// Mapping name.
    pub(crate) name: String,
    /// New size in 512-byte sectors (default: the whole device after the data offset).
    #[arg(short = 'b', long = "size", value_name = "SECTORS")]
    pub(crate) size: Option<u64>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// `luks status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Mapping name.
    pub(crate) name: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `luks dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Print the JSON metadata instead.
    #[arg(long, alias = "dump-json-metadata")]
    pub(crate) json: bool,
    /// Also unlock and print the volume key (asks for a passphrase).
    #[arg(long = "dump-volume-key")]
    pub(crate) dump_volume_key: bool,
    /// With --dump-volume-key: write the key to this file instead of printing it.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks add-key`.
#[derive(Debug, Args)]
pub(crate) struct AddKeyArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Key file holding the new passphrase (else asked).
    pub(crate) new_key_file: Option<PathBuf>,
    /// The new passphrase's key file, as the argument above.
    #[arg(
        long = "new-keyfile",
        value_name = "FILE",
        conflicts_with = "new_key_file"
    )]
    pub(crate) new_keyfile: Option<PathBuf>,
    /// Read at most this many bytes of the new key file.
    #[arg(long = "new-keyfile-size", value_name = "BYTES")]
    pub(crate) new_keyfile_size: Option<u64>,
    /// Skip this many bytes at the start of the new key file.
    #[arg(long = "new-keyfile-offset", value_name = "BYTES", default_value_t = 0)]
    pub(crate) new_keyfile_offset: u64,
    /// The keyslot for the new passphrase; --key-slot then names the keyslot to unlock
    /// (without it, --key-slot is the new keyslot, as in older cryptsetup).
    #[arg(long = "new-key-slot", value_name = "NUM")]
    pub(crate) new_key_slot: Option<u32>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) pbkdf: PbkdfOpts,
    /// Authorise with the volume key in this file instead of a passphrase.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks remove-key`.
#[derive(Debug, Args)]
pub(crate) struct RemoveKeyArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Key file holding the passphrase to remove (else asked).
    #[arg(value_name = "KEY_FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks change-key`.
#[derive(Debug, Args)]
pub(crate) struct ChangeKeyArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Key file holding the new passphrase (else asked).
    pub(crate) new_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) pbkdf: PbkdfOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks convert-key`.
#[derive(Debug, Args)]
pub(crate) struct ConvertKeyArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) pbkdf: PbkdfOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks kill-slot`.
#[derive(Debug, Args)]
pub(crate) struct KillSlotArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Keyslot number.
    pub(crate) slot: u32,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// Mapping name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks erase`.
#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    /// LUKS device.
    pub(crate) device: PathBuf,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks header-backup`.
#[derive(Debug, Args)]
pub(crate) struct HeaderBackupArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// The backup file to create (must not exist).
    #[arg(long = "header-backup-file", value_name = "FILE")]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks header-restore`.
#[derive(Debug, Args)]
pub(crate) struct HeaderRestoreArgs {
    /// Device to restore onto.
    pub(crate) device: PathBuf,
    /// The backup file.
    #[arg(long = "header-backup-file", value_name = "FILE")]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks repair`.
#[derive(Debug, Args)]
pub(crate) struct RepairArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Repair even when the primary header area now holds another signature (an LVM2
    /// physical volume, a file system, swap, a partition table): the stale LUKS2 copy is then
    /// written over it, destroying whatever lives there now. Asks for confirmation.
    #[arg(long = "overwrite-signature")]
    pub(crate) overwrite_signature: bool,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks uuid`.
#[derive(Debug, Args)]
pub(crate) struct UuidArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// New UUID.
    #[arg(long)]
    pub(crate) uuid: Option<String>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks is-luks`.
#[derive(Debug, Args)]
pub(crate) struct IsLuksArgs {
    /// Device to check.
    pub(crate) device: PathBuf,
    /// Say why when it is not.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Only this version counts (exit 1 for a valid header of the other).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["luks", "luks1", "luks2"])]
    pub(crate) luks_type: Option<String>,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// New label.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// New subsystem.
    #[arg(long)]
    pub(crate) subsystem: Option<String>,
    /// The priority of the keyslot --key-slot names: prefer (tried first), normal, or
    /// ignore (tried only when named).
    #[arg(long, value_name = "PRIORITY")]
    pub(crate) priority: Option<String>,
    /// The keyslot --priority sets.
    #[arg(short = 'S', long = "key-slot", value_name = "NUM")]
    pub(crate) key_slot: Option<u32>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks encrypt-image`.
#[derive(Debug, Args)]
pub(crate) struct EncryptImageArgs {
    /// Plain image to read.
    #[arg(long = "in", value_name = "PLAIN")]
    pub(crate) input: PathBuf,
    /// LUKS2 image to create.
    #[arg(long = "out", value_name = "LUKS")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) new: NewVolumeOpts,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    #[command(flatten)]
    pub(crate) pbkdf: PbkdfOpts,
    /// Use the volume key in this file instead of a random one.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    /// Leave holes of the input as holes (unencrypted zeros) in the output instead of
    /// encrypting them: smaller and faster, but those sectors then read as noise through
    /// the mapping. Only for file systems that never read their free space.
    #[arg(long)]
    pub(crate) sparse: bool,
    /// Threads for encryption (default: all CPUs).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// `luks decrypt-image`.
#[derive(Debug, Args)]
pub(crate) struct DecryptImageArgs {
    /// LUKS2 image to read.
    #[arg(long = "in", value_name = "LUKS")]
    pub(crate) input: PathBuf,
    /// Plain image to create.
    #[arg(long = "out", value_name = "PLAIN")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Authorise with the volume key in this file instead of a passphrase.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    /// Holes in the LUKS2 image (left by encrypt-image --sparse) stay holes.
    #[arg(long)]
    pub(crate) sparse: bool,
    /// Threads for decryption (default: all CPUs).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks read`.
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// LUKS2 device or image.
    pub(crate) device: PathBuf,
    /// Byte offset in the data segment (a multiple of the sector size).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "0")]
    pub(crate) offset: u64,
    /// Bytes to read (default: to the end).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) length: Option<u64>,
    /// Write here instead of standard output.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Authorise with the volume key in this file instead of a passphrase.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// `luks write`.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// LUKS2 device or image.
    pub(crate) device: PathBuf,
    /// Byte offset in the data segment (a multiple of the sector size).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "0")]
    pub(crate) offset: u64,
    /// Read here instead of standard input.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Authorise with the volume key in this file instead of a passphrase.
    #[arg(long = "volume-key-file", value_name = "FILE")]
    pub(crate) volume_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// How `open` uses a LUKS2 header's tokens. Before asking for a passphrase it tries each
/// `luks2-keyring` token (cryptsetup's built-in type, `luks token add --key-description`):
/// the passphrase is the kernel keyring's `user` key of that name (`keyctl add user NAME
/// PASS @u`). Other token types need programs this tool does not run.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TokenOpts {
    /// Try this token only.
    #[arg(long = "token-id", value_name = "NUM")]
    pub(crate) token_id: Option<u32>,
    /// Open through a token or fail: never ask for a passphrase.
    #[arg(long = "token-only")]
    pub(crate) token_only: bool,
}

/// `luks token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// add (a luks2-keyring token: --key-description), import, export or remove.
    pub(crate) action: TokenAction,
    /// LUKS2 device.
    pub(crate) device: PathBuf,
    /// Token number (import picks the first free one without it).
    #[arg(long = "token-id", value_name = "NUM")]
    pub(crate) token_id: Option<u32>,
    /// Read (import) or write (export) this file instead of standard input/output.
    #[arg(long = "json-file", value_name = "FILE")]
    pub(crate) json_file: Option<PathBuf>,
    /// Import or add over an existing token of the same number.
    #[arg(long = "token-replace")]
    pub(crate) replace: bool,
    /// add: the kernel keyring `user` key whose payload is the passphrase.
    #[arg(long = "key-description", value_name = "NAME")]
    pub(crate) key_description: Option<String>,
    /// add: the keyslot the token opens (default: every keyslot).
    #[arg(short = 'S', long = "key-slot", value_name = "NUM")]
    pub(crate) key_slot: Option<u32>,
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) hdr: HeaderOpt,
}

/// Shape of a hash tree: what `verity format` writes into the superblock, and what the other
/// verbs need with --no-superblock.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct VerityTree {
    /// Hash algorithm: sha256 (default), sha1 or sha512.
    #[arg(long = "hash", value_name = "ALG", value_parser = parse_hash)]
    pub(crate) hash: Option<HashAlg>,
    /// Data block size in bytes, 512 to 4096 (default 4096).
    #[arg(long = "data-block-size", value_name = "BYTES")]
    pub(crate) data_block_size: Option<u32>,
    /// Hash block size in bytes, 512 to 4096 (default 4096).
    #[arg(long = "hash-block-size", value_name = "BYTES")]
    pub(crate) hash_block_size: Option<u32>,
    /// Number of data blocks covered (default: all whole blocks of the data device).
    #[arg(long = "data-blocks", value_name = "BLOCKS")]
    pub(crate) data_blocks: Option<u64>,
    /// Salt in hex, or `-` for none (default: 32 random bytes).
    #[arg(short = 's', long, value_name = "HEX")]
    pub(crate) salt: Option<String>,
    /// UUID for the superblock (default: random).
    #[arg(long)]
    pub(crate) uuid: Option<String>,
    /// Tree format: 1 (default), or 0 for Chrome OS's original (salt after the block,
    /// digests packed without padding).
    #[arg(long = "format", value_name = "TYPE")]
    pub(crate) format: Option<u32>,
}

/// Where the hash tree is on the hash device.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct VerityPlace {
    /// Byte offset of the hash area on the hash device (e.g. after the data in one file);
    /// a multiple of the hash block size.
    #[arg(long = "hash-offset", value_name = "BYTES", default_value_t = 0)]
    pub(crate) hash_offset: u64,
    /// No superblock: the tree starts at --hash-offset and its shape comes from the options.
    #[arg(long = "no-superblock")]
    pub(crate) no_superblock: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VerityCommand {
    /// Hash DATA into a tree on HASH_DEVICE (created if it is a missing file) and print the
    /// root hash, the value to trust (e.g. in attestation reference values).
    Format(VerityFormatArgs),
    /// Check every data and hash block offline against the root hash; names the first bad
    /// block.
    Verify(VerityVerifyArgs),
    /// Map DATA read-only as /dev/mapper/NAME; every block is checked by the kernel as it
    /// is read, and a block that does not match fails with an I/O error.
    Open(VerityOpenArgs),
    /// Remove the mapping NAME.
    Close(VerityCloseArgs),
    /// Show the mapping NAME as veritysetup status does: whether the kernel has found a
    /// corrupted block so far, the tree's parameters and devices (exit 4 when not mapped).
    Status(VerityCloseArgs),
    /// Print the superblock on HASH_DEVICE (veritysetup's dump layout).
    Dump(VerityDumpArgs),
}

/// `verity format`.
#[derive(Debug, Args)]
pub(crate) struct VerityFormatArgs {
    /// Data device or image.
    pub(crate) data: PathBuf,
    /// Hash device or file (may be DATA itself with --hash-offset past the data).
    pub(crate) hash_device: PathBuf,
    #[command(flatten)]
    pub(crate) tree: VerityTree,
    #[command(flatten)]
    pub(crate) place: VerityPlace,
    /// Also write the root hash (hex, no newline) to this file.
    #[arg(long = "root-hash-file", value_name = "FILE")]
    pub(crate) root_hash_file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `verity verify`.
#[derive(Debug, Args)]
pub(crate) struct VerityVerifyArgs {
    /// Data device or image.
    pub(crate) data: PathBuf,
    #[command(flatten)]
    pub(crate) check: VerityCheck,
}

/// The hash tree and root hash a data device is checked against (`verify`, `open`).
#[derive(Debug, Args)]
pub(crate) struct VerityCheck {
    /// Hash device or file.
    pub(crate) hash_device: PathBuf,
    /// Root hash in hex (or use --root-hash-file).
    pub(crate) root_hash: Option<String>,
    /// Read the root hash from this file.
    #[arg(long = "root-hash-file", value_name = "FILE")]
    pub(crate) root_hash_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tree: VerityTree,
    #[command(flatten)]
    pub(crate) place: VerityPlace,
}

/// `verity open`.
#[derive(Debug, Args)]
pub(crate) struct VerityOpenArgs {
    /// Data device or image.
    pub(crate) data: PathBuf,
    /// Mapping name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) check: VerityCheck,
    /// Log corrupted blocks but return their data.
    #[arg(long = "ignore-corruption")]
    pub(crate) ignore_corruption: bool,
    /// Restart the system on a corrupted block.
    #[arg(long = "restart-on-corruption")]
    pub(crate) restart_on_corruption: bool,
    /// Panic the kernel on a corrupted block.
    #[arg(long = "panic-on-corruption")]
    pub(crate) panic_on_corruption: bool,
    /// Return zeros for blocks whose hash is that of a zero block, without reading them.
    #[arg(long = "ignore-zero-blocks")]
    pub(crate) ignore_zero_blocks: bool,
    /// Check each block only the first time it is read.
    #[arg(long = "check-at-most-once")]
    pub(crate) check_at_most_once: bool,
}

/// `verity close`.
#[derive(Debug, Args)]
pub(crate) struct VerityCloseArgs {
    /// Mapping name (or a path to its device node).
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) deferral: Deferral,
}

/// `verity dump`.
#[derive(Debug, Args)]
pub(crate) struct VerityDumpArgs {
    /// Hash device or file.
    pub(crate) hash_device: PathBuf,
    /// Byte offset of the superblock.
    #[arg(long = "hash-offset", value_name = "BYTES", default_value_t = 0)]
    pub(crate) hash_offset: u64,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TokenAction {
    Add,
    Import,
    Export,
    Remove,
}

fn parse_pbkdf(s: &str) -> Result<PbkdfKind, String> {
    PbkdfKind::parse(s).map_err(|e| e.to_string())
}

fn parse_hash(s: &str) -> Result<HashAlg, String> {
    HashAlg::parse(s).map_err(|e| e.to_string())
}

fn parse_integrity(s: &str) -> Result<SegmentIntegrity, String> {
    SegmentIntegrity::parse(s).map_err(|e| e.to_string())
}

/// Sizes as cryptsetup takes them: bytes, or with a k/m/g suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (bytes, or a number with k, m or g)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn argument_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16k"), Ok(16384));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("x").is_err());
    }
}

/// `cryptpilot benchmark` (and cryptsetup's `benchmark` action, which prints its layout).
#[derive(Args, Debug)]
pub(crate) struct BenchmarkArgs {
    /// Print one JSON array of objects.
    #[arg(long)]
    pub(crate) json: bool,
    /// Measure only this cipher (`aes-xts-plain64`, `aes-cbc-essiv:sha256`, ...).
    #[arg(short = 'c', long, value_name = "CIPHER")]
    pub(crate) cipher: Option<String>,
    /// Key size in bits for --cipher, and the derived key's size for the KDF lines
    /// (default 256).
    #[arg(short = 's', long = "key-size", value_name = "BITS")]
    pub(crate) key_size: Option<u32>,
    /// Measure only PBKDF2 with this hash (alone, or with --pbkdf pbkdf2).
    #[arg(long, value_name = "HASH")]
    pub(crate) hash: Option<String>,
    /// Measure only this KDF: pbkdf2, argon2i or argon2id.
    #[arg(long, value_name = "KDF")]
    pub(crate) pbkdf: Option<String>,
    /// The unlock time Argon2's costs are calibrated to, in milliseconds.
    #[arg(
        short = 'i',
        long = "iter-time",
        value_name = "MS",
        default_value_t = 2000
    )]
    pub(crate) iter_time: u32,
    /// Argon2's memory ceiling in KiB.
    #[arg(long = "pbkdf-memory", value_name = "KIB", default_value_t = 1_048_576)]
    pub(crate) pbkdf_memory: u32,
    /// Argon2 threads.
    #[arg(long = "pbkdf-parallel", value_name = "N", default_value_t = 4)]
    pub(crate) pbkdf_parallel: u32,
    /// Sector size for the cipher runs.
    #[arg(long = "sector-size", value_name = "BYTES", default_value_t = 4096)]
    pub(crate) sector_size: usize,
    /// Seconds per cipher measurement and direction.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5)]
    pub(crate) seconds: f64,
}
