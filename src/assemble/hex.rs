//! Intel HEX in and out, the way imgtool (python `intelhex`) reads and writes it, so a signed
//! HEX is byte-identical to imgtool's.
//!
//! Reading: every data record is placed at its absolute address (extended linear and extended
//! segment addresses honoured); the image is the span from the lowest to the highest address,
//! gaps filled with 0xFF (`intelhex` padding). Start-address records are ignored.
//!
//! Writing: 16 data bytes per record, never across a 64 KiB boundary or a hole; an extended
//! linear address record before the first record and whenever the upper 16 bits change (none at
//! all when every address is below 0x10000); no start address; `:00000001FF` at the end; LF
//! line endings; upper-case hex digits.

use std::borrow::Cow;

/// Largest span a HEX input may cover (gaps are filled, so a stray record far away would
/// otherwise allocate gigabytes).
pub const MAX_SPAN: u64 = 64 << 20;

/// Why Intel HEX text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HexError {
    /// A malformed record (line number, 1-based).
    #[error("line {line}: {reason}")]
    Record {
        /// 1-based line number.
        line: usize,
        /// What the parser reported.
        reason: String,
    },
    /// Two data records write the same address (intelhex refuses this too).
    #[error("data records overlap at address {0:#x}")]
    Overlap(u64),
    /// No data records at all.
    #[error("contains no data records")]
    Empty,
    /// The data spans more than [`MAX_SPAN`].
    #[error("data spans {span:#x} bytes ({min:#x}..{max:#x}); refusing more than 64 MiB")]
    TooSparse {
        /// Span in bytes.
        span: u64,
        /// Lowest address.
        min: u64,
        /// One past the highest address.
        max: u64,
    },
}

/// Parses Intel HEX text into `(base address, contiguous bytes)`.
///
/// # Errors
/// [`HexError`] for malformed records, no data, or a span over [`MAX_SPAN`].
pub fn parse(text: &[u8]) -> Result<(u32, Vec<u8>), HexError> {
    let mut chunks: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
    let mut data: Vec<u8> = Vec::with_capacity(text.len() / 2);
    let mut upper: u64 = 0;
    let mut rec = Vec::with_capacity(64);
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let err = |reason: &str| HexError::Record {
            line: i + 1,
            reason: reason.to_string(),
        };
        decode_record(line, &mut rec).map_err(err)?;
        let payload = &rec[4..rec.len() - 1];
        let offset = u64::from(u16::from_be_bytes([rec[1], rec[2]]));
        match (rec[3], payload.len()) {
            (0x00, _) => {
                let start = data.len();
                data.extend_from_slice(payload);
                chunks.push((upper + offset, start..data.len()));
            }
            (0x01, 0) => break,
            (0x02, 2) => upper = u64::from(u16::from_be_bytes([payload[0], payload[1]])) << 4,
            (0x04, 2) => upper = u64::from(u16::from_be_bytes([payload[0], payload[1]])) << 16,
            (0x03 | 0x05, 4) => {}
            (t, _) => {
                return Err(err(&format!(
                    "unsupported record type {t:#04x} or bad length"
                )))
            }
        }
    }
    assemble(&chunks, &data)
}

/// Decodes `:LLAAAATT…CC` into bytes and checks length and checksum.
fn decode_record(line: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let hex = line
        .strip_prefix(b":")
        .ok_or("record does not start with ':'")?;
    if hex.len() % 2 != 0 || hex.len() < 10 {
        return Err("record has an odd or too small number of hex digits");
    }
    out.clear();
    out.resize(hex.len() / 2, 0);
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    if bad & 0xf0 != 0 {
        return Err("not a hex digit");
    }
    if usize::from(out[0]) + 5 != out.len() {
        return Err("record length does not match its byte count");
    }
    if out.iter().fold(0u8, |a, b| a.wrapping_add(*b)) != 0 {
        return Err("bad checksum");
    }
    Ok(())
}

/// Hex digit values; 0xff for anything that is not a hex digit.
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Places the data records at their addresses, filling gaps with 0xff.
fn assemble(
    chunks: &[(u64, std::ops::Range<usize>)],
    data: &[u8],
) -> Result<(u32, Vec<u8>), HexError> {
    let min = chunks.iter().map(|c| c.0).min().ok_or(HexError::Empty)?;
    let max = chunks
        .iter()
        .map(|c| c.0 + c.1.len() as u64)
        .max()
        .unwrap_or(min);
    if max - min > MAX_SPAN || max > 1 << 32 {
        return Err(HexError::TooSparse {
            span: max - min,
            min,
            max,
        });
    }
    let mut sorted: Vec<(u64, u64)> = chunks
        .iter()
        .map(|(a, r)| (*a, *a + r.len() as u64))
        .collect();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(HexError::Overlap(w[1].0));
    }
    let mut out = vec![0xffu8; (max - min) as usize];
    for (addr, range) in chunks {
        let start = (addr - min) as usize;
        out[start..start + range.len()].copy_from_slice(&data[range.clone()]);
    }
    // max ≤ 2^32 and min < max.
    Ok((min as u32, out))
}

/// Writes `segments` (address, bytes; sorted by address, non-overlapping) as Intel HEX text
/// exactly as python `intelhex` `tofile(…, "hex")` does.
#[must_use]
pub fn write(segments: &[(u64, &[u8])]) -> Vec<u8> {
    let total: usize = segments.iter().map(|s| s.1.len()).sum();
    let mut out = Vec::with_capacity(total * 2 + total / 16 * 12 + 64);
    // intelhex keeps a sparse byte map, so touching segments form one run of records.
    let mut nonempty: Vec<(u64, Cow<'_, [u8]>)> = Vec::new();
    for (addr, data) in segments.iter().filter(|s| !s.1.is_empty()) {
        match nonempty.last_mut() {
            Some((a, prev)) if *a + prev.len() as u64 == *addr => {
                prev.to_mut().extend_from_slice(data)
            }
            _ => nonempty.push((*addr, Cow::Borrowed(*data))),
        }
    }
    let Some(last) = nonempty.last() else {
        out.extend_from_slice(b":00000001FF\n");
        return out;
    };
    let maxaddr = last.0 + last.1.len() as u64 - 1;
    let need_offset = maxaddr > 0xffff;
    let mut high: Option<u64> = None;
    for (base, data) in &nonempty {
        let base = *base;
        let mut pos = 0usize;
        while pos < data.len() {
            let addr = base + pos as u64;
            if need_offset && high != Some(addr >> 16) {
                high = Some(addr >> 16);
                // Addresses are < 2^32, so the upper half fits in u16.
                record(&mut out, 0, 4, &((addr >> 16) as u16).to_be_bytes());
            }
            let low = addr & 0xffff;
            let n = (16u64).min(0x1_0000 - low).min((data.len() - pos) as u64) as usize;
            record(&mut out, low as u16, 0, &data[pos..pos + n]);
            pos += n;
        }
    }
    out.extend_from_slice(b":00000001FF\n");
    out
}

fn record(out: &mut Vec<u8>, offset: u16, kind: u8, data: &[u8]) {
    let [hi, lo] = offset.to_be_bytes();
    let head = [data.len() as u8, hi, lo, kind];
    let mut sum = 0u8;
    out.push(b':');
    for b in head.iter().chain(data.iter()) {
        sum = sum.wrapping_add(*b);
    }
    for b in head {
        out.extend_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    for b in data {
        out.extend_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
    out.extend_from_slice(&HEX_PAIRS[usize::from(sum.wrapping_neg())]);
    out.push(b'\n');
}

/// Upper-case hex digits for every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_64k_boundary() {
        let data: Vec<u8> = (0..0x30u8).collect();
        let text = String::from_utf8(write(&[(0x1000_fff8, &data)])).unwrap();
        assert!(text.starts_with(":020000041000EA\n"), "{text}");
        assert!(text.contains(":020000041001E9\n"), "{text}");
        assert!(text.ends_with(":00000001FF\n"));
        let (base, back) = parse(text.as_bytes()).unwrap();
        assert_eq!(base, 0x1000_fff8);
        assert_eq!(back, data);
    }

    #[test]
    fn low_addresses_have_no_offset_record_and_gaps_fill_ff() {
        let text = String::from_utf8(write(&[(0x10, &[1, 2][..]), (0x20, &[3][..])])).unwrap();
        assert_eq!(text, ":020010000102EB\n:0100200003DC\n:00000001FF\n");
        let (base, back) = parse(text.as_bytes()).unwrap();
        assert_eq!(base, 0x10);
        assert_eq!(back.len(), 0x11);
        assert_eq!(back[2], 0xff);
        assert_eq!(back[0x10], 3);
    }

    #[test]
    fn overlapping_records_are_refused() {
        let e = parse(b":020010000102EB\n:01001100FFEF\n").unwrap_err();
        assert!(matches!(e, HexError::Overlap(0x11)), "{e}");
    }

    #[test]
    fn bad_checksum_names_the_line() {
        let e = parse(b":020010000102EC\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
    }
}
