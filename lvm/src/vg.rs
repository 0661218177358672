//! A volume group as its metadata text describes it: physical volumes, logical volumes made
//! of linear segments, and the changes the full-disk boot makes (create an LV from free
//! extents, extend one, record a grown PV). Every change edits the parsed tree, so what this
//! crate does not model is written back untouched.

use crate::text::{Items, Node, Value};
use crate::{Error, Result};

/// One physical volume of the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pv {
    /// Its key in the metadata (`pv0`).
    pub key: String,
    /// Its UUID without dashes (matches the label's).
    pub uuid: String,
    /// Where the first extent starts, in sectors.
    pub pe_start: u64,
    /// Extents on it.
    pub pe_count: u64,
}

/// A run of extents: `count` logical extents from `start` on `pv` from physical extent `pe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First logical extent of the LV.
    pub start: u64,
    /// Extents.
    pub count: u64,
    /// The PV's key.
    pub pv: String,
    /// First physical extent on it.
    pub pe: u64,
}

/// A logical volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lv {
    /// Its name.
    pub name: String,
    /// Its UUID without dashes.
    pub uuid: String,
    /// Its segments, in logical order.
    pub segments: Vec<Segment>,
}

impl Lv {
    /// Its size in extents.
    pub fn extents(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }
}

/// A parsed volume group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeGroup {
    /// Its name.
    pub name: String,
    /// Its UUID without dashes.
    pub uuid: String,
    /// Metadata sequence number.
    pub seqno: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// Physical volumes.
    pub pvs: Vec<Pv>,
    /// Logical volumes.
    pub lvs: Vec<Lv>,
    tree: Vec<Node>,
}

fn int(items: &Vec<Node>, path: &str, key: &str) -> Result<u64> {
    match items.field(key) {
        Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
        Some(_) => Err(Error::metadata(
            format!("{path}.{key}"),
            "not a number >= 0",
        )),
        None => Err(Error::metadata(format!("{path}.{key}"), "missing")),
    }
}

fn string<'a>(items: &'a Vec<Node>, path: &str, key: &str) -> Result<&'a str> {
    match items.field(key) {
        Some(Value::Str(s)) => Ok(s),
        Some(_) => Err(Error::metadata(format!("{path}.{key}"), "not a string")),
        None => Err(Error::metadata(format!("{path}.{key}"), "missing")),
    }
}

/// An lvm2 id as written in metadata: 32 id characters, dashes ignored.
fn id(items: &Vec<Node>, path: &str) -> Result<String> {
    let raw: String = string(items, path, "id")?
        .chars()
        .filter(|&c| c != '-')
        .collect();
    if raw.len() != 32
        || !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#".contains(c))
    {
        return Err(Error::metadata(
            format!("{path}.id"),
            "not a 32-character id",
        ));
    }
    Ok(raw)
}

fn sections(items: &[Node]) -> impl Iterator<Item = (&String, &Vec<Node>)> {
    items.iter().filter_map(|n| match n {
        Node::Section(k, v) => Some((k, v)),
        Node::Field(..) => None,
    })
}

/// An id in lvm2's 6-4-4-4-4-4-6 form.
pub(crate) fn dashed(uuid: &str) -> String {
    let mut out = String::with_capacity(38);
    for (i, c) in uuid.chars().enumerate() {
        if [6, 10, 14, 18, 22, 26].contains(&i) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// A new random lvm2 id (32 characters of `[0-9a-zA-Z]`).
pub(crate) fn random_id() -> Result<String> {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut b = [0u8; 64];
        getrandom::fill(&mut b).map_err(|_| Error::Random)?;
        // 248 = 4 * 62: no bias.
        out.extend(
            b.iter()
                .filter(|&&x| x < 248)
                .map(|&x| CHARS[usize::from(x % 62)] as char)
                .take(32 - out.len()),
        );
    }
    Ok(out)
}

impl VolumeGroup {
    /// Reads the typed view of a parsed metadata text (the one top-level section is the VG).
    /// Only linear LVs are modelled: a segment of another type, or striped over several PVs,
    /// makes the group unsupported here.
    ///
    /// # Errors
    /// [`Error::Metadata`] naming a missing or bad field; [`Error::Unsupported`].
    pub fn from_tree(tree: Vec<Node>) -> Result<Self> {
        if tree.field("contents") != Some(&Value::Str("Text Format Volume Group".into()))
            || tree.field("version") != Some(&Value::Int(1))
        {
            return Err(Error::metadata(
                "contents",
                "not text format volume group version 1",
            ));
        }
        let (name, vg) = {
            let mut vgs = sections(&tree);
            let first = vgs
                .next()
                .ok_or_else(|| Error::metadata("", "no volume group section"))?;
            if vgs.next().is_some() {
                return Err(Error::metadata("", "more than one volume group section"));
            }
            first
        };
        let (name, path) = (name.clone(), name.clone());
        let extent_size = int(vg, &path, "extent_size")?;
        if extent_size == 0 {
            return Err(Error::metadata(format!("{path}.extent_size"), "zero"));
        }
        let mut pvs = Vec::new();
        for (key, pv) in sections(vg.section("physical_volumes").map_or(&[][..], |v| v)) {
            let p = format!("{path}.physical_volumes.{key}");
            pvs.push(Pv {
                key: key.clone(),
                uuid: id(pv, &p)?,
                pe_start: int(pv, &p, "pe_start")?,
                pe_count: int(pv, &p, "pe_count")?,
            });
        }
        let mut lvs = Vec::new();
        for (lv_name, lv) in sections(vg.section("logical_volumes").map_or(&[][..], |v| v)) {
            let p = format!("{path}.logical_volumes.{lv_name}");
            lvs.push(Lv {
                name: lv_name.clone(),
                uuid: id(lv, &p)?,
                segments: segments(lv, &p, &pvs)?,
            });
        }
        let vg = VolumeGroup {
            name,
            uuid: id(vg, &path)?,
            seqno: int(vg, &path, "seqno")?,
            extent_size,
            pvs,
            lvs,
            tree: Vec::new(),
        };
        vg.check_extents()?;
        Ok(VolumeGroup { tree, ..vg })
    }

    /// No physical extent used twice or past its PV's end.
    fn check_extents(&self) -> Result<()> {
        for pv in &self.pvs {
            let mut used: Vec<(u64, u64, &str)> = self
                .lvs
                .iter()
                .flat_map(|lv| lv.segments.iter().map(move |s| (s, &lv.name)))
                .filter(|(s, _)| s.pv == pv.key)
                .map(|(s, n)| (s.pe, s.pe + s.count, n.as_str()))
                .collect();
            used.sort_unstable();
            for w in used.windows(2) {
                if w[1].0 < w[0].1 {
                    return Err(Error::metadata(
                        format!("{}.logical_volumes.{}", self.name, w[1].2),
                        format!("its extents overlap {}'s", w[0].2),
                    ));
                }
            }
            if let Some(&(_, end, lv)) = used.last() {
                if end > pv.pe_count {
                    return Err(Error::metadata(
                        format!("{}.logical_volumes.{lv}", self.name),
                        format!(
                            "extents past the end of {} ({} extents)",
                            pv.key, pv.pe_count
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tree to write back.
    pub(crate) fn tree(&self) -> &[Node] {
        &self.tree
    }

    /// The logical volume `name`.
    pub fn lv(&self, name: &str) -> Option<&Lv> {
        self.lvs.iter().find(|l| l.name == name)
    }

    /// The PV with key `key`.
    pub fn pv(&self, key: &str) -> Option<&Pv> {
        self.pvs.iter().find(|p| p.key == key)
    }

    /// The device-mapper name lvm2 gives an LV: `<vg>-<lv>` with dashes in either doubled.
    pub fn dm_name(&self, lv: &Lv) -> String {
        format!(
            "{}-{}",
            self.name.replace('-', "--"),
            lv.name.replace('-', "--")
        )
    }

    /// The device-mapper UUID lvm2 gives an LV: `LVM-<vg uuid><lv uuid>`.
    pub fn dm_uuid(&self, lv: &Lv) -> String {
        format!("LVM-{}{}", self.uuid, lv.uuid)
    }

    /// The LV's table as lvm2 loads it: one `linear` line per segment, `(start, length,
    /// pv key, offset)` in sectors, the offset on the PV being `pe_start + pe * extent_size`.
    ///
    /// # Errors
    /// [`Error::Metadata`] for a size that overflows.
    pub fn linear_table(&self, lv: &Lv) -> Result<Vec<(u64, u64, String, u64)>> {
        let es = self.extent_size;
        let overflow = || Error::metadata(format!("{}.{}", self.name, lv.name), "size overflows");
        lv.segments
            .iter()
            .map(|s| {
                let pv = self.pv(&s.pv).ok_or_else(overflow)?;
                let start = s.start.checked_mul(es).ok_or_else(overflow)?;
                let len = s.count.checked_mul(es).ok_or_else(overflow)?;
                let off =
                    s.pe.checked_mul(es)
                        .and_then(|o| o.checked_add(pv.pe_start))
                        .ok_or_else(overflow)?;
                Ok((start, len, s.pv.clone(), off))
            })
            .collect()
    }

    /// Free extent runs on `pv`, lowest first: `(first pe, count)`.
    pub fn free_runs(&self, pv: &Pv) -> Vec<(u64, u64)> {
        let mut used: Vec<(u64, u64)> = self
            .lvs
            .iter()
            .flat_map(|lv| lv.segments.iter())
            .filter(|s| s.pv == pv.key)
            .map(|s| (s.pe, s.pe + s.count))
            .collect();
        used.sort_unstable();
        let mut free = Vec::new();
        let mut at = 0;
        for (a, b) in used {
            if a > at {
                free.push((at, a - at));
            }
            at = at.max(b);
        }
        if pv.pe_count > at {
            free.push((at, pv.pe_count - at));
        }
        free
    }

    /// Free extents in the whole group.
    pub fn free_extents(&self) -> u64 {
        self.pvs
            .iter()
            .map(|p| self.free_runs(p).iter().map(|r| r.1).sum::<u64>())
            .sum()
    }

    /// Segments covering `extents` from the free runs (first fit; several runs if no single
    /// one is large enough), from logical extent `start`.
    fn allocate(&self, start: u64, extents: u64) -> Result<Vec<Segment>> {
        let free = self.free_extents();
        if extents == 0 || extents > free {
            return Err(Error::NoSpace {
                needed: extents,
                free,
            });
        }
        let runs: Vec<(String, u64, u64)> = self
            .pvs
            .iter()
            .flat_map(|p| {
                self.free_runs(p)
                    .into_iter()
                    .map(move |(a, n)| (p.key.clone(), a, n))
            })
            .collect();
        if let Some((pv, pe, _)) = runs.iter().find(|r| r.2 >= extents) {
            return Ok(vec![Segment {
                start,
                count: extents,
                pv: pv.clone(),
                pe: *pe,
            }]);
        }
        let mut out = Vec::new();
        let (mut left, mut at) = (extents, start);
        for (pv, pe, n) in runs {
            let take = n.min(left);
            out.push(Segment {
                start: at,
                count: take,
                pv,
                pe,
            });
            left -= take;
            at += take;
            if left == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Creates the linear LV `name` of `extents` extents (all free ones with `None`).
    ///
    /// # Errors
    /// [`Error::LvExists`], [`Error::NoSpace`], [`Error::Random`].
    pub fn create_lv(&mut self, name: &str, extents: Option<u64>, now: u64) -> Result<&Lv> {
        if self.lv(name).is_some() {
            return Err(Error::LvExists(name.to_owned()));
        }
        if name.is_empty()
            || name.starts_with('-')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
        {
            return Err(Error::metadata(name, "not a valid LV name"));
        }
        let segments = self.allocate(0, extents.unwrap_or(self.free_extents()))?;
        let lv = Lv {
            name: name.to_owned(),
            uuid: random_id()?,
            segments,
        };
        let mut items = vec![
            Node::Field("id".into(), Value::Str(dashed(&lv.uuid))),
            Node::Field(
                "status".into(),
                Value::Array(vec![
                    Value::Str("READ".into()),
                    Value::Str("WRITE".into()),
                    Value::Str("VISIBLE".into()),
                ]),
            ),
            Node::Field("flags".into(), Value::Array(Vec::new())),
            Node::Field("creation_time".into(), Value::Int(now as i64)),
            Node::Field("creation_host".into(), Value::Str(host())),
        ];
        put_segments(&mut items, &lv.segments);
        let lvs = self.vg_items_mut()?.section_mut("logical_volumes");
        match lvs {
            Some(l) => l.push(Node::Section(name.to_owned(), items)),
            None => {
                let section = Node::Section(
                    "logical_volumes".into(),
                    vec![Node::Section(name.to_owned(), items)],
                );
                self.vg_items_mut()?.push(section);
            }
        }
        self.lvs.push(lv);
        Ok(&self.lvs[self.lvs.len() - 1])
    }

    /// Grows the LV `name` by `extents` (all free ones with `None`): the last segment grows in
    /// place when the extents after it are free, else new segments follow.
    ///
    /// # Errors
    /// [`Error::NoSuchLv`], [`Error::NoSpace`].
    pub fn extend_lv(&mut self, name: &str, extents: Option<u64>) -> Result<()> {
        let lv = self
            .lv(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchLv(name.to_owned()))?;
        let want = extents.unwrap_or(self.free_extents());
        let mut segments = lv.segments.clone();
        let mut left = want;
        if let Some(last) = segments.last_mut() {
            let pv = self.pv(&last.pv).cloned();
            let end = last.pe + last.count;
            if let Some(run) = pv.and_then(|p| self.free_runs(&p).into_iter().find(|r| r.0 == end))
            {
                let take = run.1.min(left);
                last.count += take;
                left -= take;
            }
        }
        if left > 0 {
            let start = segments.iter().map(|s| s.count).sum();
            // Allocate as if the grown last segment were in use already.
            let mut probe = self.clone();
            if let Some(l) = probe.lvs.iter_mut().find(|l| l.name == name) {
                l.segments.clone_from(&segments);
            }
            segments.extend(probe.allocate(start, left)?);
        } else if want == 0 {
            return Err(Error::NoSpace {
                needed: 0,
                free: self.free_extents(),
            });
        }
        let vg_name = self.name.clone();
        let items = self
            .vg_items_mut()?
            .section_mut("logical_volumes")
            .and_then(|l| l.section_mut(name))
            .ok_or_else(|| {
                Error::metadata(format!("{vg_name}.logical_volumes.{name}"), "missing")
            })?;
        items.retain(|n| !(n.name() == "segment_count" || n.name().starts_with("segment")));
        put_segments(items, &segments);
        if let Some(l) = self.lvs.iter_mut().find(|l| l.name == name) {
            l.segments = segments;
        }
        Ok(())
    }

    /// Records that the PV `key` now has `dev_size` sectors: its extent count follows (as
    /// `pvresize`). Shrinking below the extents in use is refused. Callers go through
    /// [`crate::PhysicalVolume::resize`], which knows where the PV's metadata areas are.
    ///
    /// # Errors
    /// [`Error::Metadata`] for an unknown PV or a size below what is in use.
    pub(crate) fn resize_pv(&mut self, key: &str, dev_size: u64) -> Result<u64> {
        let vg_name = self.name.clone();
        let pv = self.pv(key).cloned().ok_or_else(|| {
            Error::metadata(format!("{vg_name}.physical_volumes.{key}"), "missing")
        })?;
        let pe_count = dev_size.saturating_sub(pv.pe_start) / self.extent_size;
        let in_use = self
            .lvs
            .iter()
            .flat_map(|l| l.segments.iter())
            .filter(|s| s.pv == key)
            .map(|s| s.pe + s.count)
            .max()
            .unwrap_or(0);
        if pe_count < in_use {
            return Err(Error::metadata(
                format!("{vg_name}.physical_volumes.{key}"),
                format!("{pe_count} extents would not hold the {in_use} in use"),
            ));
        }
        let items = self
            .vg_items_mut()?
            .section_mut("physical_volumes")
            .and_then(|p| p.section_mut(key))
            .ok_or_else(|| {
                Error::metadata(format!("{vg_name}.physical_volumes.{key}"), "missing")
            })?;
        items.set("dev_size", Value::Int(dev_size as i64));
        items.set("pe_count", Value::Int(pe_count as i64));
        if let Some(p) = self.pvs.iter_mut().find(|p| p.key == key) {
            p.pe_count = pe_count;
        }
        Ok(pe_count)
    }

    /// Moves to the next sequence number and stamps the description and time, before a write.
    pub(crate) fn next_seqno(&mut self, now: u64) -> Result<()> {
        self.seqno += 1;
        let seqno = self.seqno as i64;
        self.vg_items_mut()?.set("seqno", Value::Int(seqno));
        self.tree
            .set("description", Value::Str("Write from cryptpilot.".into()));
        self.tree.set("creation_host", Value::Str(host()));
        self.tree.set("creation_time", Value::Int(now as i64));
        Ok(())
    }

    fn vg_items_mut(&mut self) -> Result<&mut Vec<Node>> {
        let name = self.name.clone();
        self.tree
            .section_mut(&name)
            .ok_or_else(|| Error::metadata(name, "missing"))
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Writes `segment_count` and `segmentN` sections for linear segments.
fn put_segments(items: &mut Vec<Node>, segments: &[Segment]) {
    items.push(Node::Field(
        "segment_count".into(),
        Value::Int(segments.len() as i64),
    ));
    for (i, s) in segments.iter().enumerate() {
        items.push(Node::Section(
            format!("segment{}", i + 1),
            vec![
                Node::Field("start_extent".into(), Value::Int(s.start as i64)),
                Node::Field("extent_count".into(), Value::Int(s.count as i64)),
                Node::Field("type".into(), Value::Str("striped".into())),
                Node::Field("stripe_count".into(), Value::Int(1)),
                Node::Field(
                    "stripes".into(),
                    Value::Array(vec![Value::Str(s.pv.clone()), Value::Int(s.pe as i64)]),
                ),
            ],
        ));
    }
}

/// The linear segments of an LV section, checked: numbered 1..=segment_count, contiguous in
/// logical extents, each `striped` with one stripe on a known PV.
fn segments(lv: &Vec<Node>, path: &str, pvs: &[Pv]) -> Result<Vec<Segment>> {
    let n = int(lv, path, "segment_count")?;
    if n == 0 || n > 1 << 16 {
        return Err(Error::metadata(
            format!("{path}.segment_count"),
            "out of range",
        ));
    }
    let mut out = Vec::new();
    let mut next = 0u64;
    for i in 1..=n {
        let p = format!("{path}.segment{i}");
        let s = lv
            .section(&format!("segment{i}"))
            .ok_or_else(|| Error::metadata(&p, "missing"))?;
        let kind = string(s, &p, "type")?;
        if kind != "striped" || int(s, &p, "stripe_count")? != 1 {
            return Err(Error::Unsupported(format!(
                "{p}: a {kind} segment (only linear volumes are handled)"
            )));
        }
        let (start, count) = (int(s, &p, "start_extent")?, int(s, &p, "extent_count")?);
        if start != next || count == 0 {
            return Err(Error::metadata(&p, "segments are not contiguous"));
        }
        next = start
            .checked_add(count)
            .ok_or_else(|| Error::metadata(&p, "extent count overflows"))?;
        let (pv, pe) = match s.field("stripes") {
            Some(Value::Array(a)) => match a.as_slice() {
                [Value::Str(pv), Value::Int(pe)] if *pe >= 0 => (pv.clone(), *pe as u64),
                _ => {
                    return Err(Error::metadata(
                        format!("{p}.stripes"),
                        "not [\"pvN\", extent]",
                    ))
                }
            },
            _ => return Err(Error::metadata(format!("{p}.stripes"), "missing")),
        };
        if !pvs.iter().any(|x| x.key == pv) {
            return Err(Error::metadata(
                format!("{p}.stripes"),
                format!("unknown PV {pv}"),
            ));
        }
        if pe.checked_add(count).is_none() {
            return Err(Error::metadata(format!("{p}.stripes"), "extent overflows"));
        }
        out.push(Segment {
            start,
            count,
            pv,
            pe,
        });
    }
    Ok(out)
}
