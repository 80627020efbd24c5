"""Decrypts an MCUboot encrypted image (ECIES-P256 or ECIES-X25519, AES-128-CTR), independently
of otactl, with the `cryptography` package that imgtool's venv already has.

    python mcuboot_decrypt.py ENC_PRIVATE_KEY.pem IN.bin OUT.bin

OUT is IN with the payload decrypted (header and TLVs unchanged), i.e. what MCUboot writes into
the primary slot; `imgtool verify` then checks its hash and signature. Used by
tests/image/encrypted.rs.
"""

import struct
import sys

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TLV_ENC_EC256 = 0x32
TLV_ENC_X25519 = 0x33


def tlvs(image):
    """(type, value) of the unprotected TLVs."""
    _, _, hdr_size, prot_size, img_size = struct.unpack_from("<IIHHI", image, 0)
    off = hdr_size + img_size + prot_size
    magic, total = struct.unpack_from("<HH", image, off)
    assert magic == 0x6907, f"no unprotected TLV area at {off:#x}"
    end, off = off + total, off + 4
    while off < end:
        kind, length = struct.unpack_from("<HH", image, off)
        yield kind, bytes(image[off + 4:off + 4 + length])
        off += 4 + length


def aes_ctr(key, data):
    c = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).decryptor()
    return c.update(data) + c.finalize()


def main(key_path, in_path, out_path):
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(in_path, "rb") as f:
        image = bytearray(f.read())
    found = dict(tlvs(image))
    if isinstance(key, x25519.X25519PrivateKey):
        tlv = found[TLV_ENC_X25519]
        eph, rest = tlv[:32], tlv[32:]
        shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(eph))
    else:
        tlv = found[TLV_ENC_EC256]
        eph, rest = tlv[:65], tlv[65:]
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), eph)
        shared = key.exchange(ec.ECDH(), point)
    tag, wrapped = rest[:32], rest[32:48]
    okm = HKDF(hashes.SHA256(), 48, salt=None, info=b"MCUBoot_ECIES_v1").derive(shared)
    mac = hmac.HMAC(okm[16:], hashes.SHA256())
    mac.update(wrapped)
    mac.verify(tag)
    image_key = aes_ctr(okm[:16], wrapped)
    _, _, hdr_size, _, img_size = struct.unpack_from("<IIHHI", image, 0)
    image[hdr_size:hdr_size + img_size] = aes_ctr(image_key, bytes(image[hdr_size:hdr_size + img_size]))
    with open(out_path, "wb") as f:
        f.write(image)


if __name__ == "__main__":
    main(*sys.argv[1:4])
