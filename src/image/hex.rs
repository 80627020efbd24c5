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

use std::fmt::Write as _;

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
    /// Not UTF-8 text.
    #[error("is not text")]
    NotText,
}

/// Parses Intel HEX text into `(base address, contiguous bytes)`.
///
/// # Errors
/// [`HexError`] for malformed records, no data, or a span over [`MAX_SPAN`].
pub fn parse(text: &[u8]) -> Result<(u32, Vec<u8>), HexError> {
    let text = std::str::from_utf8(text).map_err(|_| HexError::NotText)?;
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut upper: u64 = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let rec = ihex::Record::from_record_string(line).map_err(|e| HexError::Record {
            line: i + 1,
            reason: e.to_string(),
        })?;
        match rec {
            ihex::Record::Data { offset, value } => {
                chunks.push((upper + u64::from(offset), value));
            }
            ihex::Record::ExtendedLinearAddress(a) => upper = u64::from(a) << 16,
            ihex::Record::ExtendedSegmentAddress(s) => upper = u64::from(s) << 4,
            ihex::Record::EndOfFile => break,
            ihex::Record::StartLinearAddress(_) | ihex::Record::StartSegmentAddress { .. } => {}
        }
    }
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
    let mut out = vec![0xffu8; (max - min) as usize];
    for (addr, data) in chunks {
        let start = (addr - min) as usize;
        out[start..start + data.len()].copy_from_slice(&data);
    }
    // max ≤ 2^32 and min < max.
    Ok((min as u32, out))
}

/// Writes `segments` (address, bytes; sorted by address, non-overlapping) as Intel HEX text
/// exactly as python `intelhex` `tofile(…, "hex")` does.
#[must_use]
pub fn write(segments: &[(u64, &[u8])]) -> String {
    let total: usize = segments.iter().map(|s| s.1.len()).sum();
    let mut out = String::with_capacity(total * 2 + total / 16 * 12 + 64);
    let nonempty: Vec<(u64, &[u8])> = segments
        .iter()
        .copied()
        .filter(|s| !s.1.is_empty())
        .collect();
    let Some(last) = nonempty.last() else {
        out.push_str(":00000001FF\n");
        return out;
    };
    let maxaddr = last.0 + last.1.len() as u64 - 1;
    let need_offset = maxaddr > 0xffff;
    let mut high: Option<u64> = None;
    for (base, data) in nonempty {
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
    out.push_str(":00000001FF\n");
    out
}

fn record(out: &mut String, offset: u16, kind: u8, data: &[u8]) {
    let mut sum: u8 = (data.len() as u8)
        .wrapping_add((offset >> 8) as u8)
        .wrapping_add(offset as u8)
        .wrapping_add(kind);
    let _ = write!(out, ":{:02X}{offset:04X}{kind:02X}", data.len());
    for b in data {
        sum = sum.wrapping_add(*b);
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    let _ = writeln!(out, "{:02X}", sum.wrapping_neg());
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_64k_boundary() {
        let data: Vec<u8> = (0..0x30u8).collect();
        let text = write(&[(0x1000_fff8, &data)]);
        assert!(text.starts_with(":020000041000EA\n"), "{text}");
        assert!(text.contains(":020000041001E9\n"), "{text}");
        assert!(text.ends_with(":00000001FF\n"));
        let (base, back) = parse(text.as_bytes()).unwrap();
        assert_eq!(base, 0x1000_fff8);
        assert_eq!(back, data);
    }

    #[test]
    fn low_addresses_have_no_offset_record_and_gaps_fill_ff() {
        let text = write(&[(0x10, &[1, 2][..]), (0x20, &[3][..])]);
        assert_eq!(text, ":020010000102EB\n:0100200003DC\n:00000001FF\n");
        let (base, back) = parse(text.as_bytes()).unwrap();
        assert_eq!(base, 0x10);
        assert_eq!(back.len(), 0x11);
        assert_eq!(back[2], 0xff);
        assert_eq!(back[0x10], 3);
    }

    #[test]
    fn bad_checksum_names_the_line() {
        let e = parse(b":020010000102EC\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
    }
}
