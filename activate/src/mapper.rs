//! Carrying out plans through device-mapper, and undoing them: `open`, `close`, and the
//! helpers that read what a LUKS2 or verity volume needs first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dmioctl::{DeviceInfo, DmControl, DmName, TableKind};
use integrity::verity::VerityParams;
use luks2::{Header, VolumeKey};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::plan::{Luks2Volume, Options, Plan, VerityOptions};
use crate::{DataDevice, Error, Result};

/// Adds `plan`'s keyring key to the kernel keyring for its table loads: dm-crypt copies the
/// key when its table is loaded, and the key leaves the keyring again (revoked) when the
/// returned guard drops, whatever happens.
fn keyring_key(plan: &Plan) -> Result<Option<dmioctl::keyring::LogonKey>> {
    plan.keyring_key
        .as_ref()
        .map(|k| {
            dmioctl::keyring::LogonKey::add(&k.description, k.key.as_bytes())
                .map_err(Error::dm(plan.top().as_str()))
        })
        .transpose()
}

/// Whether the live table `now` and the table `new` map the same volume the same way, as
/// cryptsetup's refresh checks: one target of the same kind; for dm-crypt the same cipher,
/// key, IV offset, device, offset and options other than the flags (in any order); for
/// dm-integrity the same device, offset and tag size. Keys are compared in constant time:
/// a live hex key with the new one's bytes (`new_key`, for a new table that names its key in
/// the keyring); two keyring keys by size and description; a live keyring key, whose bytes
/// cannot be read back, with a new hex key by size.
fn same_volume(now: &[dmioctl::Target], new: &dmioctl::Target, new_key: Option<&[u8]>) -> bool {
    use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
    let [now] = now else {
        return false;
    };
    if now.kind != new.kind {
        return false;
    }
    match now.kind.as_str() {
        "crypt" => {
            let (Ok(a), Ok(b)) = (Crypt::parse(now.params()), Crypt::parse(new.params())) else {
                return false;
            };
            let keys = match (&a.key, &b.key) {
                (CryptKey::Hex(x), CryptKey::Hex(y)) => luks2::ct_eq(x, y),
                (CryptKey::Hex(x), CryptKey::Keyring { size, .. }) => match new_key {
                    Some(k) => luks2::ct_eq(x, k),
                    None => x.len() == *size,
                },
                (
                    CryptKey::Keyring {
                        size: m,
                        description: d,
                        ..
                    },
                    CryptKey::Keyring {
                        size: n,
                        description: e,
                        ..
                    },
                ) => m == n && d == e,
                (CryptKey::Keyring { size, .. }, CryptKey::Hex(x)) => x.len() == *size,
            };
            let fixed = |c: &Crypt| -> Vec<String> {
                let mut o: Vec<String> = c
                    .options
                    .iter()
                    .filter(|o| {
                        !matches!(
                            o,
                            CryptOption::AllowDiscards
                                | CryptOption::SameCpuCrypt
                                | CryptOption::SubmitFromCryptCpus
                                | CryptOption::NoReadWorkqueue
                                | CryptOption::NoWriteWorkqueue
                        )
                    })
                    .map(ToString::to_string)
                    .collect();
                // The kernel reports them in its own order, not the loaded one.
                o.sort();
                o
            };
            keys && a.cipher == b.cipher
                && a.iv_offset == b.iv_offset
                && a.device == b.device
                && a.offset == b.offset
                && fixed(&a) == fixed(&b)
        }
        // DEVICE OFFSET TAG_SIZE MODE ...: the mode and its options may change.
        "integrity" => {
            let head = |t: &dmioctl::Target| {
                t.params()
                    .split(' ')
                    .take(3)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            head(now) == head(new)
        }
        _ => false,
    }
}

/// SIGINT, SIGTERM and SIGHUP held back from this thread while this lives; those that came
/// meanwhile are delivered when it drops.
struct HeldSignals(Option<SigSet>);

impl HeldSignals {
    fn hold() -> Self {
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        HeldSignals(set.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok())
    }
}

impl Drop for HeldSignals {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = old.thread_set_mask();
        }
    }
}

/// How long removing a briefly busy device is retried.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// The device-mapper control node, for mapping and unmapping volumes.
#[derive(Debug)]
pub struct Mapper {
    dm: DmControl,
}

impl Mapper {
    /// Opens `/dev/mapper/control`.
    ///
    /// # Errors
    /// [`Error::Dm`] when device-mapper is missing or not permitted.
    pub fn open() -> Result<Self> {
        Ok(Mapper {
            dm: DmControl::open().map_err(Error::dm("control"))?,
        })
    }

    /// Whether a mapping called `name` exists.
    pub fn is_active(&self, name: &DmName) -> bool {
        self.dm.dev_status(name).is_ok()
    }

    /// The first mapping whose device-mapper UUID starts with `prefix` (cryptsetup's test
    /// for a volume in use: `CRYPT-LUKS1-<uuid>-`).
    pub fn mapped_with_uuid_prefix(&self, prefix: &str) -> Option<String> {
        let devices = self.dm.list_devices().ok()?;
        devices.into_iter().map(|(n, _, _)| n).find(|n| {
            DmName::new(n)
                .ok()
                .and_then(|d| self.dm.dev_status(&d).ok())
                .is_some_and(|i| i.uuid.starts_with(prefix))
        })
    }

    /// Fails with `Exists` (busy) when `name` is already mapped.
    ///
    /// # Errors
    /// [`Error::Dm`] with [`dmioctl::Error::Exists`].
    pub fn ensure_free(&self, name: &DmName) -> Result<()> {
        if self.is_active(name) {
            return Err(Error::dm(name.as_str())(dmioctl::Error::Exists(
                name.to_string(),
            )));
        }
        Ok(())
    }

    /// Creates every layer of `plan`, bottom first; on any failure removes what it made.
    /// Returns the `/dev/mapper` path of the top layer.
    ///
    /// # Errors
    /// [`Error::Dm`] naming the layer that failed.
    pub fn activate(&self, plan: &Plan) -> Result<PathBuf> {
        if plan.refresh {
            return self.refresh(plan);
        }
        let _key = keyring_key(plan)?;
        let mut made: Vec<(DmName, DeviceInfo)> = Vec::new();
        for (i, layer) in plan.layers.iter().enumerate() {
            let below = layer
                .on
                .and_then(|j| made.get(j))
                .map(|(_, info)| format!("{}:{}", info.major, info.minor));
            let target = plan.table_on(i, below);
            match self.create(
                &layer.name,
                layer.uuid.as_deref(),
                &[target],
                plan.read_only,
            ) {
                Ok(info) => made.push((layer.name.clone(), info)),
                Err(e) => {
                    for (name, _) in made.iter().rev() {
                        let _ = self.dm.dev_remove(name, REMOVE_WAIT);
                        dmioctl::node::remove_node(name.as_str());
                    }
                    return Err(e);
                }
            }
        }
        Ok(dmioctl::node::mapper_path(plan.top().as_str()))
    }

    /// Swaps the live tables of `plan`'s mapping, each of its layers mapped under the plan's
    /// names, for the plan's (cryptsetup's `refresh`). The live tables must be this volume's:
    /// the same cipher, key (or keyring key), offsets and devices, with only the flags
    /// changing. Every new table is loaded first; then the layers are suspended top first
    /// and resumed bottom first, with SIGINT, SIGTERM and SIGHUP held meanwhile, so no I/O
    /// meets a half-changed stack and ^C cannot leave it suspended. A table or suspend the
    /// kernel refuses puts every layer back on its live table; a refused resume does that for
    /// the layers from the one refused up (those below keep their new tables, which differ
    /// only in flags).
    fn refresh(&self, plan: &Plan) -> Result<PathBuf> {
        let _key = keyring_key(plan)?;
        let dm = &self.dm;
        let mut live = Vec::with_capacity(plan.layers.len());
        for layer in &plan.layers {
            live.push(
                dm.dev_status(&layer.name)
                    .map_err(Error::dm(layer.name.as_str()))?,
            );
        }
        let mut new = Vec::with_capacity(plan.layers.len());
        for (i, layer) in plan.layers.iter().enumerate() {
            let below = layer
                .on
                .and_then(|j| live.get(j))
                .map(|info| format!("{}:{}", info.major, info.minor));
            let target = plan.table_on(i, below);
            let now = dm
                .table_status(&layer.name, TableKind::Table)
                .map_err(Error::dm(layer.name.as_str()))?;
            let key = plan.keyring_key.as_ref().map(|k| k.key.as_bytes());
            if !same_volume(&now, &target, key) {
                return Err(Error::Mismatch {
                    name: layer.name.to_string(),
                });
            }
            new.push(target);
        }
        // Back to the live tables: every loaded one dropped, then the layers this suspended
        // resumed (bottom first).
        let back = |suspended: &[crate::plan::Layer]| {
            for l in &plan.layers {
                let _ = dm.table_clear(&l.name);
            }
            for l in suspended {
                let _ = dm.dev_resume(&l.name);
            }
        };
        let _held = HeldSignals::hold();
        for (layer, target) in plan.layers.iter().zip(new) {
            if let Err(e) = dm.table_load(&layer.name, &[target], plan.read_only, true) {
                back(&[]);
                return Err(Error::dm(layer.name.as_str())(e));
            }
        }
        for (i, layer) in plan.layers.iter().enumerate().rev() {
            if let Err(e) = dm.dev_suspend(&layer.name) {
                back(&plan.layers[i + 1..]);
                return Err(Error::dm(layer.name.as_str())(e));
            }
        }
        for (i, layer) in plan.layers.iter().enumerate() {
            if let Err(e) = dm.dev_resume(&layer.name) {
                // The layers below run their new tables, which differ only in flags. A layer
                // the kernel cannot resume stays suspended: the error names it.
                back(&plan.layers[i..]);
                return Err(Error::dm(layer.name.as_str())(e));
            }
        }
        Ok(dmioctl::node::mapper_path(plan.top().as_str()))
    }

    /// Maps `name` (with `uuid`) as consecutive `linear` targets, as an LVM2 logical volume
    /// is mapped: each `(length, device, offset)` in sectors, the device as `MAJOR:MINOR`.
    /// Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no segments or a table longer than 2^64 sectors; [`Error::Dm`]
    /// when mapping fails (nothing is left mapped then).
    pub fn map_linear(
        &self,
        name: &DmName,
        uuid: Option<&str>,
        segments: &[(u64, String, u64)],
        read_only: bool,
    ) -> Result<PathBuf> {
        let params: Vec<String> = segments
            .iter()
            .map(|(_, device, offset)| {
                dmioctl::target::linear::Linear {
                    device: device.clone(),
                    offset: *offset,
                }
                .to_string()
            })
            .collect();
        let targets: Vec<(u64, &str, &str)> = segments
            .iter()
            .zip(&params)
            .map(|((length, _, _), p)| (*length, "linear", p.as_str()))
            .collect();
        self.map_targets(name, uuid, &targets, read_only)
    }

    /// Maps `name` as one target of `kind` with `params` over `size` sectors (a dm-snapshot,
    /// for example). Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Dm`] when mapping fails (nothing is left mapped then).
    pub fn map_target(
        &self,
        name: &DmName,
        uuid: Option<&str>,
        size: u64,
        kind: &str,
        params: &str,
        read_only: bool,
    ) -> Result<PathBuf> {
        self.map_targets(name, uuid, &[(size, kind, params)], read_only)
    }

    /// Maps `name` as consecutive targets, each `(length in sectors, kind, params)` (a
    /// `linear` device followed by `zero`, for example). Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no targets or more than 2^64 sectors; [`Error::Dm`] when
    /// mapping fails (nothing is left mapped then).
    pub fn map_targets(
        &self,
        name: &DmName,
        uuid: Option<&str>,
        targets: &[(u64, &str, &str)],
        read_only: bool,
    ) -> Result<PathBuf> {
        let mut table = Vec::with_capacity(targets.len());
        let mut start = 0u64;
        for (length, kind, params) in targets {
            table.push(dmioctl::Target::new(
                start,
                *length,
                kind,
                zeroize::Zeroizing::new((*params).into()),
            ));
            start = start.checked_add(*length).ok_or_else(|| Error::Invalid {
                reason: format!("{name}'s targets add up past 2^64 sectors"),
            })?;
        }
        if table.is_empty() {
            return Err(Error::Invalid {
                reason: format!("{name} has no targets"),
            });
        }
        self.create(name, uuid, &table, read_only)?;
        Ok(dmioctl::node::mapper_path(name.as_str()))
    }

    /// Creates, loads and resumes one mapping; on failure removes it again.
    fn create(
        &self,
        name: &DmName,
        uuid: Option<&str>,
        targets: &[dmioctl::Target],
        read_only: bool,
    ) -> Result<DeviceInfo> {
        let dm = &self.dm;
        dm.dev_create(name, uuid, read_only)
            .map_err(Error::dm(name.as_str()))?;
        let result = (|| {
            dm.table_load(name, targets, read_only, true)?;
            let info = dm.dev_resume(name)?;
            dmioctl::node::ensure_node(name.as_str(), info.major, info.minor)?;
            Ok(info)
        })();
        result.map_err(|e| {
            let _ = dm.dev_remove(name, REMOVE_WAIT);
            Error::dm(name.as_str())(e)
        })
    }

    /// Maps an unlocked LUKS2 volume as `name` with cryptsetup's tables and UUIDs: reads the
    /// dm-integrity superblock when the segment has one, attaches a loop device for an image
    /// file. Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Luks`] for a header without a usable data segment, [`Error::Integrity`] for a
    /// bad integrity superblock, [`Error::Dm`] when mapping fails.
    pub fn open_luks2(
        &self,
        device: &Path,
        file: &mut File,
        header: &Header,
        key: &VolumeKey,
        name: &DmName,
        options: &Options,
    ) -> Result<PathBuf> {
        let activation = header.activation().map_err(Error::luks(device))?;
        let sb = match activation.integrity {
            Some(_) => Some(
                integrity::luks::read_luks2_superblock(file, &activation)
                    .map_err(Error::integrity(device))?,
            ),
            None => None,
        };
        let data = DataDevice::new(device, file, options.read_only)?;
        let volume = Luks2Volume {
            header,
            activation: &activation,
            key,
            data: &data,
            integrity: sb.as_ref(),
        };
        let mut plan = Plan::luks2(&volume, name, Some(header.dm_uuid(name.as_str())), options)?;
        if let Some(description) = header.key_description() {
            if !options.disable_keyring && self.keyring_usable(&activation.cipher) {
                plan.key_in_keyring(&description);
            }
        }
        self.activate(&plan)
    }

    /// Maps an unlocked LUKS1 volume as `name` with cryptsetup's table and UUID (an image
    /// file through a loop device). Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the device has no room for data, [`Error::Dm`] when mapping
    /// fails.
    pub fn open_luks1(
        &self,
        device: &Path,
        file: &mut File,
        header: &luks2::Luks1Header,
        key: &VolumeKey,
        name: &DmName,
        options: &Options,
    ) -> Result<PathBuf> {
        let data = DataDevice::new(device, file, options.read_only)?;
        let plan = Plan::luks1(
            &header.activation(),
            key,
            &data,
            name,
            header.dm_uuid(name.as_str()),
            options,
        )?;
        self.activate(&plan)
    }

    /// Maps `device` as the plain dm-crypt volume `name` with `key` (an image file through a
    /// loop device). Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the parameters do not fit the device, [`Error::Dm`] when
    /// mapping fails (a cipher the kernel does not know among them).
    pub fn open_plain(
        &self,
        device: &Path,
        file: &mut File,
        params: &crate::PlainParams,
        key: &VolumeKey,
        name: &DmName,
        options: &Options,
    ) -> Result<PathBuf> {
        let data = DataDevice::new(device, file, options.read_only)?;
        self.activate(&Plan::plain(params, key, &data, name, options)?)
    }

    /// Maps the standalone dm-integrity device `device` (its superblock at sector 0) as
    /// `name`, as integritysetup does; the padding and HMAC fixes are left out where the
    /// kernel's dm-integrity predates them. Returns the `/dev/mapper` path.
    ///
    /// # Errors
    /// [`Error::Integrity`] for a missing or bad superblock, [`Error::Dm`] when mapping fails.
    pub fn open_integrity(
        &self,
        device: &Path,
        file: &mut File,
        name: &DmName,
        options: &crate::IntegrityOptions,
    ) -> Result<PathBuf> {
        let sb =
            integrity::dm_integrity::read_superblock(file, 0).map_err(Error::integrity(device))?;
        let version = self
            .dm
            .target_versions()
            .ok()
            .and_then(|v| v.into_iter().find(|(n, _)| n == "integrity"))
            .map(|(_, v)| v);
        // Not loaded yet (the table load loads it): kernels from 5.11 have both (1.7).
        let at_least = |want: [u32; 3], kernel: (u32, u32)| match version {
            Some(v) => v >= want,
            None => kernel_at_least(kernel.0, kernel.1),
        };
        let mut o = options.clone();
        o.fix_padding &= at_least([1, 4, 0], (5, 4));
        o.fix_hmac &= at_least([1, 7, 0], (5, 11));
        let data = DataDevice::new(device, file, false)?;
        self.activate(&Plan::integrity(&sb, &data, name, &o))
    }

    /// Whether crypt tables can name a keyring key, as cryptsetup 2.6 decides: the kernel has
    /// key management, dm-crypt is at least 1.18.1, and the cipher is not `cipher_null`.
    pub fn keyring_usable(&self, cipher: &str) -> bool {
        let crypt = self
            .dm
            .target_versions()
            .ok()
            .and_then(|v| v.into_iter().find(|(n, _)| n == "crypt"));
        // dm-crypt not loaded yet (the table load loads it): cryptsetup then trusts kernels
        // from 4.15 on, whose dm-crypt takes keyring keys.
        let crypt_ok = match crypt {
            Some((_, v)) => v >= [1, 18, 1],
            None => kernel_at_least(4, 15),
        };
        crypt_ok && !cipher.contains("cipher_null") && dmioctl::keyring::supported()
    }

    /// Maps `data` read-only as `name`, checked by the kernel against the tree on `hash`
    /// whose top block is first checked against `root`.
    ///
    /// # Errors
    /// [`Error::Integrity`] when the root hash does not match the tree; [`Error::Dm`] when
    /// mapping fails.
    pub fn open_verity(
        &self,
        data: (&Path, &mut File),
        hash: (&Path, &mut File),
        params: &VerityParams,
        root: &[u8],
        name: &DmName,
        options: &VerityOptions,
    ) -> Result<PathBuf> {
        integrity::verity::check_root(data.1, hash.1, params, root)
            .map_err(Error::integrity(hash.0))?;
        let data_dev = DataDevice::new(data.0, data.1, true)?;
        let hash_dev = DataDevice::new(hash.0, hash.1, true)?;
        self.activate(&Plan::verity(
            &data_dev, &hash_dev, params, root, name, options,
        ))
    }

    /// Removes `name`, then the integrity mapping under it if cryptsetup or we made one.
    ///
    /// # Errors
    /// [`Error::Dm`]: not found, busy (mounted or open), or another failure.
    pub fn close(&self, name: &DmName) -> Result<()> {
        let dm = &self.dm;
        let under = self.integrity_layer(name)?;
        dm.dev_remove(name, REMOVE_WAIT)
            .map_err(Error::dm(name.as_str()))?;
        dmioctl::node::remove_node(name.as_str());
        if let Some(dep) = under {
            dm.dev_remove(&dep, REMOVE_WAIT)
                .map_err(Error::dm(dep.as_str()))?;
            dmioctl::node::remove_node(dep.as_str());
        }
        Ok(())
    }

    /// Removes `name` and its integrity mapping once they are no longer open (now, if they
    /// are not): cryptsetup's `close --deferred`. Returns whether `name` is still there,
    /// waiting for its last user.
    ///
    /// # Errors
    /// [`Error::Dm`]: not found, or another failure.
    pub fn close_deferred(&self, name: &DmName) -> Result<bool> {
        let dm = &self.dm;
        let under = self.integrity_layer(name)?;
        for n in std::iter::once(name).chain(under.as_ref()) {
            dm.dev_remove_deferred(n).map_err(Error::dm(n.as_str()))?;
            if matches!(dm.dev_status(n), Err(dmioctl::Error::NotFound(_))) {
                dmioctl::node::remove_node(n.as_str());
            }
        }
        Ok(dm.dev_status(name).is_ok())
    }

    /// Cancels a deferred close of `name` (and of its integrity mapping).
    ///
    /// # Errors
    /// [`Error::Dm`]: not found, or no close was deferred.
    pub fn cancel_deferred_close(&self, name: &DmName) -> Result<()> {
        let under = self.integrity_layer(name)?;
        let top = self
            .dm
            .cancel_deferred_remove(name)
            .map_err(Error::dm(name.as_str()));
        // The layer under it is kept whatever the top's answer (its close waits on the top).
        if let Some(dep) = under.filter(|d| self.dm.dev_status(d).is_ok_and(|i| i.deferred_remove))
        {
            self.dm
                .cancel_deferred_remove(&dep)
                .map_err(Error::dm(dep.as_str()))?;
        }
        top
    }

    /// The integrity mapping cryptsetup or we made under `name` (`NAME_dif`), if any.
    fn integrity_layer(&self, name: &DmName) -> Result<Option<DmName>> {
        let dm = &self.dm;
        let deps = dm.table_deps(name).map_err(Error::dm(name.as_str()))?;
        let dif = format!("{name}_dif");
        let devices = dm.list_devices().unwrap_or_default();
        Ok(devices
            .iter()
            .filter(|(n, ma, mi)| deps.contains(&(*ma, *mi)) && *n == dif)
            .filter_map(|(n, _, _)| DmName::new(n).ok())
            .find(|dep| {
                dm.dev_status(dep).is_ok_and(|i| {
                    i.uuid.starts_with("CRYPT-INTEGRITY-") || i.uuid.starts_with("CRYPT-SUBDEV-")
                })
            }))
    }

    pub(crate) fn control(&self) -> &DmControl {
        &self.dm
    }
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn target(kind: &str, params: &str) -> dmioctl::Target {
        dmioctl::Target::new(0, 8, kind, Zeroizing::new(params.to_owned()))
    }

    #[test]
    fn a_refresh_may_change_flags_only() {
        let key = "ab".repeat(64);
        let live = |p: &str| vec![target("crypt", p)];
        let now = live(&format!(
            "aes-xts-plain64 {key} 0 7:3 32768 2 sector_size:4096 iv_large_sectors"
        ));
        let same = |p: String| same_volume(&now, &target("crypt", &p), None);
        // Flags added; the other options in the order they are loaded, not reported.
        assert!(same(format!(
            "aes-xts-plain64 {key} 0 7:3 32768 4 allow_discards iv_large_sectors sector_size:4096 no_read_workqueue"
        )));
        let other_key = "ac".repeat(64);
        for differs in [
            format!("aes-xts-plain64 {other_key} 0 7:3 32768 2 sector_size:4096 iv_large_sectors"),
            format!("aes-cbc-essiv:sha256 {key} 0 7:3 32768 2 sector_size:4096 iv_large_sectors"),
            format!("aes-xts-plain64 {key} 8 7:3 32768 2 sector_size:4096 iv_large_sectors"),
            format!("aes-xts-plain64 {key} 0 7:4 32768 2 sector_size:4096 iv_large_sectors"),
            format!("aes-xts-plain64 {key} 0 7:3 4096 2 sector_size:4096 iv_large_sectors"),
            format!("aes-xts-plain64 {key} 0 7:3 32768 1 sector_size:4096"),
        ] {
            assert!(!same(differs.clone()), "{differs}");
        }
        // A live hex key against a new keyring key: by the new key's bytes.
        let desc = ":64:logon:cryptsetup:0123-d0";
        let to_keyring =
            format!("aes-xts-plain64 {desc} 0 7:3 32768 2 sector_size:4096 iv_large_sectors");
        let bytes = |h: &str| luks2::hex::decode(h).expect("hex");
        assert!(same_volume(
            &now,
            &target("crypt", &to_keyring),
            Some(&bytes(&key))
        ));
        assert!(!same_volume(
            &now,
            &target("crypt", &to_keyring),
            Some(&bytes(&other_key))
        ));
        // (luksSuspend leaves a zero key in the table.)
        let zeros = "00".repeat(64);
        let suspended = live(&format!(
            "aes-xts-plain64 {zeros} 0 7:3 32768 2 sector_size:4096 iv_large_sectors"
        ));
        assert!(!same_volume(
            &suspended,
            &target("crypt", &to_keyring),
            Some(&bytes(&key))
        ));
        // Two keyring keys by their description; a live keyring key and a new hex key by size.
        let now = live(&format!("aes-xts-plain64 {desc} 0 7:3 32768"));
        let same = |p: String| same_volume(&now, &target("crypt", &p), None);
        assert!(same(format!(
            "aes-xts-plain64 {desc} 0 7:3 32768 1 allow_discards"
        )));
        assert!(!same(
            "aes-xts-plain64 :64:logon:cryptsetup:4567-d0 0 7:3 32768".into()
        ));
        assert!(same(format!("aes-xts-plain64 {key} 0 7:3 32768")));
        assert!(!same(format!(
            "aes-xts-plain64 {} 0 7:3 32768",
            "ab".repeat(32)
        )));
        // dm-integrity: the mode and its options may change, not the layout.
        let now = vec![target(
            "integrity",
            "7:3 32768 32 J 4 journal_sectors:4048 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50",
        )];
        assert!(same_volume(
            &now,
            &target(
                "integrity",
                "7:3 32768 32 D 2 journal_sectors:4048 interleave_sectors:32768"
            ),
            None
        ));
        assert!(!same_volume(
            &now,
            &target("integrity", "7:3 32768 16 J 0"),
            None
        ));
        assert!(!same_volume(
            &now,
            &target("crypt", "7:3 32768 32 J 0"),
            None
        ));
        assert!(!same_volume(
            &[],
            &target("integrity", "7:3 32768 32 J 0"),
            None
        ));
    }
}
