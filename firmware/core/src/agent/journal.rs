//! Download progress persisted in the secondary slot, so a reset resumes where it stopped.
//!
//! The journal lives in the secondary slot's trailer sectors, which an image the agent
//! downloads never occupies: `[`[`FlashMap::download_max_image_size`]`, S − (4·A + align_up(16, A)))`;
//! the last bytes stay free for MCUboot's `swap_size`, `swap_info`, `copy_done`, `image_ok`
//! and magic. (The bootloader installs images up to MCUboot's larger limit, which reach into
//! these sectors; the agent refuses to download those.) The bootloader erases those sectors
//! when it installs the image, which also clears the journal.
//!
//! Records are `R = align_up(16, W)` bytes, appended, never rewritten:
//!
//! | record | bytes 0..4 | 4..8 | 8..10 | 10..12 | 12..14 | 14..16 |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | 0: header | `OJH1` | total size u32 | major u16 | minor u16 | build u16 | checksum u16 |
//! | 1..: progress | `OJP1` | bytes safely written u32 | `!bytes` u32 | 0 | 0 | 0 |
//!
//! (all little-endian; the rest of a record up to `R` is the erased value). A record whose
//! check fails (a write cut by power loss) is skipped; the last valid progress record wins.
//! When the journal is full, progress is no longer recorded (a resume then restarts from the
//! last recorded offset, which is still correct); the last record is kept for "complete".
//!
//! Invariant: the journal never claims bytes that are not in flash. Data is written before
//! the record that covers it; on resume, bytes after the recorded offset that a cut write
//! left dirty force a rewind to the start of their sector, and that smaller offset is
//! recorded *before* the sector is erased. Without room for that record the download starts
//! over (and says so: `Status::resumed_from` is `None`).
//!
//! [`FlashMap::download_max_image_size`]: crate::flashmap::FlashMap::download_max_image_size

use embedded_storage::nor_flash::NorFlash;

use crate::flashmap::FlashMap;
use crate::image::align_down;
use crate::protocol::AppVersion;

const HEADER_TAG: [u8; 4] = *b"OJH1";
const PROGRESS_TAG: [u8; 4] = *b"OJP1";

/// What a journal says about an interrupted download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The version being downloaded.
    pub version: AppVersion,
    /// The image size.
    pub total: u32,
    /// Bytes at the start of the slot known to be written.
    pub written: u32,
}

/// The journal's place in the secondary slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal {
    start: u32,
    record: u32,
    capacity: u32,
    erased: u8,
}

fn checksum(b: &[u8]) -> u16 {
    let (mut a, mut s) = (0u16, 0u16);
    for x in b {
        a = a.wrapping_add(u16::from(*x));
        s = s.wrapping_add(a);
    }
    s ^ 0x5a5a
}

impl Journal {
    /// The journal area for `map`'s secondary slot.
    #[must_use]
    pub fn new(map: &FlashMap) -> Self {
        let slot = map.secondary;
        let layout = map.trailer_for(&slot);
        let record = crate::image::align_up(16, layout.write_align);
        let start = map.download_max_image_size();
        let reserved = 4 * layout.max_align + layout.magic_area_size();
        let end = align_down(slot.size - reserved, record);
        Self {
            start,
            record,
            capacity: end.saturating_sub(start) / record,
            erased: slot.erase_value,
        }
    }

    /// Number of records that fit.
    #[must_use]
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }

    fn read_rec<F: NorFlash>(&self, f: &mut F, i: u32) -> Result<[u8; 16], F::Error> {
        let mut r = [0u8; 16];
        f.read(self.start + i * self.record, &mut r)?;
        Ok(r)
    }

    fn is_erased(&self, r: &[u8; 16]) -> bool {
        r.iter().all(|b| *b == self.erased)
    }

    /// Reads the journal: the interrupted download (if any) and the index of the next free
    /// record.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn read<F: NorFlash>(&self, f: &mut F) -> Result<(Option<Resume>, u32), F::Error> {
        if self.capacity == 0 {
            return Ok((None, 0));
        }
        let h = self.read_rec(f, 0)?;
        if self.is_erased(&h) {
            return Ok((None, 0));
        }
        let u16_at = |b: &[u8; 16], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at =
            |b: &[u8; 16], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if h[..4] != HEADER_TAG || u16_at(&h, 14) != checksum(&h[..14]) {
            return Ok((None, self.capacity)); // torn header: unusable, and not writable
        }
        let mut resume = Resume {
            version: AppVersion::new(u16_at(&h, 8), u16_at(&h, 10), u16_at(&h, 12)),
            total: u32_at(&h, 4),
            written: 0,
        };
        let mut next = 1;
        while next < self.capacity {
            let r = self.read_rec(f, next)?;
            if self.is_erased(&r) {
                break;
            }
            if r[..4] == PROGRESS_TAG && u32_at(&r, 4) == !u32_at(&r, 8) {
                resume.written = u32_at(&r, 4);
            }
            next += 1;
        }
        Ok((Some(resume), next))
    }

    fn write_rec<F: NorFlash>(&self, f: &mut F, i: u32, body: &[u8; 16]) -> Result<(), F::Error> {
        let mut rec = [self.erased; 32];
        rec[..16].copy_from_slice(body);
        f.write(self.start + i * self.record, &rec[..self.record as usize])
    }

    /// Writes the header record (index 0) of a new download.
    ///
    /// # Errors
    /// Flash errors.
    pub fn write_header<F: NorFlash>(
        &self,
        f: &mut F,
        version: AppVersion,
        total: u32,
    ) -> Result<(), F::Error> {
        if self.capacity == 0 {
            return Ok(());
        }
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&HEADER_TAG);
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..10].copy_from_slice(&version.major.to_le_bytes());
        h[10..12].copy_from_slice(&version.minor.to_le_bytes());
        h[12..14].copy_from_slice(&version.build.to_le_bytes());
        let c = checksum(&h[..14]);
        h[14..16].copy_from_slice(&c.to_le_bytes());
        self.write_rec(f, 0, &h)
    }

    /// Whether a progress record can still be appended at index `next`.
    #[must_use]
    pub const fn has_room(&self, next: u32) -> bool {
        next != 0 && next + 1 < self.capacity
    }

    /// Appends a progress record at index `*next` (if there is room) and advances it. The
    /// last record is kept for the completion record (`complete`), so a finished download is
    /// always recorded.
    ///
    /// # Errors
    /// Flash errors.
    pub fn append<F: NorFlash>(
        &self,
        f: &mut F,
        next: &mut u32,
        written: u32,
        complete: bool,
    ) -> Result<(), F::Error> {
        let room = if complete {
            self.capacity
        } else {
            self.capacity.saturating_sub(1)
        };
        if *next == 0 || *next >= room {
            return Ok(());
        }
        let mut r = [0u8; 16];
        r[..4].copy_from_slice(&PROGRESS_TAG);
        r[4..8].copy_from_slice(&written.to_le_bytes());
        r[8..12].copy_from_slice(&(!written).to_le_bytes());
        self.write_rec(f, *next, &r)?;
        *next += 1;
        Ok(())
    }
}
