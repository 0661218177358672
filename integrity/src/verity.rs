//! dm-verity hash trees and superblocks, as `veritysetup format` writes them.
//!
//! In format 1 (the default) each data block is hashed as `H(salt || block)`; the digests are
//! packed into hash blocks (each entry padded to a power-of-two size, so a 4096-byte block holds
//! 128 SHA-256 or 128 SHA-1 entries); those blocks are hashed the same way level by level until
//! one block remains, whose salted hash is the root hash. Format 0, Chrome OS's original, hashes
//! `H(block || salt)` and packs the digests without padding (the same number per block, the
//! rest of the block zero). A single data block has no levels: its hash is the root hash. The
//! hash area holds an optional 512-byte superblock in its own hash block, then the levels from
//! the top (one block) down to level 0.

use luks2::{BlockIo, HashAlg};

use crate::{Error, Result};

/// Size of the on-disk superblock.
pub const SUPERBLOCK_SIZE: usize = 512;
/// Largest salt the superblock can hold.
pub const MAX_SALT: usize = 256;
const SIGNATURE: &[u8; 8] = b"verity\0\0";

/// Everything that defines a hash tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerityParams {
    /// Hash algorithm.
    pub hash: HashAlg,
    /// Data block size (512 to 4096, a power of two).
    pub data_block_size: u32,
    /// Hash block size (512 to 4096, a power of two).
    pub hash_block_size: u32,
    /// Number of data blocks covered.
    pub data_blocks: u64,
    /// Salt (up to 256 bytes).
    pub salt: Vec<u8>,
    /// UUID stored in the superblock.
    pub uuid: [u8; 16],
    /// Byte offset of the hash area (superblock first) on the hash device.
    pub hash_offset: u64,
    /// Whether a superblock precedes the tree.
    pub superblock: bool,
    /// The tree's format (veritysetup's `--format`, the kernel's version, the superblock's hash
    /// type): 1, or 0 for Chrome OS's original.
    pub hash_type: u32,
}

impl VerityParams {
    /// veritysetup's defaults (4096-byte blocks, superblock at offset 0) for `data_blocks`.
    pub fn new(data_blocks: u64, hash: HashAlg, salt: Vec<u8>) -> Self {
        Self {
            hash,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks,
            salt,
            uuid: [0; 16],
            hash_offset: 0,
            superblock: true,
            hash_type: 1,
        }
    }

    /// veritysetup's defaults with a fresh random 32-byte salt and random UUID.
    ///
    /// # Errors
    /// [`Error::Io`] if the system has no random source.
    pub fn random(data_blocks: u64, hash: HashAlg) -> Result<Self> {
        let mut salt = vec![0u8; 32];
        let mut uuid = [0u8; 16];
        let rng = |b: &mut [u8]| {
            getrandom::fill(b)
                .map_err(|e| Error::io("no random source", std::io::Error::other(e.to_string())))
        };
        rng(&mut salt)?;
        rng(&mut uuid)?;
        // A version 4, variant 1 UUID.
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        let mut p = Self::new(data_blocks, hash, salt);
        p.uuid = uuid;
        Ok(p)
    }

    /// Checks block sizes, salt length, block count and offsets.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad parameter.
    pub fn check(&self) -> Result<()> {
        if self.hash_type > 1 {
            return Err(Error::invalid(
                "hash type",
                format!("{} is not 0 or 1", self.hash_type),
            ));
        }
        for (what, v) in [
            ("data block size", self.data_block_size),
            ("hash block size", self.hash_block_size),
        ] {
            if !(512..=4096).contains(&v) || !v.is_power_of_two() {
                return Err(Error::invalid(
                    what,
                    format!("{v} is not a power of two from 512 to 4096"),
                ));
            }
        }
        if self.salt.len() > MAX_SALT {
            return Err(Error::invalid(
                "salt",
                format!("{} bytes is more than {MAX_SALT}", self.salt.len()),
            ));
        }
        if self.data_blocks == 0 {
            return Err(Error::invalid("data", "no data blocks"));
        }
        if !self.hash_offset.is_multiple_of(512) {
            return Err(Error::invalid("hash offset", "not a multiple of 512"));
        }
        // Every size below is then a plain sum or product that cannot overflow.
        let data_end = self
            .data_blocks
            .checked_mul(u64::from(self.data_block_size));
        let tree_end = self
            .hash_offset
            .checked_add(u64::from(self.hash_block_size))
            .zip(
                Layout::new(self)
                    .total_blocks()
                    .checked_mul(u64::from(self.hash_block_size)),
            )
            .and_then(|(start, tree)| start.checked_add(tree));
        if data_end.is_none() || tree_end.is_none() {
            return Err(Error::invalid(
                "data blocks",
                format!(
                    "{} blocks need more than 2^64 bytes of data or hash tree",
                    self.data_blocks
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `hash` holds the whole tree, before anything the size of the tree is
    /// allocated, and returns how many of the data blocks `data` holds (veritysetup's verify
    /// checks those, then fails where the device ends).
    ///
    /// # Errors
    /// [`Error::ShortDevice`] for a hash device too small; [`Error::Io`].
    fn data_blocks_held<D: BlockIo, H: BlockIo>(&self, data: &mut D, hash: &mut H) -> Result<u64> {
        let size = |what: &'static str, r: std::io::Result<u64>| {
            r.map_err(|e| Error::io(format!("cannot size the {what}"), e))
        };
        let hash_size = size("hash device", hash.size())?;
        if hash_size < self.tree_end() {
            return Err(Error::ShortDevice {
                what: "hash device",
                size: hash_size,
                need: self.tree_end(),
            });
        }
        let data_size = size("data device", data.size())?;
        Ok((data_size / u64::from(self.data_block_size)).min(self.data_blocks))
    }

    /// Byte position of the first tree block on the hash device, as veritysetup and the
    /// kernel place it: the first whole hash block after the superblock, or without one the
    /// hash block that holds --hash-offset.
    pub fn tree_offset(&self) -> u64 {
        let hbs = u64::from(self.hash_block_size);
        if self.superblock {
            (self.hash_offset + SUPERBLOCK_SIZE as u64).div_ceil(hbs) * hbs
        } else {
            self.hash_offset / hbs * hbs
        }
    }

    /// Byte position just past the tree.
    fn tree_end(&self) -> u64 {
        self.tree_offset() + self.hash_blocks() * u64::from(self.hash_block_size)
    }

    /// Number of hash blocks in the tree (the superblock's block not counted).
    pub fn hash_blocks(&self) -> u64 {
        Layout::new(self).total_blocks()
    }

    /// First tree block on the hash device, in hash blocks (the table's `hash_start`).
    pub fn hash_start_block(&self) -> u64 {
        self.tree_offset() / u64::from(self.hash_block_size)
    }

    /// Total bytes of the hash area (superblock and tree), from --hash-offset.
    pub fn hash_area_size(&self) -> u64 {
        self.tree_end().saturating_sub(self.hash_offset)
    }
}

/// How the tree's levels are sized and placed.
#[derive(Clone, Debug)]
struct Layout {
    /// Bytes from one entry to the next within a hash block.
    entry_size: usize,
    hashes_per_block: u64,
    hash_block_size: usize,
    /// Block count of each level, level 0 (over the data) first.
    counts: Vec<u64>,
}

impl Layout {
    fn new(p: &VerityParams) -> Self {
        let digest = p.hash.output_len() as u64;
        let fit = u64::from(p.hash_block_size) / digest;
        // The largest power of two that fits.
        let hashes_per_block = 1u64 << (63 - fit.leading_zeros());
        // As the kernel and veritysetup count them: a single data block has no tree (its
        // hash is the root hash).
        let mut counts = Vec::new();
        let mut n = p.data_blocks;
        while n > 1 {
            n = n.div_ceil(hashes_per_block);
            counts.push(n);
        }
        Self {
            entry_size: match p.hash_type {
                0 => digest as usize,
                _ => (u64::from(p.hash_block_size) / hashes_per_block) as usize,
            },
            hashes_per_block,
            hash_block_size: p.hash_block_size as usize,
            counts,
        }
    }

    /// Byte position of entry `i` of a level, from the level's start.
    fn entry_at(&self, i: u64) -> usize {
        (i / self.hashes_per_block) as usize * self.hash_block_size
            + (i % self.hashes_per_block) as usize * self.entry_size
    }

    fn total_blocks(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// First block of `level`, counted from the tree start: the top level comes first.
    fn level_start(&self, level: usize) -> u64 {
        self.counts[level + 1..].iter().sum()
    }
}

fn salted(p: &VerityParams, block: &[u8]) -> Vec<u8> {
    match p.hash_type {
        0 => p.hash.digest(&[block, &p.salt]),
        _ => p.hash.digest(&[&p.salt, block]),
    }
}

/// Whether `b` holds only zero bytes (16 at a time).
fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(16);
    words
        .by_ref()
        .all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

/// Hashes consecutive `block_size` blocks of `data` into the entries of `out`, which starts
/// at a hash block of a level, on all cores.
fn hash_blocks(p: &VerityParams, l: &Layout, data: &[u8], block_size: usize, out: &mut [u8]) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let blocks = data.len() / block_size;
    // Whole hash blocks for each thread, so that each fills its own part of `out`.
    let hpb = l.hashes_per_block as usize;
    let per = blocks.div_ceil(threads).next_multiple_of(hpb).max(hpb);
    let n = p.hash.output_len();
    // Free space in a file system image is mostly zeros: their hash is computed once.
    let zero_hash = salted(p, &vec![0u8; block_size]);
    let zero_hash = &zero_hash;
    std::thread::scope(|s| {
        for (chunk, dst) in data
            .chunks(per * block_size)
            .zip(out.chunks_mut(per / hpb * l.hash_block_size))
        {
            s.spawn(move || {
                for (i, b) in chunk.chunks(block_size).enumerate() {
                    let e = &mut dst[l.entry_at(i as u64)..][..n];
                    if is_zero(b) {
                        e.copy_from_slice(zero_hash);
                    } else {
                        e.copy_from_slice(&salted(p, b));
                    }
                }
            });
        }
    });
}

/// Level 0, the salted hashes of the data blocks packed into hash blocks, a chunk at a time
/// (about 16 MiB of data; the level is never whole in memory), over the first `blocks` data
/// blocks: `each(first, hash_blocks)` gets the hash blocks over the data blocks from `first`
/// on.
fn level0_chunks<D: BlockIo>(
    data: &mut D,
    p: &VerityParams,
    l: &Layout,
    blocks: u64,
    mut each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let dbs = p.data_block_size as usize;
    let hpb = l.hashes_per_block;
    // A whole number of hash blocks per chunk.
    let chunk_blocks = ((16u64 << 20) / dbs as u64).next_multiple_of(hpb);
    let mut buf = vec![0u8; chunk_blocks as usize * dbs];
    let mut level = vec![0u8; (chunk_blocks / hpb) as usize * l.hash_block_size];
    let mut block = 0u64;
    while block < blocks {
        let n = chunk_blocks.min(blocks - block);
        let b = &mut buf[..n as usize * dbs];
        data.read_exact_at(b, block * dbs as u64)
            .map_err(|e| Error::io(format!("cannot read data block {block}"), e))?;
        let out = &mut level[..n.div_ceil(hpb) as usize * l.hash_block_size];
        out.fill(0);
        hash_blocks(p, l, b, dbs, out);
        each(block, out)?;
        block += n;
    }
    Ok(())
}

/// Hashes the hash blocks `blocks` (blocks `first`.. of their level) into their entries of
/// the level above, `above`.
fn hash_into(p: &VerityParams, l: &Layout, blocks: &[u8], first: u64, above: &mut [u8]) {
    let n = p.hash.output_len();
    for (i, b) in blocks.chunks(l.hash_block_size).enumerate() {
        let at = l.entry_at(first + i as u64);
        above[at..at + n].copy_from_slice(&salted(p, b));
    }
}

/// The level above `below` (which holds `count` hash blocks).
fn level_above(p: &VerityParams, l: &Layout, below: &[u8], count: u64) -> Vec<u8> {
    let hbs = p.hash_block_size as usize;
    let mut next = vec![0u8; (count.div_ceil(l.hashes_per_block) as usize) * hbs];
    hash_blocks(p, l, &below[..count as usize * hbs], hbs, &mut next);
    next
}

fn root_of(p: &VerityParams, top: &[u8]) -> Vec<u8> {
    salted(p, &top[..p.hash_block_size as usize])
}

/// The root hash of a tree without levels (one data block): that block's hash.
fn single_block_root<D: BlockIo>(data: &mut D, p: &VerityParams) -> Result<Vec<u8>> {
    let mut block = vec![0u8; p.data_block_size as usize];
    data.read_exact_at(&mut block, 0)
        .map_err(|e| Error::io("cannot read data block 0", e))?;
    Ok(salted(p, &block))
}

/// Computes the tree over `data` and writes the superblock (if enabled) and the tree to `hash`.
/// Returns the root hash.
///
/// # Errors
/// [`Error::Invalid`] for bad parameters, [`Error::Io`].
pub fn format<D: BlockIo, H: BlockIo>(
    data: &mut D,
    hash: &mut H,
    p: &VerityParams,
) -> Result<Vec<u8>> {
    p.check()?;
    let l = Layout::new(p);
    let hbs = p.hash_block_size as usize;
    let level_at = |i: usize| p.tree_offset() + l.level_start(i) * hbs as u64;
    // Level 0 goes to the hash device as it is computed; the levels above (each one entry
    // per block below: 1/128 of it for SHA-256 in 4 KiB blocks, 1/16 in 512-byte blocks)
    // are built in memory from it.
    let mut upper: Vec<Vec<u8>> = Vec::new();
    let root = if l.counts.is_empty() {
        single_block_root(data, p)?
    } else {
        let mut above = vec![0u8; l.counts.get(1).map_or(hbs, |&c| c as usize * hbs)];
        let one_level = l.counts.len() == 1;
        level0_chunks(data, p, &l, p.data_blocks, |first, blocks| {
            hash.write_all_at(blocks, level_at(0) + l.entry_at(first) as u64)
                .map_err(|e| Error::io("cannot write hash level 0", e))?;
            match one_level {
                true => above.copy_from_slice(&blocks[..hbs]),
                false => hash_into(p, &l, blocks, first / l.hashes_per_block, &mut above),
            }
            Ok(())
        })?;
        if one_level {
            root_of(p, &above)
        } else {
            upper.push(above);
            for i in 2..l.counts.len() {
                let next = level_above(p, &l, &upper[i - 2], l.counts[i - 1]);
                upper.push(next);
            }
            root_of(p, &upper[upper.len() - 1])
        }
    };
    for (i, level) in upper.iter().enumerate() {
        hash.write_all_at(level, level_at(i + 1))
            .map_err(|e| Error::io(format!("cannot write hash level {}", i + 1), e))?;
    }
    // The superblock last, so that a failure writes no new one over an incomplete tree;
    // the rest of its block as it was (zeros in a new file, as veritysetup leaves it).
    if p.superblock {
        let mut sb = vec![0u8; (p.tree_offset() - p.hash_offset) as usize];
        let _ = hash.read_exact_at(&mut sb, p.hash_offset);
        sb[..SUPERBLOCK_SIZE].copy_from_slice(&Superblock::from_params(p).encode());
        hash.write_all_at(&sb, p.hash_offset)
            .map_err(|e| Error::io("cannot write the verity superblock", e))?;
    }
    hash.sync()
        .map_err(|e| Error::io("cannot sync the hash device", e))?;
    Ok(root)
}

/// Where veritysetup finds unused bytes of `level` that are not zero: the start of the
/// first such run, in its order (each entry's padding after the entry, then the end of each
/// block after its last entry; of the last block only when the level is `whole`). `count`
/// entries of `n` bytes are used.
fn first_spare(l: &Layout, level: &[u8], count: u64, n: usize, whole: bool) -> Option<usize> {
    let dirty = |from: usize, to: usize| from < to && level[from..to].iter().any(|&b| b != 0);
    let hpb = l.hashes_per_block;
    for block in 0..count.div_ceil(hpb) {
        let mut end = 0;
        for e in block * hpb..((block + 1) * hpb).min(count) {
            let at = l.entry_at(e);
            if dirty(at + n, at + l.entry_size) {
                return Some(at + n);
            }
            end = at + l.entry_size;
        }
        let block_end = (block as usize + 1) * l.hash_block_size;
        let last = block + 1 == count.div_ceil(hpb);
        if (whole || !last) && dirty(end, block_end) {
            return Some(end);
        }
    }
    None
}

/// Checks every data and hash block against `root`, as the kernel would on reading them.
///
/// # Errors
/// [`Error::Corrupt`] naming the first data block whose hash does not match level 0, or else the
/// first hash block (numbered from the tree start) whose hash does not match the level above;
/// [`Error::SpareNotZero`] for unused hash-block bytes that are not zero; [`Error::ShortDevice`]
/// for a hash device too small, or a data device that ends (after the blocks it holds were
/// checked); [`Error::WrongRootHash`]; [`Error::Io`].
pub fn verify<D: BlockIo, H: BlockIo>(
    data: &mut D,
    hash: &mut H,
    p: &VerityParams,
    root: &[u8],
) -> Result<()> {
    p.check()?;
    let held = p.data_blocks_held(data, hash)?;
    let short = || Error::ShortDevice {
        what: "data device",
        size: held * u64::from(p.data_block_size),
        need: p.data_blocks * u64::from(p.data_block_size),
    };
    let l = Layout::new(p);
    if l.counts.is_empty() {
        if held == 0 {
            return Err(short());
        }
        return match single_block_root(data, p)? == root {
            true => Ok(()),
            false => Err(Error::WrongRootHash),
        };
    }
    let hbs = p.hash_block_size as usize;
    let n = p.hash.output_len();
    let level_at = |i: usize| p.tree_offset() + l.level_start(i) * hbs as u64;
    // The levels above level 0 (small) in memory; level 0 a chunk at a time.
    let mut stored: Vec<Vec<u8>> = vec![Vec::new()];
    for i in 1..l.counts.len() {
        let mut v = vec![0u8; l.counts[i] as usize * hbs];
        hash.read_exact_at(&mut v, level_at(i))
            .map_err(|e| Error::io(format!("cannot read hash level {i}"), e))?;
        stored.push(v);
    }
    // Bottom up, as veritysetup verifies: the data against level 0, each level against the
    // one above, then the top block against the root hash. The first mismatch is named by
    // its byte position on its own device, as veritysetup names it.
    let one_level = l.counts.len() == 1;
    let mut above = vec![0u8; l.counts.get(1).map_or(hbs, |&c| c as usize * hbs)];
    let mut stored0 = Vec::new();
    level0_chunks(data, p, &l, held, |first, computed| {
        stored0.resize(computed.len(), 0);
        let at = level_at(0) + l.entry_at(first) as u64;
        hash.read_exact_at(&mut stored0, at)
            .map_err(|e| Error::io("cannot read hash level 0", e))?;
        let count = (held - first).min((computed.len() / hbs) as u64 * l.hashes_per_block);
        // Short of the data's end, the end of a hash block is checked once its entries are.
        let whole = held == p.data_blocks || count.is_multiple_of(l.hashes_per_block);
        if let Some(found) = first_error(&l, computed, &stored0, count, n, at, whole) {
            let b = first + found?;
            return Err(Error::Corrupt {
                area: "data",
                block: b,
                offset: b * u64::from(p.data_block_size),
            });
        }
        match one_level {
            true => above.copy_from_slice(&stored0[..hbs]),
            false => hash_into(p, &l, &stored0, first / l.hashes_per_block, &mut above),
        }
        Ok(())
    })?;
    if held < p.data_blocks {
        return Err(short());
    }
    if !one_level {
        for i in 1..l.counts.len() {
            let computed = match i {
                1 => std::mem::take(&mut above),
                _ => level_above(p, &l, &stored[i - 1], l.counts[i - 1]),
            };
            if let Some(found) = first_error(
                &l,
                &computed,
                &stored[i],
                l.counts[i - 1],
                n,
                level_at(i),
                true,
            ) {
                let block = l.level_start(i - 1) + found?;
                return Err(Error::Corrupt {
                    area: "hash",
                    block,
                    offset: p.tree_offset() + block * u64::from(p.hash_block_size),
                });
            }
        }
        above = stored.pop().unwrap_or_default();
    }
    if root_of(p, &above) != root {
        return Err(Error::WrongRootHash);
    }
    Ok(())
}

/// The first error of a level (or a run of its blocks from a hash block boundary) at byte
/// `at` on the hash device, in veritysetup's order: an entry's hash, then the unused bytes
/// after it. `Ok(entry)` for the first of the `count` entries of `stored` that differs from
/// `computed`; [`Error::SpareNotZero`] for unused bytes that are not zero (at the end of the
/// last block too when the run is `whole`).
fn first_error(
    l: &Layout,
    computed: &[u8],
    stored: &[u8],
    count: u64,
    n: usize,
    at: u64,
    whole: bool,
) -> Option<Result<u64>> {
    let mismatch = (0..count).find(|&b| {
        let e = l.entry_at(b);
        computed[e..][..n] != stored[e..][..n]
    });
    let spare = first_spare(l, stored, count, n, whole);
    let spare_error = |x: usize| {
        Err(Error::SpareNotZero {
            offset: at + x as u64,
        })
    };
    match (mismatch, spare) {
        (Some(b), Some(x)) if x < l.entry_at(b) => Some(spare_error(x)),
        (Some(b), _) => Some(Ok(b)),
        (None, Some(x)) => Some(spare_error(x)),
        (None, None) => None,
    }
}

/// A UUID's canonical text form (`8-4-4-4-12` lowercase hex).
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = to_hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses a UUID in canonical text form.
///
/// # Errors
/// [`Error::Invalid`] if `s` is not one.
pub fn parse_uuid(s: &str) -> Result<[u8; 16]> {
    let bad = || Error::invalid("uuid", format!("'{s}' is not a UUID"));
    let groups: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return Err(bad());
    }
    let hex = parse_hex(&groups.concat()).map_err(|_| bad())?;
    hex.try_into().map_err(|_| bad())
}

/// Lowercase hex of `b` (root hashes, salts).
pub fn to_hex(b: &[u8]) -> String {
    luks2::hex::encode(b)
}

/// Parses a hex string (either case) into bytes.
///
/// # Errors
/// [`Error::Invalid`] for an odd length or a non-hex character.
pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    luks2::hex::decode(s).map_err(|_| Error::invalid("hex string", format!("'{s}' is not hex")))
}

/// Checks only the top hash block (or, for a single data block, that block) against `root`:
/// a cheap test, before mapping, that the root hash belongs to this tree (the kernel checks
/// the rest as blocks are read).
///
/// # Errors
/// [`Error::WrongRootHash`]; [`Error::Invalid`] for bad parameters; [`Error::Io`].
pub fn check_root<D: BlockIo, H: BlockIo>(
    data: &mut D,
    hash: &mut H,
    p: &VerityParams,
    root: &[u8],
) -> Result<()> {
    p.check()?;
    let computed = if Layout::new(p).counts.is_empty() {
        single_block_root(data, p)?
    } else {
        let mut top = vec![0u8; p.hash_block_size as usize];
        hash.read_exact_at(&mut top, p.tree_offset())
            .map_err(|e| Error::io("cannot read the top hash block", e))?;
        root_of(p, &top)
    };
    if computed == root {
        Ok(())
    } else {
        Err(Error::WrongRootHash)
    }
}

/// Largest block size a verity superblock may give (veritysetup's limit; the kernel maps
/// blocks up to the page size, and [`VerityParams::check`] up to 4096 bytes).
const MAX_BLOCK: u32 = 512 * 1024;

/// Why a verity superblock is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuperblockFault {
    /// No `verity` signature: not a verity hash device (or not at this offset).
    NoSignature,
    /// A superblock version other than 1.
    Version(u32),
    /// A hash type (tree format) other than 0 and 1.
    HashType(u32),
    /// A block size no verity device has (not a power of two from 512 bytes to 512 KiB).
    BlockSize(u32),
    /// A hash algorithm this build does not know: the stored name (at most its 32 bytes).
    Algorithm(String),
    /// A salt size over 256 bytes.
    SaltSize(u16),
}

impl std::fmt::Display for SuperblockFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuperblockFault::NoSignature => f.write_str("no verity signature"),
            SuperblockFault::Version(v) => write!(f, "unsupported superblock version {v}"),
            SuperblockFault::HashType(t) => write!(f, "hash type {t} is not supported"),
            SuperblockFault::BlockSize(b) => write!(
                f,
                "block size {b} is not a power of two from 512 to {MAX_BLOCK}"
            ),
            SuperblockFault::Algorithm(a) => write!(f, "unsupported hash '{a}'"),
            SuperblockFault::SaltSize(n) => {
                write!(f, "salt of {n} bytes is longer than {MAX_SALT}")
            }
        }
    }
}

/// The 512-byte verity superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Hash type: the tree's format (1, or 0 for Chrome OS's original).
    pub hash_type: u32,
    /// UUID.
    pub uuid: [u8; 16],
    /// Hash algorithm name.
    pub algorithm: String,
    /// Data block size.
    pub data_block_size: u32,
    /// Hash block size.
    pub hash_block_size: u32,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// Salt.
    pub salt: Vec<u8>,
}

impl Superblock {
    fn from_params(p: &VerityParams) -> Self {
        Self {
            hash_type: p.hash_type,
            uuid: p.uuid,
            algorithm: p.hash.name().to_owned(),
            data_block_size: p.data_block_size,
            hash_block_size: p.hash_block_size,
            data_blocks: p.data_blocks,
            salt: p.salt.clone(),
        }
    }

    /// The on-disk bytes (little endian).
    pub fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&self.hash_type.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        let alg = self.algorithm.as_bytes();
        b[32..32 + alg.len().min(31)].copy_from_slice(&alg[..alg.len().min(31)]);
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = &self.salt[..self.salt.len().min(MAX_SALT)];
        b[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        b[88..88 + salt.len()].copy_from_slice(salt);
        b
    }

    /// Parses and checks a superblock, in veritysetup's order: signature, version, hash type,
    /// block sizes, hash algorithm, salt size.
    ///
    /// # Errors
    /// [`Error::VeritySuperblock`] with the first fault.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let bad = |f: SuperblockFault| Err(Error::VeritySuperblock(f));
        if b.len() < SUPERBLOCK_SIZE || &b[..8] != SIGNATURE {
            return bad(SuperblockFault::NoSignature);
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        match u32_at(8) {
            1 => {}
            v => return bad(SuperblockFault::Version(v)),
        }
        let hash_type = u32_at(12);
        if hash_type > 1 {
            return bad(SuperblockFault::HashType(hash_type));
        }
        let (data_block_size, hash_block_size) = (u32_at(64), u32_at(68));
        for size in [data_block_size, hash_block_size] {
            if !(512..=MAX_BLOCK).contains(&size) || !size.is_power_of_two() {
                return bad(SuperblockFault::BlockSize(size));
            }
        }
        // The name as veritysetup reads it: up to a NUL, at most the field's 32 bytes. A known
        // name is plain ASCII and leaves room for its NUL, so it encodes back the same.
        let field = &b[32..64];
        let end = field.iter().position(|&c| c == 0);
        let algorithm = String::from_utf8_lossy(&field[..end.unwrap_or(field.len())]).into_owned();
        if end.is_none() || HashAlg::parse(&algorithm).is_err() {
            return bad(SuperblockFault::Algorithm(algorithm));
        }
        let salt_len = u16::from_le_bytes([b[80], b[81]]);
        if usize::from(salt_len) > MAX_SALT {
            return bad(SuperblockFault::SaltSize(salt_len));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        let mut blocks = [0u8; 8];
        blocks.copy_from_slice(&b[72..80]);
        Ok(Self {
            hash_type,
            uuid,
            algorithm,
            data_block_size,
            hash_block_size,
            data_blocks: u64::from_le_bytes(blocks),
            salt: b[88..88 + usize::from(salt_len)].to_vec(),
        })
    }

    /// Reads and parses the superblock at `offset` of the hash device.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::VeritySuperblock`].
    pub fn read<H: BlockIo>(hash: &mut H, offset: u64) -> Result<Self> {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        hash.read_exact_at(&mut b, offset)
            .map_err(|e| Error::io("reading the verity superblock", e))?;
        Self::parse(&b)
    }

    /// Parameters for the tree this superblock describes, at `hash_offset`.
    ///
    /// # Errors
    /// [`Error::VeritySuperblock`] for an unsupported hash type or algorithm;
    /// [`Error::Invalid`] for parameters no kernel maps (see [`VerityParams::check`]).
    pub fn params(&self, hash_offset: u64) -> Result<VerityParams> {
        if self.hash_type > 1 {
            return Err(Error::VeritySuperblock(SuperblockFault::HashType(
                self.hash_type,
            )));
        }
        let hash = HashAlg::parse(&self.algorithm).map_err(|_| {
            Error::VeritySuperblock(SuperblockFault::Algorithm(self.algorithm.clone()))
        })?;
        let p = VerityParams {
            hash,
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            data_blocks: self.data_blocks,
            salt: self.salt.clone(),
            uuid: self.uuid,
            hash_offset,
            superblock: true,
            hash_type: self.hash_type,
        };
        p.check()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (found by the `superblocks` fuzz target): a hostile superblock with a
    /// non-ASCII hash name parsed into a longer string that did not encode back; such names,
    /// and names without a terminating NUL, are now refused.
    #[test]
    fn hostile_algorithm_names_are_refused() {
        let crash = include_bytes!("../tests/data_fail_verity_superblock_non_ascii_algorithm.bin");
        assert!(Superblock::parse(crash).is_err());
        let p = VerityParams::new(8, HashAlg::Sha256, vec![1; 4]);
        let good = Superblock::from_params(&p).encode();
        assert_eq!(Superblock::parse(&good).unwrap().algorithm, "sha256");
        let fault = |b: &[u8]| match Superblock::parse(b) {
            Err(Error::VeritySuperblock(f)) => f,
            other => panic!("{other:?}"),
        };
        let mut b = good;
        b[33] = 0xff;
        assert_eq!(
            fault(&b),
            SuperblockFault::Algorithm("s\u{fffd}a256".into())
        );
        let mut b = good;
        b[32..64].fill(b'a');
        assert_eq!(fault(&b), SuperblockFault::Algorithm("a".repeat(32)));
        let mut b = good;
        b[32..64].fill(0);
        assert_eq!(fault(&b), SuperblockFault::Algorithm(String::new()));
    }

    /// Each fault is the first one veritysetup would report for the same bytes: signature,
    /// version, hash type, block sizes, algorithm, then salt size.
    #[test]
    fn superblock_faults_come_in_veritysetups_order() {
        let good =
            Superblock::from_params(&VerityParams::new(8, HashAlg::Sha256, vec![1; 4])).encode();
        let with = |edits: &[(usize, &[u8])]| {
            let mut b = good;
            for (at, bytes) in edits {
                b[*at..*at + bytes.len()].copy_from_slice(bytes);
            }
            match Superblock::parse(&b) {
                Err(Error::VeritySuperblock(f)) => f,
                other => panic!("{other:?}"),
            }
        };
        let salt: &[u8] = &300u16.to_le_bytes();
        let alg: &[u8] = b"md5\0";
        let bs: &[u8] = &1000u32.to_le_bytes();
        let ty: &[u8] = &2u32.to_le_bytes();
        let ver: &[u8] = &2u32.to_le_bytes();
        assert_eq!(with(&[(80, salt)]), SuperblockFault::SaltSize(300));
        assert_eq!(
            with(&[(80, salt), (32, alg)]),
            SuperblockFault::Algorithm("md5".into())
        );
        assert_eq!(
            with(&[(80, salt), (32, alg), (68, bs)]),
            SuperblockFault::BlockSize(1000)
        );
        assert_eq!(
            with(&[(32, alg), (64, bs), (12, ty)]),
            SuperblockFault::HashType(2)
        );
        assert_eq!(with(&[(12, ty), (8, ver)]), SuperblockFault::Version(2));
        assert_eq!(
            with(&[(8, ver), (0, b"Verity")]),
            SuperblockFault::NoSignature
        );
        assert!(Superblock::parse(&good[..511]).is_err());
        // Hash blocks up to 512 KiB are a superblock veritysetup reads; the tree is then
        // refused as parameters (above 4096 bytes, no page-sized kernel maps it).
        let big: &[u8] = &8192u32.to_le_bytes();
        let sb = Superblock::parse(&{
            let mut b = good;
            b[68..72].copy_from_slice(big);
            b
        })
        .expect("parsed");
        assert!(matches!(sb.params(0), Err(Error::Invalid { .. })));
    }

    /// Found by review: a superblock's data block count near 2^64 overflowed the hash area's
    /// size, and a large one sized buffers for a tree the devices do not hold.
    #[test]
    fn hostile_block_counts_are_refused_before_any_allocation() {
        let mut p = VerityParams::new(u64::MAX, HashAlg::Sha256, vec![1; 4]);
        let err = Superblock::from_params(&p).params(0).unwrap_err();
        assert!(err.to_string().contains("more than 2^64 bytes"), "{err}");
        // 2^40 blocks fit the arithmetic but not these 1 MiB devices: refused before a
        // 32 TiB level is allocated.
        p.data_blocks = 1 << 40;
        let mut data = luks2::MemoryDevice::new(1 << 20);
        let mut hash = luks2::MemoryDevice::new(1 << 20);
        let err = verify(&mut data, &mut hash, &p, &[0; 32]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ShortDevice {
                    what: "hash device",
                    size: 1048576,
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A tree over `p.data_blocks` blocks of a byte pattern: the data, the hash device and
    /// the root hash.
    fn formatted(p: &VerityParams) -> (Vec<u8>, luks2::MemoryDevice, Vec<u8>) {
        let len = p.data_blocks * u64::from(p.data_block_size);
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut hash = luks2::MemoryDevice::new(p.hash_area_size() as usize);
        let root = format(
            &mut luks2::MemoryDevice::from_vec(bytes.clone()),
            &mut hash,
            p,
        )
        .expect("format");
        (bytes, hash, root)
    }

    /// Found by review: on a short data device, the unused end of a hash block whose entries
    /// were all checked is checked too (format 0 leaves 1536 bytes of each SHA-1 block unused).
    #[test]
    fn a_short_data_device_still_has_its_full_hash_blocks_checked() {
        let mut p = VerityParams::new(300, HashAlg::Sha1, vec![1; 4]);
        p.hash_type = 0;
        let (bytes, mut hash, root) = formatted(&p);
        // Level 0 follows the one block of level 1; 128 entries of 20 bytes per block.
        let spare = p.tree_offset() + 4096 + 128 * 20;
        hash.write_all_at(&[1], spare + 100).expect("write");
        let mut short = luks2::MemoryDevice::from_vec(bytes[..128 * 4096].to_vec());
        let err = verify(&mut short, &mut hash, &p, &root).unwrap_err();
        assert!(
            matches!(err, Error::SpareNotZero { offset } if offset == spare),
            "{err}"
        );
    }

    /// As veritysetup, verify checks the data blocks a short data device holds, names the
    /// first bad one, and otherwise fails where the device ends.
    #[test]
    fn a_short_data_device_is_checked_up_to_its_end() {
        for blocks in [1u64, 300] {
            let p = VerityParams::new(blocks, HashAlg::Sha256, vec![1; 4]);
            let (bytes, mut hash, root) = formatted(&p);
            // Short by a block and a half: the whole blocks before it are checked.
            let held = ((blocks * 4096).saturating_sub(6144)) as usize;
            let mut short = luks2::MemoryDevice::from_vec(bytes[..held].to_vec());
            let err = verify(&mut short, &mut hash, &p, &root).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::ShortDevice {
                        what: "data device",
                        ..
                    }
                ),
                "{blocks}: {err}"
            );
            if blocks > 2 {
                let mut bad = bytes[..held].to_vec();
                bad[4096 * 7 + 1] ^= 1;
                let err = verify(
                    &mut luks2::MemoryDevice::from_vec(bad),
                    &mut hash,
                    &p,
                    &root,
                )
                .unwrap_err();
                assert!(matches!(err, Error::Corrupt { block: 7, .. }), "{err}");
            }
        }
    }
}
