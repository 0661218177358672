//! `luksDump`-style text for a header, in cryptsetup's layout.

use std::fmt;
use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::header::json::{KeyslotJson, ObjId, SegmentJson, SegmentSize};
use crate::{Header, VolumeKey, KEYRING_TOKEN};

/// luksDump text being built: text, and the label and subsystem as the bytes they are
/// (cryptsetup prints them raw, UTF-8 or not).
struct Out(Vec<u8>);

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Out {
    fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// `bytes` as they are, or `none` when empty.
    fn raw_or(&mut self, bytes: &[u8], none: &str) {
        if bytes.is_empty() {
            self.push_str(none);
        } else {
            self.0.extend_from_slice(bytes);
        }
    }
}

fn hex_block(out: &mut Out, label: &str, bytes: &[u8]) {
    let _ = write!(out, "\t{label:<12}");
    for (i, line) in bytes.chunks(16).enumerate() {
        if i > 0 {
            out.push_str("\t            ");
        }
        for b in line {
            let _ = write!(out, "{b:02x} ");
        }
        out.push('\n');
    }
    if bytes.is_empty() {
        out.push('\n');
    }
}

/// The header described as `cryptsetup luksDump` prints it (no key material), with a label
/// or subsystem that is not UTF-8 shown as U+FFFD; [`dump_bytes`] keeps their bytes.
pub fn dump_text(h: &Header) -> String {
    String::from_utf8_lossy(&dump_bytes(h)).into_owned()
}

/// The header described as `cryptsetup luksDump` prints it (no key material), byte for byte:
/// the label and subsystem as stored.
pub fn dump_bytes(h: &Header) -> Vec<u8> {
    let m = h.metadata();
    let mut o = Out(Vec::new());
    general(&mut o, h);
    o.push_str("\nData segments:\n");
    for (id, s) in &m.segments {
        segment(&mut o, *id, s);
    }
    o.push_str("\nKeyslots:\n");
    for (id, k) in &m.keyslots {
        keyslot(&mut o, *id, k);
        if let Some(d) = m.digests.iter().find(|(_, d)| d.keyslots.contains(id)) {
            let _ = writeln!(o, "\tDigest ID:  {}", d.0);
        }
        // Not in cryptsetup's text, which shows a damaged keyslot as if it were fine.
        if let Err(e) = crate::header::validate::keyslot_params(*id, k) {
            let _ = writeln!(o, "\tUnusable:   {e}");
        }
    }
    o.push_str("Tokens:\n");
    for (id, t) in &m.tokens {
        let kind = t.get("type").and_then(|v| v.as_str()).unwrap_or("?");
        let _ = writeln!(o, "  {id}: {kind}");
        // cryptsetup's built-in keyring token shows the key's name.
        if let (KEYRING_TOKEN, Some(d)) = (kind, t.get("key_description").and_then(|v| v.as_str()))
        {
            let _ = writeln!(o, "\tKey description: {d}");
        }
        if let Some(serde_json::Value::Array(a)) = t.get("keyslots") {
            for s in a.iter().filter_map(|v| v.as_str()) {
                let _ = writeln!(o, "\tKeyslot:    {s}");
            }
        }
    }
    o.push_str("Digests:\n");
    for (id, d) in &m.digests {
        let _ = writeln!(o, "  {id}: {}", d.kind);
        if let Some(hh) = &d.hash {
            let _ = writeln!(o, "\tHash:       {hh}");
        }
        if let Some(n) = d.iterations {
            let _ = writeln!(o, "\tIterations: {n}");
        }
        hex_block(&mut o, "Salt:", &d.salt.0);
        hex_block(&mut o, "Digest:", &d.digest.0);
    }
    o.0
}

/// The binary header's fields, the flags and the requirements.
fn general(o: &mut Out, h: &Header) {
    let m = h.metadata();
    let flags = m
        .config
        .flags
        .as_ref()
        .filter(|f| !f.is_empty())
        .map(|f| f.join(" "));
    let _ = write!(
        o,
        "LUKS header information\nVersion:       \t2\nEpoch:         \t{}\n\
         Metadata area: \t{} [bytes]\nKeyslots area: \t{} [bytes]\nUUID:          \t{}\n\
         Label:         \t",
        h.seqid(),
        h.metadata_size(),
        h.keyslots_size(),
        h.uuid(),
    );
    o.raw_or(h.label_bytes(), "(no label)");
    o.push_str("\nSubsystem:     \t");
    o.raw_or(h.subsystem_bytes(), "(no subsystem)");
    let _ = writeln!(
        o,
        "\nFlags:       \t{}",
        flags.as_deref().unwrap_or("(no flags)")
    );
    let req = m.requirements();
    if !req.is_empty() {
        let _ = writeln!(o, "Requirements:\t{}", req.join(" "));
    }
}

fn segment(o: &mut Out, id: ObjId, s: &SegmentJson) {
    let _ = writeln!(o, "  {id}: {}", s.kind);
    let _ = writeln!(o, "\toffset: {} [bytes]", s.offset.0);
    match s.size {
        SegmentSize::Dynamic => o.push_str("\tlength: (whole device)\n"),
        SegmentSize::Bytes(n) => {
            let _ = writeln!(o, "\tlength: {n} [bytes]");
        }
    }
    if let Some(c) = &s.encryption {
        let _ = writeln!(o, "\tcipher: {c}");
    }
    if let Some(n) = s.sector_size {
        let _ = writeln!(o, "\tsector: {n} [bytes]");
    }
    if let Some(t) = s
        .integrity
        .as_ref()
        .and_then(|i| i.get("type"))
        .and_then(|v| v.as_str())
    {
        let _ = writeln!(o, "\tintegrity: {t}");
    }
    if let Some(f) = &s.flags {
        let _ = writeln!(o, "\tflags : {}", f.join(" "));
    }
}

fn keyslot(o: &mut Out, id: ObjId, k: &KeyslotJson) {
    let _ = writeln!(o, "  {id}: {}", k.kind);
    let _ = writeln!(o, "\tKey:        {} bits", u64::from(k.key_size) * 8);
    let prio = match k.priority {
        Some(0) => "ignored",
        Some(2) => "preferred",
        _ => "normal",
    };
    let _ = writeln!(o, "\tPriority:   {prio}");
    if let Some(c) = &k.area.encryption {
        let _ = writeln!(o, "\tCipher:     {c}");
    }
    if let Some(n) = k.area.key_size {
        let _ = writeln!(o, "\tCipher key: {} bits", u64::from(n) * 8);
    }
    if let Some(kdf) = &k.kdf {
        let _ = writeln!(o, "\tPBKDF:      {}", kdf.kind);
        let fields = [
            ("Hash:      ", kdf.hash.clone()),
            ("Iterations:", kdf.iterations.map(|n| n.to_string())),
            ("Time cost: ", kdf.time.map(|n| n.to_string())),
            ("Memory:    ", kdf.memory.map(|n| n.to_string())),
            ("Threads:   ", kdf.cpus.map(|n| n.to_string())),
        ];
        for (label, value) in fields {
            if let Some(v) = value {
                let _ = writeln!(o, "\t{label} {v}");
            }
        }
        hex_block(o, "Salt:", &kdf.salt.0);
    }
    if let Some(af) = &k.af {
        if let Some(n) = af.stripes {
            let _ = writeln!(o, "\tAF stripes: {n}");
        }
        if let Some(hh) = &af.hash {
            let _ = writeln!(o, "\tAF hash:    {hh}");
        }
    }
    let _ = writeln!(o, "\tArea offset:{} [bytes]", k.area.offset.0);
    let _ = writeln!(o, "\tArea length:{} [bytes]", k.area.size.0);
}

/// What `cryptsetup luksDump --dump-volume-key` prints: the cipher, payload offset, UUID and
/// the volume key in hex, for the device called `device`.
///
/// # Security
/// The text holds the key: it is built in a zeroizing buffer sized up front that never grows.
pub fn dump_volume_key_text(header: &Header, device: &str, key: &VolumeKey) -> Zeroizing<String> {
    let seg = header.data_segment().map(|(_, s)| s);
    let cipher = seg.and_then(|s| s.encryption.clone()).unwrap_or_default();
    let (name, mode) = cipher.split_once('-').unwrap_or((&cipher, ""));
    let offset = seg.map_or(0, |s| crate::Bytes(s.offset.0).sectors().0);
    volume_key_text(device, (name, mode), offset, header.uuid(), key)
}

/// cryptsetup's `luksDump --dump-volume-key --volume-key-file FILE` text for a LUKS2 header
/// whose `key_len`-byte volume key went to `file`: the dump's head, then where the key is.
pub fn dump_volume_key_stored_text(
    header: &Header,
    device: &str,
    key_len: usize,
    file: &str,
) -> String {
    let seg = header.data_segment().map(|(_, s)| s);
    let cipher = seg.and_then(|s| s.encryption.clone()).unwrap_or_default();
    let (name, mode) = cipher.split_once('-').unwrap_or((&cipher, ""));
    let offset = seg.map_or(0, |s| crate::Bytes(s.offset.0).sectors().0);
    volume_key_stored_text(device, (name, mode), offset, header.uuid(), key_len, file)
}

/// The volume key dump's head and "Key stored to file FILE.", for LUKS1 and LUKS2.
pub(crate) fn volume_key_stored_text(
    device: &str,
    cipher: (&str, &str),
    offset_sectors: u64,
    uuid: &str,
    key_len: usize,
    file: &str,
) -> String {
    format!(
        "{}Key stored to file {file}.\n",
        key_dump_head(device, cipher, offset_sectors, uuid, key_len)
    )
}

/// The lines before the key in cryptsetup's volume key dump.
fn key_dump_head(
    device: &str,
    (name, mode): (&str, &str),
    offset_sectors: u64,
    uuid: &str,
    key_len: usize,
) -> String {
    format!(
        "LUKS header information for {device}\nCipher name:   \t{name}\nCipher mode:   \t{mode}\nPayload offset:\t{offset_sectors}\nUUID:          \t{uuid}\nMK bits:       \t{}\n",
        key_len * 8
    )
}

/// cryptsetup's volume key dump, the same for LUKS1 and LUKS2: cipher, payload offset in
/// sectors, UUID, then the key in lines of 16 bytes.
pub(crate) fn volume_key_text(
    device: &str,
    (name, mode): (&str, &str),
    offset_sectors: u64,
    uuid: &str,
    key: &VolumeKey,
) -> Zeroizing<String> {
    let head = format!(
        "{}MK dump:\t",
        key_dump_head(device, (name, mode), offset_sectors, uuid, key.len())
    );
    let lines = key.len().div_ceil(16).max(1);
    let mut out = Zeroizing::new(String::with_capacity(
        head.len() + key.len() * 3 + lines * 3,
    ));
    let capacity = out.capacity();
    out.push_str(&head);
    for (i, line) in key.as_bytes().chunks(16).enumerate() {
        if i > 0 {
            out.push_str("\t\t");
        }
        for b in line {
            out.push_str(&crate::hex::encode(&[*b]));
            out.push(' ');
        }
        out.push('\n');
    }
    assert_eq!(out.capacity(), capacity, "the key dump grew past its size");
    out
}

#[cfg(test)]
mod key_dump_tests {
    use super::*;
    use crate::{format, FormatOptions, MemoryDevice, PbkdfParams};

    #[test]
    fn the_key_dump_is_cryptsetups_layout_and_never_grows() {
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams::insecure_fast();
        opts.digest_iterations = Some(1000);
        opts.volume_key = Some(VolumeKey::from_slice(&(0..64).collect::<Vec<u8>>()));
        let (dev, key) = format(
            MemoryDevice::new(20 << 20),
            &opts,
            &crate::Passphrase::from_slice(b"pw"),
        )
        .expect("format");
        let text = dump_volume_key_text(dev.header(), "/dev/vdb", &key);
        assert!(text.starts_with("LUKS header information for /dev/vdb\nCipher name:   \taes\nCipher mode:   \txts-plain64\nPayload offset:\t32768\n"), "{}", *text);
        assert!(text.contains("MK bits:       \t512\nMK dump:\t00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f \n\t\t10 11 "), "{}", *text);
        assert!(text.ends_with("3e 3f \n"), "{}", *text);
        assert!(text.len() <= text.capacity());
    }
}
