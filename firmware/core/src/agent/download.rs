//! The download path: start or resume, chunk acceptance, flash writes, verification, pending.

use embedded_storage::nor_flash::NorFlash;

use super::{Agent, AgentError, BootReport, Download, Out, Res, State};
use crate::boot::app;
use crate::boot::image_io::FlashImage;
use crate::flashmap::UpgradeMode;
use crate::image::trailer::TrailerState;
use crate::image::trailer::{FlagState, MagicState, SwapType};
use crate::image::verify::{validate, validate_encrypted_as_stored, VerifyError};
use crate::image::{align_down, align_up, ImageError};
use crate::protocol::chunk::{accept_chunk, ChunkReject};
use crate::protocol::{codec, AppVersion, ErrorCode, MessageKind};

/// How far past the persisted offset an interrupted write may have reached (largest chunk
/// plus alignment).
const MAX_WRITE: u32 = 65_535 + 32;

fn code_for<E>(e: &VerifyError<E>) -> ErrorCode {
    match e {
        VerifyError::Read(_) => ErrorCode::StorageRead,
        VerifyError::Format(ImageError::BadMagic(_) | ImageError::TooShortForHeader) => {
            ErrorCode::ImageBadMagic
        }
        VerifyError::Format(_) | VerifyError::NoHash | VerifyError::BadHashLength(_) => {
            ErrorCode::ImageFormat
        }
        VerifyError::TooLarge { .. } => ErrorCode::ImageTooLarge,
        VerifyError::UnsupportedFlags(_) | VerifyError::Encrypted => ErrorCode::ImageUnsupported,
        VerifyError::HashMismatch => ErrorCode::ImageHashMismatch,
        VerifyError::UnknownKey => ErrorCode::ImageUnknownKey,
        VerifyError::Unsigned | VerifyError::BadSignature => ErrorCode::ImageBadSignature,
    }
}

impl Agent<'_> {
    fn write_size(&self) -> u32 {
        self.cfg
            .map
            .trailer_for(&self.cfg.map.secondary)
            .write_align
    }

    /// Accepts a job for `version`: resume from the journal if it is the same download,
    /// else erase the slot and start at 0. Then asks for data, or, `redirected`, waits for
    /// [`super::Inbound::Connected`] on the data server before it asks.
    pub(super) fn start_download<F: NorFlash>(
        &mut self,
        now: u64,
        version: AppVersion,
        flash: &mut F,
        redirected: bool,
    ) -> Res<Result<Out, ()>, F::Error> {
        let (resume, next_rec) = self.journal.read(flash).map_err(AgentError::Flash)?;
        let mut d = Download {
            version,
            total: None,
            received: 0,
            flushed: 0,
            tail: [0; 32],
            next_rec: 0,
            requested_at: now,
            retries: 0,
            inconsistent: false,
            fell_back: false,
            pulling: false,
            awaiting_server: redirected,
        };
        self.resumed_from = None;
        let resumed = match resume {
            Some(r) if r.version == version && r.total > 0 => {
                let mut next = next_rec;
                let at = self.resume_point(flash, &mut next, r.written.min(r.total))?;
                at.map(|at| (r.total, at, next))
            }
            _ => None,
        };
        if let Some((total, at, next)) = resumed {
            d.total = Some(total);
            d.received = at;
            d.flushed = at;
            d.next_rec = next;
            self.resumed_from = Some(at);
        } else {
            let size = self.cfg.map.secondary.size;
            flash.erase(0, size).map_err(AgentError::Flash)?;
        }
        self.state = State::Download(d);
        if redirected {
            return Ok(Ok(Out::Nothing));
        }
        Ok(self.first_request(now))
    }

    /// The first data request of a download: "Request Update" for a fresh push download,
    /// else the first missing chunk.
    pub(super) fn first_request(&mut self, now: u64) -> Result<Out, ()> {
        if let State::Download(d) = &mut self.state {
            d.awaiting_server = false;
            d.requested_at = now;
        }
        if self.cfg.delivery == super::Delivery::Push && self.resumed_from.is_none() {
            return self.request(MessageKind::RequestUpdate);
        }
        self.ask(now)
    }

    /// Where a resumed download continues. The bytes after `written` that an interrupted
    /// write may have touched must be erased before we write there again; if they are not,
    /// rewind to the start of that sector: first record the rewind in the journal, then erase
    /// (so the journal never claims erased data). `None` when the journal has no room for
    /// that record: start over.
    fn resume_point<F: NorFlash>(
        &mut self,
        flash: &mut F,
        next: &mut u32,
        written: u32,
    ) -> Res<Option<u32>, F::Error> {
        let written = align_down(written, self.write_size());
        let limit = self.cfg.map.download_max_image_size();
        let end = written.saturating_add(MAX_WRITE).min(limit);
        let erased = self.cfg.map.secondary.erase_value;
        let mut buf = [0u8; 64];
        let mut off = written;
        let mut clean = true;
        while off < end && clean {
            let n = (end - off).min(64);
            flash
                .read(off, &mut buf[..n as usize])
                .map_err(AgentError::Flash)?;
            clean = buf[..n as usize].iter().all(|b| *b == erased);
            off += n;
        }
        if clean {
            return Ok(Some(written));
        }
        if !self.journal.has_room(*next) {
            return Ok(None);
        }
        let es = self.cfg.map.secondary.erase_size;
        let from = align_down(written, es);
        self.journal
            .append(flash, next, from, false)
            .map_err(AgentError::Flash)?;
        flash
            .erase(from, align_up(end, es).min(limit))
            .map_err(AgentError::Flash)?;
        Ok(Some(from))
    }

    /// Publishes the chunk request for the first missing byte (pull), recording the time.
    pub(super) fn ask(&mut self, now: u64) -> Result<Out, ()> {
        let State::Download(d) = &mut self.state else {
            return Ok(Out::Nothing);
        };
        d.requested_at = now;
        d.pulling = true;
        let (offset, total) = (d.received, d.total);
        let chunk = u32::from(self.cfg.chunk_size);
        // The exact size of the last chunk, not the C agent's `-1` (publisher.py fails on it).
        let size = match total {
            Some(t) if t - offset < chunk => i64::from(t - offset),
            _ => i64::from(chunk),
        };
        let n = codec::encode_chunk_request(
            &mut self.out,
            &self.cfg.identity,
            self.cfg.running,
            &self.unique,
            "",
            i64::from(offset),
            size,
        )
        .map_err(|_| ())?;
        Ok(Out::Publish(n))
    }

    /// No data within the chunk timeout: ask again, or give up the session (keeping progress).
    pub(super) fn retry<F: NorFlash>(
        &mut self,
        now: u64,
        flash: &mut F,
    ) -> Res<Result<Out, ()>, F::Error> {
        let State::Download(d) = &mut self.state else {
            return Ok(Ok(Out::Nothing));
        };
        d.retries += 1;
        if d.retries <= self.cfg.max_retries {
            return Ok(self.ask(now));
        }
        if !d.fell_back && !d.inconsistent {
            // The publisher does not answer chunk requests: ask for the whole image once, as
            // the C agent starts over. The prefix already written is kept (pushed chunks up to
            // it are duplicates).
            d.fell_back = true;
            d.pulling = false;
            d.retries = 0;
            d.requested_at = now;
            return Ok(self.request(MessageKind::RequestUpdate));
        }
        let inconsistent = d.inconsistent;
        self.last_error = Some(if inconsistent {
            ErrorCode::ChunkInconsistent
        } else {
            ErrorCode::TooManyRetries
        });
        if inconsistent {
            // The publisher's image no longer matches the journal: start over next time.
            self.discard(flash)?;
        }
        self.idle(now);
        Ok(Ok(Out::Nothing))
    }

    /// Erases the header sector and the trailer sectors (journal) of the secondary slot.
    fn discard<F: NorFlash>(&mut self, flash: &mut F) -> Res<(), F::Error> {
        let s = self.cfg.map.secondary;
        flash.erase(0, s.erase_size).map_err(AgentError::Flash)?;
        let from = self.cfg.map.trailer_sector_off(&s);
        flash.erase(from, s.size).map_err(AgentError::Flash)
    }

    pub(super) fn on_chunk<F: NorFlash>(
        &mut self,
        now: u64,
        payload: &[u8],
        flash: &mut F,
    ) -> Res<Result<Out, ()>, F::Error> {
        let (h, data) = match accept_chunk(payload, self.cfg.running) {
            Ok(x) => x,
            Err(ChunkReject::InvalidVersion) => {
                self.last_error = Some(ErrorCode::InvalidVersion);
                self.idle(now);
                return Ok(Ok(Out::Nothing));
            }
            Err(_) => return Ok(Ok(Out::Nothing)), // a stray message: ignore
        };
        let State::Download(mut d) = self.state else {
            return Ok(Ok(Out::Nothing));
        };
        if h.version != d.version || d.total.is_some_and(|t| t != h.total_size) {
            d.inconsistent = true;
            self.state = State::Download(d);
            return Ok(Ok(Out::Nothing));
        }
        if d.total.is_none() {
            if h.total_size > self.cfg.map.download_max_image_size() || h.total_size < 32 {
                return self.fail(now, ErrorCode::ImageTooLarge, flash).map(Ok);
            }
            d.total = Some(h.total_size);
            self.journal
                .write_header(flash, d.version, h.total_size)
                .map_err(AgentError::Flash)?;
            d.next_rec = 1;
        }
        let total = h.total_size;
        let (off, end) = (
            h.image_offset,
            h.image_offset.saturating_add(u32::from(h.data_size)),
        );
        if end > total || off > d.received || end <= d.received {
            // Out of range, from the future (asked for again later) or a duplicate. A push
            // replaying the start of the image is still the publisher at work: wait for it.
            if !d.pulling && end <= d.received {
                d.requested_at = now;
            }
            self.state = State::Download(d);
            return Ok(Ok(Out::Nothing));
        }
        let fresh = &data[(d.received - off) as usize..];
        self.write_data(flash, &mut d, fresh)?;
        d.retries = 0;
        if d.received == total {
            self.state = State::Download(d);
            return self.finish(now, flash, d);
        }
        self.journal
            .append(flash, &mut d.next_rec, d.flushed, false)
            .map_err(AgentError::Flash)?;
        self.state = State::Download(d);
        if !d.pulling {
            // The publisher is pushing: the next chunk comes by itself.
            d.requested_at = now;
            self.state = State::Download(d);
            return Ok(Ok(Out::Nothing));
        }
        Ok(self.ask(now))
    }

    /// Appends `bytes` at `d.received`: whole write-size blocks go to flash, the rest waits in
    /// `d.tail`.
    fn write_data<F: NorFlash>(
        &self,
        flash: &mut F,
        d: &mut Download,
        mut bytes: &[u8],
    ) -> Res<(), F::Error> {
        let w = self.write_size() as usize;
        let mut tail_len = (d.received - d.flushed) as usize;
        if tail_len > 0 {
            let take = (w - tail_len).min(bytes.len());
            d.tail[tail_len..tail_len + take].copy_from_slice(&bytes[..take]);
            tail_len += take;
            d.received += take as u32;
            bytes = &bytes[take..];
            if tail_len < w {
                return Ok(());
            }
            flash
                .write(d.flushed, &d.tail[..w])
                .map_err(AgentError::Flash)?;
            d.flushed += w as u32;
        }
        let aligned = bytes.len() / w * w;
        if aligned > 0 {
            flash
                .write(d.flushed, &bytes[..aligned])
                .map_err(AgentError::Flash)?;
            d.flushed += aligned as u32;
        }
        let rest = &bytes[aligned..];
        d.tail[..rest.len()].copy_from_slice(rest);
        d.received += (aligned + rest.len()) as u32;
        Ok(())
    }

    /// All bytes received: flush the tail, verify, set pending.
    fn finish<F: NorFlash>(
        &mut self,
        now: u64,
        flash: &mut F,
        mut d: Download,
    ) -> Res<Result<Out, ()>, F::Error> {
        let w = self.write_size();
        let tail = d.received - d.flushed;
        if tail > 0 {
            let mut block = [self.cfg.map.secondary.erase_value; 32];
            block[..tail as usize].copy_from_slice(&d.tail[..tail as usize]);
            flash
                .write(d.flushed, &block[..w as usize])
                .map_err(AgentError::Flash)?;
            d.flushed += w;
        }
        self.journal
            .append(flash, &mut d.next_rec, d.received, true)
            .map_err(AgentError::Flash)?;
        self.state = State::Download(d);
        self.verify_and_set_pending(now, flash, d.received)
    }

    /// Validates the downloaded image and marks it pending; a bad image is erased and
    /// reported as `Failure`.
    fn verify_and_set_pending<F: NorFlash>(
        &mut self,
        now: u64,
        flash: &mut F,
        total: u32,
    ) -> Res<Result<Out, ()>, F::Error> {
        let limit = self.cfg.map.download_max_image_size();
        let checked = match validate(&mut FlashImage::new(flash, limit), limit, self.cfg.keys) {
            // An encrypted image's hash is over the plaintext: only the bootloader, which has
            // the decryption key, can check it (and refuses what fails). Here: its structure
            // and the signature of its recorded hash.
            Err(VerifyError::HashMismatch) => validate_encrypted_as_stored(
                &mut FlashImage::new(flash, limit),
                limit,
                self.cfg.keys,
            ),
            r => r,
        }
        .map(|img| (img.header, img.end));
        let verdict = match checked {
            Ok((_, end)) if end != total => Err(ErrorCode::ImageFormat),
            Ok((header, _))
                if !self
                    .cfg
                    .running
                    .accepts(AppVersion::from_image(header.version)) =>
            {
                Err(ErrorCode::InvalidVersion)
            }
            Ok(_) => Ok(()),
            Err(VerifyError::Read(e)) => return Err(AgentError::Flash(e)),
            Err(e) => Err(code_for(&e)),
        };
        if let Err(code) = verdict {
            return self.fail(now, code, flash).map(Ok);
        }
        let layout = self.cfg.map.trailer_for(&self.cfg.map.secondary);
        if !TrailerState::fields_erased(flash, &layout).map_err(AgentError::Flash)? {
            // Debris of an interrupted "set pending": start the trailer afresh.
            let version = match self.state {
                State::Download(d) => d.version,
                _ => AppVersion::default(),
            };
            self.rewrite_trailer(flash, version, total)?;
        }
        app::set_pending(flash, &layout, self.cfg.permanent).map_err(AgentError::from_boot)?;
        self.state = State::ReadyToReboot;
        Ok(Ok(Out::Reboot))
    }

    /// Abandons the download: erase what was written, report `Failure` with `code`.
    fn fail<F: NorFlash>(
        &mut self,
        now: u64,
        code: ErrorCode,
        flash: &mut F,
    ) -> Res<Out, F::Error> {
        fw_warn!("download failed: {}", code);
        self.discard(flash)?;
        self.last_error = Some(code);
        self.idle(now);
        self.result(false).map_err(|()| AgentError::BufferTooSmall)
    }

    /// Call once after every boot (before any session): finds a test image awaiting
    /// confirmation, a reverted update, or a finished download whose "set pending" was cut
    /// by a reset (it is verified and made pending again: reboot).
    ///
    /// # Errors
    /// Flash errors.
    pub fn on_boot<P: NorFlash, S: NorFlash<Error = P::Error>>(
        &mut self,
        primary: &mut P,
        secondary: &mut S,
    ) -> Res<BootReport, P::Error> {
        self.state = State::Idle { next_check: 0 };
        let pl = self.cfg.map.trailer_for(&self.cfg.map.primary);
        let fresh = match self.cfg.map.mode {
            UpgradeMode::Swap => {
                app::needs_confirmation(primary, &pl).map_err(AgentError::Flash)?
            }
            // Overwrite never reverts, but the bootloader leaves the new image with a magic
            // and no `image_ok`: confirming it marks the install as reported.
            UpgradeMode::Overwrite => {
                let st = TrailerState::read(primary, &pl).map_err(AgentError::Flash)?;
                st.magic == MagicState::Good && st.image_ok == FlagState::Unset
            }
        };
        if fresh {
            self.state = State::AwaitingConfirm;
            return Ok(BootReport::AwaitingConfirm);
        }
        let sl = self.cfg.map.trailer_for(&self.cfg.map.secondary);
        let sec = TrailerState::read(secondary, &sl).map_err(AgentError::Flash)?;
        let (resume, _) = self.journal.read(secondary).map_err(AgentError::Flash)?;
        if let Some(r) = resume.filter(|r| r.total > 0 && r.written >= r.total) {
            // A finished download whose "set pending" never completed (or left a trailer the
            // bootloader could not act on, e.g. a torn `image_ok`).
            self.state = State::Download(Download {
                version: r.version,
                total: Some(r.total),
                received: r.total,
                flushed: r.total,
                tail: [0; 32],
                next_rec: 0,
                requested_at: 0,
                retries: 0,
                inconsistent: false,
                fell_back: false,
                pulling: false,
                awaiting_server: false,
            });
            return match self.verify_and_set_pending(0, secondary, r.total)? {
                Ok(Out::Reboot) => Ok(BootReport::RebootPending),
                _ => Ok(BootReport::Normal),
            };
        }
        if sec.magic != MagicState::Unset {
            // A trailer the bootloader did not act on, without a finished download: clear it.
            self.discard(secondary)?;
            return Ok(BootReport::Normal);
        }
        let prim = TrailerState::read(primary, &pl).map_err(AgentError::Flash)?;
        if prim.swap_info.0 == SwapType::Revert && self.secondary_is_newer(secondary)? {
            return Ok(BootReport::Reverted);
        }
        Ok(BootReport::Normal)
    }

    fn secondary_is_newer<F: NorFlash>(&self, flash: &mut F) -> Res<bool, F::Error> {
        let mut hb = [0u8; 32];
        flash.read(0, &mut hb).map_err(AgentError::Flash)?;
        Ok(crate::image::ImageHeader::parse(&hb)
            .is_ok_and(|h| self.cfg.running.accepts(AppVersion::from_image(h.version))))
    }

    /// After [`BootReport::Reverted`]: report `Failure` (`image_reverted`) once and erase the
    /// rejected image's header so it is not reported again.
    ///
    /// # Errors
    /// Flash or encoding errors.
    pub fn report_reverted<F: NorFlash>(
        &mut self,
        secondary: &mut F,
    ) -> Res<Option<super::Outbound<'_>>, F::Error> {
        let es = self.cfg.map.secondary.erase_size;
        secondary.erase(0, es).map_err(AgentError::Flash)?;
        self.last_error = Some(ErrorCode::ImageReverted);
        let out = self
            .result(false)
            .map_err(|()| AgentError::BufferTooSmall)?;
        Ok(self.emit(out))
    }

    fn rewrite_trailer<F: NorFlash>(
        &mut self,
        flash: &mut F,
        version: AppVersion,
        total: u32,
    ) -> Res<(), F::Error> {
        let s = self.cfg.map.secondary;
        let from = self.cfg.map.trailer_sector_off(&s);
        flash.erase(from, s.size).map_err(AgentError::Flash)?;
        self.journal
            .write_header(flash, version, total)
            .map_err(AgentError::Flash)?;
        let mut next = 1;
        self.journal
            .append(flash, &mut next, total, true)
            .map_err(AgentError::Flash)
    }
}
