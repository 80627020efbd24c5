//! The image trailer at the end of every slot, as MCUboot (swap-scratch / swap-move and
//! overwrite-only) lays it out, and as imgtool writes it with `--pad` / `--confirm`.
//!
//! From the end of a slot of size `S` backwards, with `A` = max write alignment
//! (`BOOT_MAX_ALIGN`, `max(8, W)`), `W` = flash write size, `M` = max image sectors,
//! `E` = erased value:
//!
//! | field | offset | size |
//! | --- | --- | --- |
//! | magic | `S - align_up(16, A)` (magic in the last 16 bytes) | `align_up(16, A)` |
//! | `image_ok` | magic − `A` | 1 byte, padded to `A` with `E` |
//! | `copy_done` | `image_ok` − `A` | 1, padded |
//! | `swap_info` | `copy_done` − `A` | 1, padded: low nibble [`SwapType`], high nibble image number |
//! | `swap_size` | `swap_info` − `A` | u32, padded |
//! | enc keys (`MCUBOOT_ENC_IMAGES`, swap modes) | `swap_size` − `(slot + 1)·align_up(16, A)` | 16 bytes per slot, padded |
//! | swap status | `S - trailer_size` | `M * 3 * W`: one `W`-sized record per state |
//!
//! `trailer_size` (imgtool's rule, used for `--pad` and the room check) is
//! `M*3*W + 4*A + align_up(16, A)` in swap modes (plus `2*align_up(16, A)` for the encryption
//! keys when images are encrypted) and `2*A + align_up(16, A)` with `--overwrite-only`.
//!
//! [`TrailerState::decode`] is the only trailer decoder: the bootloader, the agent and
//! `otactl info` all read trailers through it. It reads what MCUboot's `boot_read_swap_state`
//! reads, byte for byte: the 16 magic bytes at `S - 16`, and *one byte* of each flag record.
//! A flag byte equal to `E` is unset, exactly `0x01` is set, anything else is bad; the record's
//! padding bytes are never looked at (so a record with a written first byte and dirty padding
//! decodes as its first byte says). `swap_info` is erased → no swap; a swap type above 4 → no
//! swap, image 0.

use super::align_up;

/// Trailer magic for `BOOT_MAX_ALIGN == 8`.
pub const MAGIC_ALIGN8: [u8; 16] = [
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
];
/// The last 14 bytes of the trailer magic when `BOOT_MAX_ALIGN != 8` (first two are A as u16).
pub const MAGIC_TAIL_OTHER: [u8; 14] = [
    0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
];
/// Value written to `image_ok` / `copy_done` when set.
pub const FLAG_SET: u8 = 0x01;
/// Swap status states per sector in swap-scratch and swap-move.
pub const STATUS_STATES: u32 = 3;

/// `BOOT_SWAP_TYPE_*`: what the bootloader does on this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SwapType {
    /// 1: boot the primary as it is.
    None,
    /// 2: swap once; revert on the next boot unless the new image confirms itself.
    Test,
    /// 3: swap permanently.
    Perm,
    /// 4: swap back to the previous image.
    Revert,
    /// 5: the secondary failed validation during a recorded swap.
    Fail,
    /// 0xff: unrecoverable.
    Panic,
}

impl SwapType {
    /// The numeric value MCUboot uses (and stores in `swap_info`).
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::None => 1,
            Self::Test => 2,
            Self::Perm => 3,
            Self::Revert => 4,
            Self::Fail => 5,
            Self::Panic => 0xff,
        }
    }

    /// Decodes a numeric swap type.
    #[must_use]
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::None,
            2 => Self::Test,
            3 => Self::Perm,
            4 => Self::Revert,
            5 => Self::Fail,
            0xff => Self::Panic,
            _ => return None,
        })
    }
}

/// State of a one-byte trailer flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagState {
    /// `0x01`.
    Set,
    /// Erased.
    Unset,
    /// Anything else.
    Bad,
}

/// State of the 16-byte trailer magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MagicState {
    /// Equal to the expected magic.
    Good,
    /// All erased.
    Unset,
    /// Anything else.
    Bad,
}

/// Geometry of a slot's trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrailerLayout {
    /// Slot size `S`.
    pub slot_size: u32,
    /// Flash write size `W` (imgtool `--align`): 1, 2, 4, 8, 16 or 32.
    pub write_align: u32,
    /// `BOOT_MAX_ALIGN` `A`: `max(8, W)` unless set explicitly (`--max-align`).
    pub max_align: u32,
    /// `MCUBOOT_MAX_IMG_SECTORS` `M` (imgtool `-M`, default 128).
    pub max_sectors: u32,
    /// Erased value `E`: 0xff, or 0x00 on PSoC 6 internal flash.
    pub erased_val: u8,
    /// Overwrite-only upgrades: no swap status area.
    pub overwrite_only: bool,
    /// MCUboot built with `MCUBOOT_ENC_IMAGES` (imgtool: `sign -E`): in swap modes the trailer
    /// holds the two slots' AES keys, `align_up(16, A)` each, right below `swap_size`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub enc_keys: bool,
}

impl TrailerLayout {
    /// A layout with `max_align = max(8, write_align)`.
    #[must_use]
    pub const fn new(
        slot_size: u32,
        write_align: u32,
        max_sectors: u32,
        erased_val: u8,
        overwrite_only: bool,
    ) -> Self {
        let max_align = if write_align > 8 { write_align } else { 8 };
        Self {
            slot_size,
            write_align,
            max_align,
            max_sectors,
            erased_val,
            overwrite_only,
            enc_keys: false,
        }
    }

    /// The same layout with (or without) the encryption key fields.
    #[must_use]
    pub const fn with_enc_keys(mut self, enc_keys: bool) -> Self {
        self.enc_keys = enc_keys;
        self
    }

    /// Bytes of the encryption key fields: `2 · align_up(16, A)` in swap modes with
    /// [`Self::enc_keys`], else 0.
    #[must_use]
    pub const fn enc_keys_size(&self) -> u32 {
        if self.enc_keys && !self.overwrite_only {
            2 * align_up(16, self.max_align)
        } else {
            0
        }
    }

    /// Offset of the AES key of `slot` (0 primary, 1 secondary) kept during a swap
    /// (MCUboot's `boot_enc_key_off`); meaningful only with [`Self::enc_keys`].
    #[must_use]
    pub const fn enc_key_off(&self, slot: u32) -> u32 {
        self.swap_size_off()
            .saturating_sub((slot + 1) * align_up(16, self.max_align))
    }

    /// `align_up(16, A)`: the space the magic occupies.
    #[must_use]
    pub const fn magic_area_size(&self) -> u32 {
        align_up(16, self.max_align)
    }

    /// imgtool's trailer size: the bytes at the end of the slot an image must leave free.
    #[must_use]
    pub const fn trailer_size(&self) -> u32 {
        let fields = if self.overwrite_only { 2 } else { 4 } * self.max_align;
        let status = if self.overwrite_only {
            0
        } else {
            self.max_sectors * STATUS_STATES * self.write_align
        };
        status + self.enc_keys_size() + fields + self.magic_area_size()
    }

    /// Largest image (header + payload + TLVs) that fits in the slot.
    #[must_use]
    pub const fn max_image_size(&self) -> u32 {
        self.slot_size.saturating_sub(self.trailer_size())
    }

    /// Offset of the 16 magic bytes (always `S - 16`).
    #[must_use]
    pub const fn magic_off(&self) -> u32 {
        self.slot_size.saturating_sub(16)
    }

    /// Offset of `image_ok`.
    #[must_use]
    pub const fn image_ok_off(&self) -> u32 {
        self.slot_size
            .saturating_sub(self.magic_area_size() + self.max_align)
    }

    /// Offset of `copy_done`.
    #[must_use]
    pub const fn copy_done_off(&self) -> u32 {
        self.image_ok_off().saturating_sub(self.max_align)
    }

    /// Offset of `swap_info`.
    #[must_use]
    pub const fn swap_info_off(&self) -> u32 {
        self.copy_done_off().saturating_sub(self.max_align)
    }

    /// Offset of `swap_size`.
    #[must_use]
    pub const fn swap_size_off(&self) -> u32 {
        self.swap_info_off().saturating_sub(self.max_align)
    }

    /// Bytes from `swap_size` to the end of the slot (`4·A + align_up(16, A)`): everything
    /// [`TrailerState::decode`] reads.
    #[must_use]
    pub const fn info_size(&self) -> u32 {
        self.slot_size - self.swap_size_off()
    }

    /// Offset of the first swap status record.
    #[must_use]
    pub const fn status_off(&self) -> u32 {
        self.slot_size.saturating_sub(self.trailer_size())
    }

    /// The 16-byte magic for this layout's `A`.
    #[must_use]
    pub fn magic(&self) -> [u8; 16] {
        magic_for(self.max_align)
    }

    /// Classifies a flag byte.
    #[must_use]
    pub fn flag_state(&self, byte: u8) -> FlagState {
        if byte == self.erased_val {
            FlagState::Unset
        } else if byte == FLAG_SET {
            FlagState::Set
        } else {
            FlagState::Bad
        }
    }

    /// Classifies the 16 magic bytes.
    #[must_use]
    pub fn magic_state(&self, bytes: &[u8; 16]) -> MagicState {
        if *bytes == self.magic() {
            MagicState::Good
        } else if bytes.iter().all(|b| *b == self.erased_val) {
            MagicState::Unset
        } else {
            MagicState::Bad
        }
    }

    /// An `A`-sized flag record: `value` then `A-1` erased bytes. At most 32 bytes are used.
    #[must_use]
    pub fn flag_record(&self, value: u8) -> ([u8; 32], usize) {
        let mut rec = [self.erased_val; 32];
        rec[0] = value;
        (rec, (self.max_align as usize).min(32))
    }
}

/// The trailer magic for a given `BOOT_MAX_ALIGN`.
#[must_use]
pub fn magic_for(max_align: u32) -> [u8; 16] {
    if max_align == 8 {
        return MAGIC_ALIGN8;
    }
    let mut m = [0u8; 16];
    m[0..2].copy_from_slice(&(max_align as u16).to_le_bytes());
    m[2..].copy_from_slice(&MAGIC_TAIL_OTHER);
    m
}

/// Decodes a `swap_info` byte: `(swap type, image number)`. As MCUboot: erased, or a swap
/// type above `Revert` (4) → `None`, image 0; otherwise the low nibble is the type (0 and 1
/// both mean no swap) and the high nibble the image number.
#[must_use]
pub fn decode_swap_info(byte: u8, erased_val: u8) -> (SwapType, u8) {
    let ty = byte & 0x0f;
    if byte == erased_val || ty > SwapType::Revert.to_u8() {
        return (SwapType::None, 0);
    }
    let st = SwapType::from_u8(ty).unwrap_or(SwapType::None);
    (st, byte >> 4)
}

/// The trailer of one slot as MCUboot reads it (`boot_read_swap_state` plus `swap_size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrailerState {
    /// The 16-byte magic.
    pub magic: MagicState,
    /// `image_ok` (its first byte).
    pub image_ok: FlagState,
    /// `copy_done` (its first byte).
    pub copy_done: FlagState,
    /// `swap_info`: swap type and image number.
    pub swap_info: (SwapType, u8),
    /// `swap_size` (u32 little-endian; meaningful only while a swap is recorded).
    pub swap_size: u32,
}

impl TrailerState {
    /// A slot with an erased trailer.
    pub const ERASED: Self = Self {
        magic: MagicState::Unset,
        image_ok: FlagState::Unset,
        copy_done: FlagState::Unset,
        swap_info: (SwapType::None, 0),
        swap_size: u32::MAX,
    };

    /// Decodes the trailer from `tail`, the last bytes of a slot laid out as `layout` (at
    /// least [`TrailerLayout::info_size`] of them, e.g. the whole slot or a padded image
    /// file). Bytes that `tail` is too short to hold read as erased, so any input decodes.
    #[must_use]
    pub fn decode(layout: &TrailerLayout, tail: &[u8]) -> Self {
        let e = layout.erased_val;
        let byte = |off: u32| -> u8 {
            let back = layout.slot_size.saturating_sub(off) as usize;
            tail.len()
                .checked_sub(back)
                .and_then(|i| tail.get(i))
                .copied()
                .unwrap_or(e)
        };
        let mut magic = [e; 16];
        for (i, m) in (0u32..).zip(magic.iter_mut()) {
            *m = byte(layout.magic_off() + i);
        }
        let mut size = [e; 4];
        for (i, b) in (0u32..).zip(size.iter_mut()) {
            *b = byte(layout.swap_size_off() + i);
        }
        Self {
            magic: layout.magic_state(&magic),
            image_ok: layout.flag_state(byte(layout.image_ok_off())),
            copy_done: layout.flag_state(byte(layout.copy_done_off())),
            swap_info: decode_swap_info(byte(layout.swap_info_off()), e),
            swap_size: u32::from_le_bytes(size),
        }
    }
}

/// Encodes a `swap_info` byte.
#[must_use]
pub const fn encode_swap_info(swap_type: SwapType, image_num: u8) -> u8 {
    (image_num << 4) | (swap_type.to_u8() & 0x0f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_sizes_from_the_spec() {
        assert_eq!(
            TrailerLayout::new(0x1c0000, 8, 3584, 0xff, false).trailer_size(),
            0x15030
        );
        assert_eq!(
            TrailerLayout::new(0xe6000, 8, 1840, 0, false).trailer_size(),
            0xacb0
        );
        assert_eq!(
            TrailerLayout::new(0x20000, 4, 128, 0xff, false).trailer_size(),
            0x630
        );
        assert_eq!(
            TrailerLayout::new(0x20000, 16, 128, 0xff, false).trailer_size(),
            0x1850
        );
        assert_eq!(
            TrailerLayout::new(0x1c0000, 8, 3584, 0xff, true).trailer_size(),
            32
        );
    }

    #[test]
    fn encryption_key_fields_grow_swap_trailers_only() {
        let t = TrailerLayout::new(0x20000, 4, 128, 0xff, false);
        assert_eq!(t.with_enc_keys(true).trailer_size(), t.trailer_size() + 32);
        assert_eq!(t.with_enc_keys(true).enc_key_off(0), t.swap_size_off() - 16);
        assert_eq!(t.with_enc_keys(true).enc_key_off(1), t.swap_size_off() - 32);
        let w32 = TrailerLayout::new(0x20000, 32, 128, 0xff, false);
        assert_eq!(
            w32.with_enc_keys(true).trailer_size(),
            w32.trailer_size() + 64
        );
        let o = TrailerLayout::new(0x20000, 8, 128, 0xff, true);
        assert_eq!(o.with_enc_keys(true).trailer_size(), o.trailer_size());
    }

    #[test]
    fn offsets_for_align8() {
        let t = TrailerLayout::new(0x20000, 4, 128, 0xff, false);
        assert_eq!(t.magic_off(), 0x20000 - 16);
        assert_eq!(t.image_ok_off(), 0x20000 - 24);
        assert_eq!(t.copy_done_off(), 0x20000 - 32);
        assert_eq!(t.swap_info_off(), 0x20000 - 40);
        assert_eq!(t.swap_size_off(), 0x20000 - 48);
    }

    #[test]
    fn magic_for_align16_matches_v11() {
        let m = magic_for(16);
        assert_eq!(&m[..4], &[0x10, 0x00, 0x2d, 0xe1]);
        assert_eq!(m[15], 0x8a);
    }

    #[test]
    fn swap_info_round_trip() {
        for t in [SwapType::Test, SwapType::Perm, SwapType::Revert] {
            for img in 0..16 {
                assert_eq!(decode_swap_info(encode_swap_info(t, img), 0xff), (t, img));
            }
        }
        assert_eq!(decode_swap_info(0xff, 0xff), (SwapType::None, 0));
        assert_eq!(decode_swap_info(0x35, 0xff), (SwapType::None, 0));
        assert_eq!(decode_swap_info(0x31, 0xff), (SwapType::None, 3));
    }

    #[test]
    fn decode_reads_one_byte_per_flag_and_ignores_padding() {
        for e in [0xff_u8, 0x00] {
            let t = TrailerLayout::new(0x1000, 8, 4, e, false);
            let mut slot = vec![e; 0x1000];
            assert_eq!(TrailerState::decode(&t, &slot).magic, MagicState::Unset);
            slot[0x1000 - 16..].copy_from_slice(&t.magic());
            // image_ok: first byte set, padding dirty; copy_done: first byte erased, padding dirty.
            slot[t.image_ok_off() as usize] = FLAG_SET;
            slot[t.image_ok_off() as usize + 3] = 0x5a;
            slot[t.copy_done_off() as usize + 1] = 0x5a;
            slot[t.swap_info_off() as usize] = encode_swap_info(SwapType::Perm, 0);
            let st = TrailerState::decode(&t, &slot);
            assert_eq!(st.magic, MagicState::Good);
            assert_eq!(st.image_ok, FlagState::Set);
            assert_eq!(st.copy_done, FlagState::Unset);
            assert_eq!(st.swap_info, (SwapType::Perm, 0));
            // Only the tail is needed; a short tail reads as erased.
            let tail = &slot[0x1000 - t.info_size() as usize..];
            assert_eq!(TrailerState::decode(&t, tail), st);
            assert_eq!(TrailerState::decode(&t, &[]).image_ok, FlagState::Unset);
        }
    }
}
