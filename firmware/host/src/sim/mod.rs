//! Host simulation (feature `sim`): a NOR flash that enforces the hardware rules and can lose
//! power in the middle of an operation, and a simulated device built from a flash map.
//!
//! - [`SimFlash`]: one flash area (a slot, the scratch area) as an
//!   [`embedded_storage::nor_flash::NorFlash`], addressed from 0. Geometry (erase size, erased
//!   value, write size) comes from the map's [`Area`] and is enforced at run time: erases must be
//!   sector-exact, writes aligned to the write size and only onto erased bytes. Optionally
//!   file-backed ([`SimFlash::open_file`]) so a simulated board keeps its flash across process
//!   restarts.
//! - [`PowerRail`]: shared by all flashes of one device. It counts flash-modifying operations
//!   and, with [`PowerRail::cut_after`], lets exactly N more writes/erases complete and then
//!   interrupts the next one partway, leaving the rest of it in a seeded-random state (ekv's
//!   contract: a cut erase leaves any value; a cut write only moves the bits it was
//!   programming, never one the other way, as NOR programming cannot) and failing every later
//!   operation with [`SimFlashError::PowerLoss`] until
//!   [`PowerRail::restore`].
//! - [`SimDevice`]: primary, secondary and scratch [`SimFlash`]es for a [`FlashMap`], plus the
//!   calls a board loop makes on each boot.
//!
//! [`FlashMap`]: ota_core::flashmap::FlashMap
//!
//! Because flash geometry is a run-time property here, the trait constants
//! `WRITE_SIZE`/`ERASE_SIZE` are 1; `boot` and `agent` take geometry from the flash map.

mod device;

pub use device::SimDevice;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use ota_core::flashmap::Area;

/// Errors of [`SimFlash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimFlashError {
    /// Power was cut during or before this operation.
    PowerLoss,
    /// Offset or length not aligned to the erase or write size.
    NotAligned,
    /// Outside the area.
    OutOfBounds,
    /// A write onto bytes that are not erased (offset of the first such byte).
    NotErased(u32),
    /// The backing file could not be written.
    Io,
}

impl NorFlashError for SimFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

impl core::fmt::Display for SimFlashError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PowerLoss => f.write_str("power lost"),
            Self::NotAligned => f.write_str("unaligned flash operation"),
            Self::OutOfBounds => f.write_str("flash operation out of bounds"),
            Self::NotErased(o) => write!(f, "write onto non-erased flash at {o:#x}"),
            Self::Io => f.write_str("backing file write failed"),
        }
    }
}

impl std::error::Error for SimFlashError {}

/// Operation counters of one [`SimFlash`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Read calls.
    pub reads: u64,
    /// Write calls (completed or interrupted).
    pub writes: u64,
    /// Erase calls (completed or interrupted).
    pub erases: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes erased.
    pub bytes_erased: u64,
}

#[derive(Debug)]
struct Power {
    ops: u64,
    fuel: Option<u64>,
    off: bool,
    rng: u64,
}

impl Power {
    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The power supply shared by the flashes of one simulated device (cheap to clone).
#[derive(Clone, Debug)]
pub struct PowerRail(Arc<Mutex<Power>>);

/// What the rail decided for one operation.
enum Verdict {
    Run,
    /// Interrupt after this many units, with this random state.
    Cut(u64),
}

impl PowerRail {
    /// A rail with power on and no cut scheduled; `seed` drives the random damage of cuts.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(Power {
            ops: 0,
            fuel: None,
            off: false,
            rng: seed | 1,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Power> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Let `n` more writes/erases complete, then cut power during the next one.
    pub fn cut_after(&self, n: u64) {
        self.lock().fuel = Some(n);
    }

    /// Power back on (after a cut); no further cut scheduled.
    pub fn restore(&self) {
        let mut p = self.lock();
        p.off = false;
        p.fuel = None;
    }

    /// Whether power is off (a cut happened and [`Self::restore`] was not called).
    #[must_use]
    pub fn is_off(&self) -> bool {
        self.lock().off
    }

    /// Flash-modifying operations (writes and erases) started so far.
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    fn begin_op(&self) -> Result<Verdict, SimFlashError> {
        let mut p = self.lock();
        if p.off {
            return Err(SimFlashError::PowerLoss);
        }
        p.ops += 1;
        match p.fuel {
            Some(0) => {
                p.off = true;
                p.fuel = None;
                Ok(Verdict::Cut(p.next_random()))
            }
            Some(n) => {
                p.fuel = Some(n - 1);
                Ok(Verdict::Run)
            }
            None => Ok(Verdict::Run),
        }
    }

    fn random(&self) -> u64 {
        self.lock().next_random()
    }
}

/// A simulated NOR flash area (see the module docs).
#[derive(Debug)]
pub struct SimFlash {
    area: Area,
    data: Vec<u8>,
    rail: PowerRail,
    stats: SimStats,
    file: Option<(PathBuf, std::fs::File)>,
}

impl SimFlash {
    /// An erased flash with `area`'s size and geometry.
    #[must_use]
    pub fn new(area: Area, rail: PowerRail) -> Self {
        Self::with_data(area, vec![area.erase_value; area.size as usize], rail)
    }

    /// A flash holding `data` (padded with the erased value or truncated to the area size).
    #[must_use]
    pub fn with_data(area: Area, mut data: Vec<u8>, rail: PowerRail) -> Self {
        data.resize(area.size as usize, area.erase_value);
        Self {
            area,
            data,
            rail,
            stats: SimStats::default(),
            file: None,
        }
    }

    /// Opens (or creates, erased) a file-backed flash: every write and erase is written
    /// through to `path` before the call returns, so the contents survive a process exit at
    /// any point. A file of the wrong size is refused.
    ///
    /// # Errors
    /// I/O errors, or `InvalidData` when the file size differs from the area size.
    pub fn open_file(path: &Path, area: Area, rail: PowerRail) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut data = Vec::new();
        if len == 0 {
            data.resize(area.size as usize, area.erase_value);
            file.write_all(&data)?;
            file.sync_data()?;
        } else if len == u64::from(area.size) {
            file.read_to_end(&mut data)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: {len} bytes, expected {} for this flash area",
                    path.display(),
                    area.size
                ),
            ));
        }
        let mut flash = Self::with_data(area, data, rail);
        flash.file = Some((path.to_path_buf(), file));
        Ok(flash)
    }

    /// The area this flash models.
    #[must_use]
    pub const fn area(&self) -> &Area {
        &self.area
    }

    /// The raw contents (a debugger's view).
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Programs raw bytes at `offset` without any rule or counting (a factory programmer).
    ///
    /// # Panics
    /// If the range is outside the area (a test bug).
    pub fn program(&mut self, offset: u32, bytes: &[u8]) {
        let o = offset as usize;
        self.data[o..o + bytes.len()].copy_from_slice(bytes);
        self.persist(o, o + bytes.len()).expect("backing file");
    }

    /// The power rail.
    #[must_use]
    pub const fn rail(&self) -> &PowerRail {
        &self.rail
    }

    /// Operation counters.
    #[must_use]
    pub const fn stats(&self) -> SimStats {
        self.stats
    }

    /// The backing file, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    fn persist(&mut self, from: usize, to: usize) -> Result<(), SimFlashError> {
        if let Some((_, f)) = &mut self.file {
            // write(2) alone survives the process being killed at any point (the page cache
            // belongs to the kernel); an fsync per flash operation only added ~0.5 ms each,
            // which made a simulated swap of a multi-MiB application take minutes.
            f.seek(SeekFrom::Start(from as u64))
                .and_then(|_| f.write_all(&self.data[from..to]))
                .map_err(|_| SimFlashError::Io)?;
        }
        Ok(())
    }

    fn check_range(&self, offset: u32, len: usize) -> Result<(usize, usize), SimFlashError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(SimFlashError::OutOfBounds)?;
        if end > self.data.len() {
            return Err(SimFlashError::OutOfBounds);
        }
        Ok((start, end))
    }

    /// Leaves `[from, to)` damaged after a cut: a random-length prefix gets `good(i)`; in the
    /// rest, each byte keeps a random part of the change `good(i)` would make (`partial`).
    fn damage(
        &mut self,
        from: usize,
        to: usize,
        seed: u64,
        good: impl Fn(usize) -> u8,
        partial: impl Fn(u8, u8, u8) -> u8,
    ) {
        let len = (to - from) as u64;
        let done = if len == 0 {
            0
        } else {
            (seed % (len + 1)) as usize
        };
        for i in from..from + done {
            self.data[i] = good(i);
        }
        let mut x = self.rail.random() | 1;
        for i in from + done..to {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.data[i] = partial(self.data[i], good(i), x as u8);
        }
    }
}

/// A cut program operation: each bit the write would change (away from the erased value)
/// either changed or not. NOR programming only clears bits (erased 0xff) — or, on flash that
/// erases to 0x00, only sets them — so no other bit can move.
const fn torn_program(old: u8, target: u8, random: u8) -> u8 {
    old ^ ((old ^ target) & random)
}

/// A cut erase: the cells are in an undefined state (old value, erased, or noise).
const fn torn_erase(old: u8, erased: u8, random: u8) -> u8 {
    match random % 3 {
        0 => old,
        1 => erased,
        _ => random.rotate_left(3) ^ old,
    }
}

impl ErrorType for SimFlash {
    type Error = SimFlashError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimFlashError> {
        if self.rail.is_off() {
            return Err(SimFlashError::PowerLoss);
        }
        let (s, e) = self.check_range(offset, bytes.len())?;
        self.stats.reads += 1;
        bytes.copy_from_slice(&self.data[s..e]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 1;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimFlashError> {
        let es = self.area.erase_size;
        if from > to || !from.is_multiple_of(es) || !to.is_multiple_of(es) {
            return Err(SimFlashError::NotAligned);
        }
        let (s, e) = self.check_range(from, (to - from) as usize)?;
        let verdict = self.rail.begin_op()?;
        self.stats.erases += 1;
        self.stats.bytes_erased += u64::from(to - from);
        let ev = self.area.erase_value;
        match verdict {
            Verdict::Run => self.data[s..e].fill(ev),
            Verdict::Cut(seed) => self.damage(s, e, seed, |_| ev, torn_erase),
        }
        self.persist(s, e)?;
        match verdict {
            Verdict::Run => Ok(()),
            Verdict::Cut(_) => Err(SimFlashError::PowerLoss),
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimFlashError> {
        let ws = self.area.write_size as usize;
        if !(offset as usize).is_multiple_of(ws) || !bytes.len().is_multiple_of(ws) {
            return Err(SimFlashError::NotAligned);
        }
        let (s, e) = self.check_range(offset, bytes.len())?;
        if let Some(i) = self.data[s..e]
            .iter()
            .position(|b| *b != self.area.erase_value)
        {
            return Err(SimFlashError::NotErased(offset + i as u32));
        }
        let verdict = self.rail.begin_op()?;
        self.stats.writes += 1;
        self.stats.bytes_written += bytes.len() as u64;
        match verdict {
            Verdict::Run => self.data[s..e].copy_from_slice(bytes),
            Verdict::Cut(seed) => self.damage(s, e, seed, |i| bytes[i - s], torn_program),
        }
        self.persist(s, e)?;
        match verdict {
            Verdict::Run => Ok(()),
            Verdict::Cut(_) => Err(SimFlashError::PowerLoss),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::flashmap::Device;

    fn area(ev: u8) -> Area {
        Area::new(0, 2048, 512, ev, 8, Device::Internal)
    }

    #[test]
    fn enforces_nor_rules() {
        let mut f = SimFlash::new(area(0xff), PowerRail::new(1));
        assert_eq!(f.write(4, &[0; 8]), Err(SimFlashError::NotAligned));
        assert_eq!(f.write(0, &[0; 4]), Err(SimFlashError::NotAligned));
        assert_eq!(f.erase(0, 256), Err(SimFlashError::NotAligned));
        assert_eq!(f.erase(0, 4096), Err(SimFlashError::OutOfBounds));
        f.write(8, &[1; 8]).unwrap();
        assert_eq!(f.write(8, &[1; 8]), Err(SimFlashError::NotErased(8)));
        f.erase(0, 512).unwrap();
        f.write(8, &[1; 8]).unwrap();
        let s = f.stats();
        assert_eq!((s.writes, s.erases, s.bytes_written), (2, 1, 16));
        let mut buf = [0u8; 16];
        f.read(0, &mut buf).unwrap();
        assert_eq!(buf[..8], [0xff; 8]);
        assert_eq!(buf[8..], [1; 8]);
    }

    #[test]
    fn erased_value_zero_is_honoured() {
        let mut f = SimFlash::new(area(0x00), PowerRail::new(1));
        assert!(f.data().iter().all(|b| *b == 0));
        f.write(0, &[0xff; 8]).unwrap();
        assert_eq!(f.write(0, &[0xff; 8]), Err(SimFlashError::NotErased(0)));
    }

    #[test]
    fn power_cut_interrupts_the_next_op_and_is_seeded() {
        let run = |seed| {
            let rail = PowerRail::new(seed);
            let mut f = SimFlash::new(area(0xff), rail.clone());
            rail.cut_after(1);
            f.write(0, &[0x11; 512]).unwrap();
            assert_eq!(f.write(512, &[0x22; 512]), Err(SimFlashError::PowerLoss));
            assert!(rail.is_off());
            assert_eq!(f.erase(0, 512), Err(SimFlashError::PowerLoss));
            let mut b = [0u8; 1];
            assert_eq!(f.read(0, &mut b), Err(SimFlashError::PowerLoss));
            rail.restore();
            f.read(0, &mut b).unwrap();
            assert_eq!(rail.ops(), 2);
            f.data().to_vec()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_eq!(a[..512], [0x11; 512]);
        assert!(a[1024..].iter().all(|b| *b == 0xff));
    }

    #[test]
    fn a_cut_write_only_moves_bits_away_from_the_erased_value() {
        for ev in [0xff_u8, 0x00] {
            for seed in 0..64 {
                let rail = PowerRail::new(seed);
                let mut f = SimFlash::new(area(ev), rail.clone());
                let data: Vec<u8> = (0..512_u32).map(|i| (i * 37 + seed as u32) as u8).collect();
                rail.cut_after(0);
                assert_eq!(f.write(0, &data), Err(SimFlashError::PowerLoss));
                for (got, want) in f.data()[..512].iter().zip(&data) {
                    // Only bits the write changes may differ from erased, each to its target.
                    let changed = got ^ ev;
                    assert_eq!(
                        changed & !(want ^ ev),
                        0,
                        "seed {seed} ev {ev:#x}: {got:#x} for {want:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn file_backed_flash_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secondary.bin");
        {
            let mut f = SimFlash::open_file(&path, area(0x00), PowerRail::new(1)).unwrap();
            f.write(16, &[7; 8]).unwrap();
        }
        let mut f = SimFlash::open_file(&path, area(0x00), PowerRail::new(1)).unwrap();
        assert_eq!(f.data()[16..24], [7; 8]);
        assert_eq!(f.data()[0], 0);
        assert_eq!(f.path(), Some(path.as_path()));
        let mut small = area(0);
        small.size = 512;
        assert!(SimFlash::open_file(&path, small, PowerRail::new(1)).is_err());
        f.erase(0, 512).unwrap();
    }
}
