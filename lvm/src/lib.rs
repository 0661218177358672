//! LVM2 on-disk metadata without lvm2: enough to bring up the full-disk layout's volume group
//! from a boot stage (read the PV label and the committed metadata, map linear LVs as
//! device-mapper `linear` tables with lvm2's names and UUIDs) and to change it the way the boot
//! does (create an LV from free extents, extend it, record a grown PV), writing metadata that
//! `vgck`, `vgs` and `lvs` accept.
//!
//! A physical volume is a label in one of its first four sectors (`LABELONE`, a PV header
//! listing data and metadata areas) and metadata areas, each a 512-byte header and a ring
//! buffer of text copies ([`disk`]); the text ([`text`]) describes the volume group
//! ([`VolumeGroup`]). A write puts the new text after the current copy in every metadata area,
//! then points the area's header at it: an interruption leaves the old or the new metadata.
//!
//! ```no_run
//! let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/vda4")?;
//! let mut pv = lvm::PhysicalVolume::open(f)?;
//! let mut vg = pv.read_vg()?;
//! if vg.lv("delta").is_none() {
//!     vg.create_lv("delta", None, 0)?;
//!     pv.write_vg(&mut vg, 0)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod disk;
mod error;
pub mod text;
mod vg;

pub use error::{Error, Result};
pub use vg::{Lv, Pv, Segment, VolumeGroup};

use luks2::BlockIo;

use disk::{MdaHeader, PvLabel};

/// Where [`PhysicalVolume::create`] puts the first extent, in 512-byte sectors (1 MiB, as
/// `pvcreate`): the first logical volume created in the new group starts there.
pub const PE_START: u64 = 2048;

/// An open physical volume: its label and metadata areas.
#[derive(Debug)]
pub struct PhysicalVolume<D: BlockIo> {
    io: D,
    label: PvLabel,
    mdas: Vec<MdaHeader>,
}

impl<D: BlockIo> PhysicalVolume<D> {
    /// Reads the label and the metadata area headers.
    ///
    /// # Errors
    /// [`Error::NotPv`], [`Error::BadLabel`], [`Error::BadMetadataArea`], I/O errors.
    pub fn open(mut io: D) -> Result<Self> {
        let label = disk::read_label(&mut io)?;
        let size = io.size().map_err(Error::io("reading the device size"))?;
        let mut mdas = Vec::new();
        let mut first_err = None;
        for &a in &label.metadata_areas {
            if a.offset.checked_add(a.size).is_none_or(|end| end > size) {
                return Err(Error::BadLabel(format!(
                    "metadata area {}+{} runs past the device's {size} bytes",
                    a.offset, a.size
                )));
            }
            // A damaged area is passed over while another one is good, as lvm2 does.
            match disk::read_mda_header(&mut io, a) {
                Ok(h) => mdas.push(h),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let (true, Some(e)) = (mdas.is_empty(), first_err) {
            return Err(e);
        }
        Ok(Self { io, label, mdas })
    }

    /// Makes `io` (the whole device) a new PV holding a new, empty volume group `vg_name`
    /// with `extent_size` sectors per extent, as `pvcreate` and `vgcreate
    /// --setautoactivation n` do: label in sector 1, one metadata area from 4 KiB to the
    /// first extent at 1 MiB. `device` is the path recorded as the PV's hint (`/dev/vda4`).
    ///
    /// # Errors
    /// [`Error::Metadata`] for a device smaller than one extent after the metadata area;
    /// I/O and random-source errors.
    pub fn create(
        mut io: D,
        vg_name: &str,
        extent_size: u64,
        device: &str,
        now: u64,
    ) -> Result<(Self, VolumeGroup)> {
        let size = io.size().map_err(Error::io("reading the device size"))?;
        let sectors = size / disk::SECTOR;
        let pe_count = sectors.saturating_sub(PE_START) / extent_size.max(1);
        if extent_size == 0 || pe_count == 0 {
            return Err(Error::metadata(
                vg_name,
                format!("a {size}-byte device holds no {extent_size}-sector extent"),
            ));
        }
        let pv_uuid = vg::random_id()?;
        let (label, mda) = disk::write_new_label(&mut io, &pv_uuid, size, PE_START * disk::SECTOR)?;
        let dash = |u: &str| vg::dashed(u);
        let text = format!(
            "{vg_name} {{\nid = \"{}\"\nseqno = 0\nformat = \"lvm2\"\n\
             status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = [\"NOAUTOACTIVATE\"]\n\
             extent_size = {extent_size}\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\n\
             physical_volumes {{\n\npv0 {{\nid = \"{}\"\ndevice = \"{device}\"\n\n\
             status = [\"ALLOCATABLE\"]\nflags = []\ndev_size = {sectors}\n\
             pe_start = {PE_START}\npe_count = {pe_count}\n}}\n}}\n\n}}\n\
             contents = \"Text Format Volume Group\"\nversion = 1\n\ndescription = \"\"\n\n\
             creation_host = \"localhost\"\ncreation_time = {now}\n",
            dash(&vg::random_id()?),
            dash(&pv_uuid),
        );
        let mut vg = VolumeGroup::from_tree(text::parse(text.as_bytes())?)?;
        let mut pv = PhysicalVolume {
            io,
            label,
            mdas: vec![mda],
        };
        pv.write_vg(&mut vg, now)?;
        Ok((pv, vg))
    }

    /// The label.
    pub fn label(&self) -> &PvLabel {
        &self.label
    }

    /// The device.
    pub fn io_mut(&mut self) -> &mut D {
        &mut self.io
    }

    /// Gives back the device.
    pub fn into_inner(self) -> D {
        self.io
    }

    /// The volume group from the newest committed metadata of the PV's areas, which must name
    /// this PV.
    ///
    /// # Errors
    /// [`Error::Metadata`] when no area holds metadata or it does not name this PV; parse and
    /// check errors of [`text::parse`] and [`VolumeGroup::from_tree`].
    pub fn read_vg(&mut self) -> Result<VolumeGroup> {
        let mut best: Option<VolumeGroup> = None;
        let mut first_err = None;
        for h in self.mdas.iter().filter(|h| !h.is_ignored()) {
            let read = disk::read_text(&mut self.io, h).and_then(|text| {
                if text.is_empty() {
                    return Ok(None);
                }
                VolumeGroup::from_tree(text::parse(&text)?).map(Some)
            });
            match read {
                Ok(Some(vg)) if best.as_ref().is_none_or(|b| vg.seqno > b.seqno) => {
                    best = Some(vg);
                }
                Ok(_) => {}
                // A damaged copy is passed over while another one is good, as lvm2 does.
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let vg = match (best, first_err) {
            (Some(vg), _) => vg,
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(Error::metadata("", "the PV belongs to no volume group"));
            }
        };
        if !vg.pvs.iter().any(|p| p.uuid == self.label.pv_uuid) {
            return Err(Error::metadata(
                format!("{}.physical_volumes", vg.name),
                format!("does not list this PV ({})", self.label.pv_uuid),
            ));
        }
        Ok(vg)
    }

    /// Writes `vg` as the next metadata version (sequence number + 1, stamped with `now`, Unix
    /// seconds) to every metadata area of this PV.
    ///
    /// # Errors
    /// [`Error::MetadataTooLarge`]; I/O errors.
    pub fn write_vg(&mut self, vg: &mut VolumeGroup, now: u64) -> Result<()> {
        vg.next_seqno(now)?;
        let mut bytes = text::print(vg.tree()).into_bytes();
        bytes.push(0);
        for h in self.mdas.iter_mut().filter(|h| !h.is_ignored()) {
            *h = disk::write_text(&mut self.io, h, &bytes)?;
        }
        Ok(())
    }

    /// Records that this PV's device now has `dev_size` sectors (as `pvresize`): its extent
    /// count in `vg` follows. Returns the new extent count.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a PV with a metadata area after its data area (a second copy
    /// at the device's end, `pvcreate --pvmetadatacopies 2`: growing needs that area moved,
    /// which is not done here); [`Error::Metadata`] as [`VolumeGroup::resize_pv`].
    pub fn resize(&self, vg: &mut VolumeGroup, dev_size: u64) -> Result<u64> {
        let data_start = self.label.data_areas.first().map_or(0, |d| d.offset);
        if self
            .label
            .metadata_areas
            .iter()
            .any(|m| m.offset > data_start)
        {
            return Err(Error::Unsupported(
                "a metadata area at the end of the PV (pvcreate --pvmetadatacopies 2); growing it would need that area moved".into(),
            ));
        }
        let key = self
            .key_in(vg)
            .ok_or_else(|| Error::metadata(&vg.name, "does not list this PV"))?
            .to_owned();
        vg.resize_pv(&key, dev_size)
    }

    /// The PV's key in `vg` (`pv0`).
    pub fn key_in<'v>(&self, vg: &'v VolumeGroup) -> Option<&'v str> {
        vg.pvs
            .iter()
            .find(|p| p.uuid == self.label.pv_uuid)
            .map(|p| p.key.as_str())
    }
}
