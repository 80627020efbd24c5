//! `sign -E`: the encryption step of [`super::build`], as imgtool 2.5.0 does it (layout in
//! [`ota_core::image::enc`]).

use ota_core::image::tlv::TlvKind;

use crate::sign::enc::EncPublicKey;

/// Pads the image (header space + payload) with zeros to a multiple of the AES block, as imgtool
/// does before hashing an image it encrypts (the padding counts in `img_size`).
pub(super) fn pad_to_block(bytes: &mut Vec<u8>) {
    let rem = bytes.len() % ota_core::image::enc::BLOCK as usize;
    if rem != 0 {
        bytes.resize(bytes.len() + ota_core::image::enc::BLOCK as usize - rem, 0);
    }
}

/// Encrypts `payload` in place under a fresh AES key (left in plaintext with `clear`) and
/// returns the key-exchange TLV that carries the key to `key`'s holder.
pub(super) fn encrypt_payload(
    key: &EncPublicKey,
    payload: &mut [u8],
    clear: bool,
) -> (TlvKind, Vec<u8>) {
    let (image_key, tlv) = key.new_image_key();
    if !clear {
        image_key.apply(0, payload);
    }
    (key.scheme().tlv(), tlv)
}
