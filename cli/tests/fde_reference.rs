//! `cryptpilot fde show-reference-value --disk IMG` on GPT images assembled here from Debian's
//! own boot files (shim-signed, grub-efi-amd64-signed, the cloud kernel: unpacked by
//! scripts/fixtures.sh) with Debian's tools (sgdisk, mkfs.vfat + mtools, mkfs.ext4 -d): every
//! value equals an independent computation (sha384sum/sha256sum of the files and of the command
//! line, pesign's Authenticode digest of shim, GRUB and a UKI made by objcopy).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fails_cleanly, ok, run_cmd, Dir, Run};

const CMDLINE: &str = "root=/dev/mapper/rootfs ro console=ttyS0";

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("CRYPTPILOT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join("boot");
    assert!(
        dir.join("vmlinuz").exists(),
        "{}: run scripts/fixtures.sh first (scripts/test.sh does)",
        dir.display()
    );
    dir
}

fn sh(script: &str) -> Run {
    let mut c = Command::new("bash");
    c.arg("-euo").arg("pipefail").arg("-c").arg(script);
    ok(run_cmd(c))
}

fn digest(tool: &str, file: &Path) -> String {
    let r = sh(&format!("{tool} '{}'", file.display()));
    r.stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

fn text_digest(tool: &str, s: &str) -> String {
    let r = sh(&format!("printf %s '{s}' | {tool}"));
    r.stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

fn pesign(file: &Path, alg: &str) -> String {
    let r = sh(&format!("pesign -h -d {alg} -i '{}'", file.display()));
    r.stdout
        .trim()
        .strip_prefix("hash: ")
        .unwrap_or_else(|| panic!("pesign printed {}", r.stdout))
        .to_owned()
}

fn show(img: &str, extra: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args(["fde", "show-reference-value", "--disk", img])
        .args(extra);
    run_cmd(c)
}

fn json(r: Run) -> serde_json::Value {
    serde_json::from_str(&ok(r).stdout).expect("JSON")
}

fn values(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// The layout conversion writes: ESP (1), `boot` ext4 (2), the LVM PV (3, left empty here).
/// `root_boot`: instead, an unconverted image whose root (2) holds /boot.
struct Image {
    img: String,
    kernel: PathBuf,
    initrd: PathBuf,
}

fn esp(d: &Dir, f: &Path, uki: Option<&Path>) -> String {
    let esp = d.p("esp.img");
    let shim = f.join("shimx64.efi");
    let grub = f.join("grubx64.efi");
    let mut s = format!(
        "mkfs.vfat -C '{esp}' 32768 >/dev/null
         mmd -i '{esp}' ::EFI ::EFI/debian ::EFI/BOOT
         mcopy -i '{esp}' '{}' ::EFI/debian/shimx64.efi
         mcopy -i '{esp}' '{}' ::EFI/debian/grubx64.efi
         printf 'configfile (hd0,gpt2)/boot/grub/grub.cfg\\n' > '{}'
         mcopy -i '{esp}' '{}' ::EFI/debian/grub.cfg
         mcopy -i '{esp}' '{}' ::EFI/BOOT/grubx64.efi
         mcopy -i '{esp}' '{}' ::EFI/BOOT/fbx64.efi
        ",
        shim.display(),
        grub.display(),
        d.p("stub.cfg"),
        d.p("stub.cfg"),
        grub.display(),
        shim.display(),
    );
    // Without a UKI, BOOTX64.EFI is shim (the removable-media path): not a UKI.
    let boot = uki.map_or_else(|| shim.clone(), Path::to_path_buf);
    s.push_str(&format!(
        "mcopy -i '{esp}' '{}' ::EFI/BOOT/BOOTX64.EFI\n",
        boot.display()
    ));
    sh(&s);
    esp
}

fn image(d: &Dir, separate_boot: bool, uki: Option<&Path>) -> Image {
    image_with(
        d,
        separate_boot,
        uki,
        &b"an initrd stands here; its bytes are hashed whole\n".repeat(999),
    )
}

fn image_with(d: &Dir, separate_boot: bool, uki: Option<&Path>, initrd_bytes: &[u8]) -> Image {
    let f = fixtures();
    let kver = std::fs::read_to_string(f.join("kernel-version")).expect("kernel version");
    let kver = kver.trim();
    let tree = d.path("tree");
    let boot = if separate_boot {
        tree.clone()
    } else {
        tree.join("boot")
    };
    std::fs::create_dir_all(boot.join("grub")).expect("mkdir");
    let kernel = boot.join(format!("vmlinuz-{kver}"));
    std::fs::copy(f.join("vmlinuz"), &kernel).expect("copy kernel");
    let initrd = boot.join(format!("initrd.img-{kver}"));
    std::fs::write(&initrd, initrd_bytes).expect("initrd");
    let prefix = if separate_boot { "" } else { "/boot" };
    // Debian's grub.cfg shape: functions, a default entry, a submenu.
    let cfg = format!(
        "function load_video {{\n  insmod all_video\n}}\nset default=\"0\"\n\
         menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {{\n\
         \tload_video\n\tinsmod ext2\n\
         \tlinux\t{prefix}/vmlinuz-{kver} {}\n\tinitrd\t{prefix}/initrd.img-{kver}\n}}\n\
         submenu 'Advanced options' {{\n\tmenuentry 'recovery' {{\n\
         \t\tlinux\t{prefix}/vmlinuz-{kver} single\n\t\tinitrd\t{prefix}/initrd.img-{kver}\n\t}}\n}}\n",
        CMDLINE.replace(' ', "  ")
    );
    std::fs::write(boot.join("grub/grub.cfg"), cfg).expect("grub.cfg");
    std::fs::write(boot.join("grub/grubenv"), "# GRUB Environment Block\n").expect("grubenv");
    if separate_boot {
        std::os::unix::fs::symlink(".", tree.join("boot")).expect("symlink");
    } else {
        std::fs::create_dir_all(tree.join("etc")).expect("etc");
    }
    let esp = esp(d, &f, uki);
    let img = d.p("disk.img");
    let fs = d.p("fs.img");
    let name = if separate_boot { "boot" } else { "root" };
    sh(&format!(
        "truncate -s 192M '{img}'
         sgdisk -n 1:2048:+32M -t 1:ef00 -c 1:EFI -n 2:0:+96M -t 2:8300 -c 2:{name} \
                -n 3:0:0 -t 3:8e00 -c 3:primary '{img}' >/dev/null
         mkfs.ext4 -q -F -d '{}' '{fs}' 96M
         dd if='{esp}' of='{img}' bs=512 seek=2048 conv=notrunc,sparse status=none
         dd if='{fs}' of='{img}' bs=512 seek=$((2048 + 65536)) conv=notrunc,sparse status=none",
        tree.display()
    ));
    Image {
        img,
        kernel,
        initrd,
    }
}

/// A converted layout (separate boot partition 2): every GRUB value equals the independent
/// one; two algorithms give the keys in the existing tool's order.
#[test]
fn grub_values_equal_independent_digests() {
    let d = Dir::new();
    let i = image(&d, true, None);
    let f = fixtures();
    let before = std::fs::read(&i.img).expect("read");
    let v = json(show(
        &i.img,
        &["--hash-algo", "sha384", "--hash-algo", "sha256"],
    ));
    let kver = std::fs::read_to_string(f.join("kernel-version")).expect("kver");
    let short = format!("/vmlinuz-{} {CMDLINE}", kver.trim());
    let long = format!("(hd0,gpt2)/boot/vmlinuz-{} {CMDLINE}", kver.trim());
    assert_eq!(
        values(&v, "kernel_cmdline"),
        [
            format!("grub_kernel_cmdline {short}"),
            format!("grub_kernel_cmdline {long}")
        ]
    );
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "kernel_cmdline",
            "measurement.kernel_cmdline.SHA-384",
            "measurement.kernel.SHA-384",
            "measurement.initrd.SHA-384",
            "measurement.grub.SHA-384",
            "measurement.shim.SHA-384",
            "measurement.kernel_cmdline.SHA-256",
            "measurement.kernel.SHA-256",
            "measurement.initrd.SHA-256",
            "measurement.grub.SHA-256",
            "measurement.shim.SHA-256",
        ]
    );
    for (label, tool) in [("SHA-384", "sha384sum"), ("SHA-256", "sha256sum")] {
        assert_eq!(
            values(&v, &format!("measurement.kernel_cmdline.{label}")),
            [text_digest(tool, &short), text_digest(tool, &long)]
        );
        assert_eq!(
            values(&v, &format!("measurement.kernel.{label}")),
            [digest(tool, &i.kernel)]
        );
        assert_eq!(
            values(&v, &format!("measurement.initrd.{label}")),
            [digest(tool, &i.initrd)]
        );
    }
    // pesign computes SHA-256 (and SHA-1) Authenticode digests.
    assert_eq!(
        values(&v, "measurement.grub.SHA-256"),
        [pesign(&f.join("grubx64.efi"), "sha256")]
    );
    assert_eq!(
        values(&v, "measurement.shim.SHA-256"),
        [pesign(&f.join("shimx64.efi"), "sha256")]
    );
    let sha1 = json(show(&i.img, &["--hash-algo", "sha1"]));
    assert_eq!(
        values(&sha1, "measurement.shim.SHA-1"),
        [pesign(&f.join("shimx64.efi"), "sha1")]
    );
    assert_eq!(
        std::fs::read(&i.img).expect("read"),
        before,
        "the image must not change"
    );
}

/// An unconverted image: /boot on the root partition; the command line keeps /boot in the
/// GRUB path, the device is the root partition.
#[test]
fn boot_on_the_root_partition() {
    let d = Dir::new();
    let i = image(&d, false, None);
    let v = json(show(&i.img, &[]));
    let cl = values(&v, "kernel_cmdline");
    assert!(cl[0].starts_with("grub_kernel_cmdline /vmlinuz-"), "{cl:?}");
    assert!(
        cl[1].starts_with("grub_kernel_cmdline (hd0,gpt2)/boot/vmlinuz-"),
        "{cl:?}"
    );
    assert_eq!(
        values(&v, "measurement.initrd.SHA-384"),
        [digest("sha384sum", &i.initrd)]
    );
}

/// A UKI at EFI/BOOT/BOOTX64.EFI (objcopy onto systemd's stub, as ukify does): its
/// Authenticode digest equals pesign's, and it changes with the command line.
#[test]
fn uki_value_follows_the_command_line() {
    let d = Dir::new();
    let f = fixtures();
    let uki = |name: &str, cmdline: &str| -> PathBuf {
        let out = d.path(name);
        std::fs::write(d.path("cmdline"), cmdline).expect("cmdline");
        std::fs::write(d.path("initrd"), b"initrd").expect("initrd");
        std::fs::write(d.path("osrel"), b"ID=debian\n").expect("osrel");
        sh(&format!(
            "objcopy --add-section .osrel='{}' --change-section-vma .osrel=0x20000 \
             --add-section .cmdline='{}' --change-section-vma .cmdline=0x30000 \
             --add-section .linux='{}' --change-section-vma .linux=0x2000000 \
             --add-section .initrd='{}' --change-section-vma .initrd=0x3000000 \
             /usr/lib/systemd/boot/efi/linuxx64.efi.stub '{}'",
            d.p("osrel"),
            d.p("cmdline"),
            f.join("vmlinuz").display(),
            d.p("initrd"),
            out.display()
        ));
        out
    };
    let a = uki("a.efi", "root=/dev/mapper/rootfs ro");
    let b = uki("b.efi", "root=/dev/mapper/rootfs ro quiet");
    let mut got = Vec::new();
    for (n, u) in [("a", &a), ("b", &b)] {
        let sub = Dir::new();
        let i = image(&sub, true, Some(u));
        let v = json(show(&i.img, &["--hash-algo", "sha256"]));
        assert_eq!(
            v.as_object().expect("object").len(),
            1,
            "{n}: only the UKI value: {v}"
        );
        let val = values(&v, "measurement.uki.SHA-256");
        assert_eq!(val, [pesign(u, "sha256")], "{n}");
        got.push(val);
    }
    assert_ne!(got[0], got[1], "the command line is measured");
}

/// A qcow2 image gives the values its raw image gives.
#[test]
fn qcow2_images_read_as_raw() {
    let d = Dir::new();
    let i = image(&d, true, None);
    let q = d.p("disk.qcow2");
    sh(&format!("qemu-img convert -O qcow2 '{}' '{q}'", i.img));
    assert_eq!(ok(show(&q, &[])).stdout, ok(show(&i.img, &[])).stdout);
}

/// `--format rvps`: the provenance document Trustee's RVPS registers, its payload the JSON.
#[test]
fn rvps_wraps_the_json() {
    let d = Dir::new();
    let i = image(&d, true, None);
    let plain = ok(show(&i.img, &[])).stdout;
    let v = json(show(&i.img, &["--format", "rvps"]));
    assert_eq!(v["version"], "0.1.0");
    assert_eq!(v["type"], "sample");
    let payload = sh(&format!(
        "printf %s '{}' | base64 -d",
        v["payload"].as_str().expect("payload")
    ));
    assert_eq!(payload.stdout, plain);
}

/// Bad input: one line, exit 1, nothing written.
#[test]
fn bad_images_are_refused() {
    let d = Dir::new();
    let qcow = d.p("disk.qcow2");
    sh(&format!("qemu-img create -q -f qcow2 '{qcow}' 64M"));
    // A container image is read through qemu-img: an empty one has no table.
    fails_cleanly(&show(&qcow, &[]), 1, "no GPT header");
    // A qcow2 whose backing file is on this machine is refused, not followed.
    let backed = d.p("backed.qcow2");
    sh(&format!(
        "qemu-img create -q -f qcow2 -b '{qcow}' -F qcow2 '{backed}'"
    ));
    fails_cleanly(&show(&backed, &[]), 1, "backing");
    // A raw-only name with qcow2 bytes is named as such.
    let disguised = d.p("disguised.img");
    std::fs::copy(&qcow, &disguised).expect("copy");
    fails_cleanly(&show(&disguised, &[]), 1, "qemu-img convert -O raw");
    let blank = d.image("blank.img", 8);
    fails_cleanly(&show(&blank, &[]), 1, "no GPT header");
    let i = image(&d, true, None);
    let cut = d.p("cut.img");
    sh(&format!("head -c 30M '{}' > '{cut}'", i.img));
    let r = show(&cut, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    fails_cleanly(&show(&d.p("missing.img"), &[]), 1, "missing.img");
    // A partition table that cuts the ESP's file system short: an error, not shorter files.
    let short = d.p("short.img");
    sh(&format!(
        "cp '{}' '{short}'; sgdisk -d 1 -n 1:2048:+4M -t 1:ef00 '{short}' >/dev/null",
        i.img
    ));
    fails_cleanly(&show(&short, &[]), 1, "can be read");
    // No ESP: the ESP partition's bytes zeroed.
    sh(&format!(
        "dd if=/dev/zero of='{}' bs=512 seek=2048 count=64 conv=notrunc status=none",
        i.img
    ));
    fails_cleanly(&show(&i.img, &[]), 1, "no boot chain found");
}

const FDE_TOML: &str = "[rootfs]\nrw_overlay = \"disk-persist\"\n\n[data]\nintegrity = true\n\n\
                        [data.encrypt.exec]\ncommand = \"/bin/key\"\nargs = [\"a b\"]\n";
const GLOBAL_TOML: &str = "[boot]\nverbose = true\n";
const METADATA_TOML: &str =
    "type = 1\nroot_hash = \"9b84e587cb4fe5dffd096dcea37acc04dd766fdcd4062e6b4c7060b4f4e735c1\"\n";

fn config_dir(d: &Dir) -> String {
    let c = d.p("conf");
    std::fs::create_dir_all(&c).expect("mkdir");
    for (n, t) in [
        ("fde.toml", FDE_TOML),
        ("global.toml", GLOBAL_TOML),
        ("metadata.toml", METADATA_TOML),
    ] {
        std::fs::write(Path::new(&c).join(n), t).expect("write");
    }
    c
}

fn dump(img: &str) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args(["fde", "config", "dump", "--disk", img]);
    run_cmd(c)
}

/// The bundle printed by `config dump` is the configuration the initrd carries (read back
/// by Python's tomllib, older names replaced), with a SHA-384 that follows the content.
fn check_dump(r: Run) -> String {
    let out = ok(r).stdout;
    assert!(out.starts_with("#cryptpilot-fde-config\n"), "{out}");
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("# The sha384 hash of this config is: "))
        .expect("hash line")
        .to_owned();
    assert_eq!(hash.len(), 96);
    let parsed = sh(&format!(
        "python3 -c 'import sys, tomllib, json; print(json.dumps(tomllib.loads(sys.stdin.read()), sort_keys=True))' <<'EOF'\n{out}EOF"
    ));
    let v: serde_json::Value = serde_json::from_str(&parsed.stdout).expect("json");
    assert_eq!(v["global"]["boot"]["verbose"], true, "{out}");
    assert_eq!(
        v["fde"]["rootfs"]["delta_location"], "disk-persist",
        "{out}"
    );
    assert_eq!(v["fde"]["delta"]["integrity"], true, "{out}");
    assert_eq!(
        v["fde"]["delta"]["encrypt"]["exec"]["args"][0], "a b",
        "{out}"
    );
    hash
}

/// Our own initrd (`fde initrd`, gzip), and one shaped as initramfs-tools and dracut make them: an
/// uncompressed early archive, then a zstd-compressed one (GNU cpio, zstd).
#[test]
fn config_dump_reads_the_initrd() {
    let d = Dir::new();
    let conf = config_dir(&d);
    let ours = d.p("ours.img");
    // A minimal static ELF as /init (the builder refuses a dynamically linked one).
    let mut elf = vec![0u8; 0x40 + 56];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    elf[0x40] = 1;
    std::fs::write(d.path("init"), elf).expect("init");
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args([
        "fde",
        "initrd",
        "-c",
        &conf,
        "--out",
        &ours,
        "--init",
        &d.p("init"),
    ]);
    ok(run_cmd(c));
    let initrd = std::fs::read(&ours).expect("read");
    let sub = Dir::new();
    let i = image_with(&sub, true, None, &initrd);
    let h1 = check_dump(dump(&i.img));

    let t = d.path("zt");
    std::fs::create_dir_all(t.join("kernel/x86/microcode")).expect("mkdir");
    std::fs::write(t.join("kernel/x86/microcode/GenuineIntel.bin"), b"ucode").expect("ucode");
    let main = d.path("zmain");
    std::fs::create_dir_all(main.join("etc/cryptpilot")).expect("mkdir");
    for n in ["fde.toml", "global.toml", "metadata.toml"] {
        std::fs::copy(
            Path::new(&conf).join(n),
            main.join("etc/cryptpilot").join(n),
        )
        .expect("copy");
    }
    let z = d.p("z.img");
    sh(&format!(
        "(cd '{}' && find . | cpio -o -H newc --quiet) > '{z}'
         (cd '{}' && find . | cpio -o -H newc --quiet | zstd -q -19) >> '{z}'",
        t.display(),
        main.display()
    ));
    let sub = Dir::new();
    let i = image_with(&sub, true, None, &std::fs::read(&z).expect("read"));
    assert_eq!(
        check_dump(dump(&i.img)),
        h1,
        "the same bundle, the same hash"
    );

    // Another setting: another hash.
    std::fs::write(
        main.join("etc/cryptpilot/global.toml"),
        "[boot]\nverbose = false\n",
    )
    .expect("w");
    sh(&format!(
        "(cd '{}' && find . | cpio -o -H newc --quiet | gzip) > '{z}'",
        main.display()
    ));
    let sub = Dir::new();
    let i = image_with(&sub, true, None, &std::fs::read(&z).expect("read"));
    let out = ok(dump(&i.img)).stdout;
    assert!(!out.contains(&h1), "{out}");

    // An initrd without the configuration, and one that is not an initrd: one line, exit 1.
    let sub = Dir::new();
    let i = image(&sub, true, None);
    fails_cleanly(&dump(&i.img), 1, "not a cpio archive");
    sh(&format!(
        "(cd '{}' && find . | cpio -o -H newc --quiet | gzip) > '{z}'",
        t.display()
    ));
    let sub = Dir::new();
    let i = image_with(&sub, true, None, &std::fs::read(&z).expect("read"));
    fails_cleanly(&dump(&i.img), 1, "neither fde.toml nor global.toml");
}
