//! `otactl info`: an image's header, TLVs and trailer (like `imgtool dumpinfo`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ota_core::image::{ParsedImage, Tlv};
use otactl::assemble::{hex_string, not_an_image, read_image_file, read_trailer, TrailerInfo};
use serde_json::{json, Value};

use super::Ctx;

/// Show an image's header, TLVs and trailer (like `imgtool dumpinfo`).
///
/// The trailer is shown when the file extends past the image (a --pad/--confirm output, or a
/// slot dump); its erased value is taken from the byte after the image unless --erased-val is
/// given.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl info app.bin --json | jq .header.version"
)]
pub struct Cmd {
    /// The image (.bin, or .hex).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Erased value of the flash the file came from (0 or 0xff), for decoding the trailer.
    #[arg(short = 'R', long, value_name = "VALUE", value_parser = ["0", "0xff"])]
    pub erased_val: Option<String>,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let bytes = read_image_file(&self.image)?;
        if let Some(why) = not_an_image(&bytes) {
            return Err(otactl::Rejected(format!("{}: {why}", self.image.display())).into());
        }
        let img = ParsedImage::parse(&bytes)
            .map_err(|e| otactl::Rejected(format!("{}: {e}", self.image.display())))
            .context("not an MCUboot image")?;
        let erased = self
            .erased_val
            .as_deref()
            .map(|v| if v == "0" { 0 } else { 0xff });
        let trailer = read_trailer(&bytes, img.len(), erased);
        let doc = describe(&self.image, &img, trailer.as_ref(), bytes.len());
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print_text(&doc);
        }
        Ok(())
    }
}

fn tlv_json(t: &Tlv<'_>) -> Value {
    json!({
        "type": t.kind.0,
        "name": t.kind.name().unwrap_or("UNKNOWN"),
        "offset": t.offset,
        "len": t.value.len(),
        "value": hex_string(t.value),
    })
}

/// The encryption an image says it has: the flag and the key-exchange TLV (`null` for none).
fn encryption(img: &ParsedImage<'_>) -> Value {
    use ota_core::image::enc::EncScheme;
    use ota_core::image::ImageFlags;
    let flag = img.header.flags.contains(ImageFlags::ENCRYPTED_AES128);
    let tlv = img
        .tlvs()
        .filter_map(Result::ok)
        .find(|t| !t.protected && t.kind.name().is_some_and(|n| n.starts_with("ENC")));
    if !flag && tlv.is_none() {
        return Value::Null;
    }
    let scheme = tlv.and_then(|t| EncScheme::from_tlv(t.kind));
    json!({
        "flag": if flag { "ENCRYPTED_AES128" } else { "none" },
        "cipher": "AES-128-CTR",
        "key_exchange": scheme.map_or("unknown", EncScheme::display_name),
        "tlv": tlv.and_then(|t| t.kind.name()),
    })
}

fn describe(
    path: &std::path::Path,
    img: &ParsedImage<'_>,
    t: Option<&TrailerInfo>,
    file_len: usize,
) -> Value {
    let h = &img.header;
    let (prot, unprot): (Vec<Tlv<'_>>, Vec<Tlv<'_>>) =
        img.tlvs().filter_map(Result::ok).partition(|t| t.protected);
    json!({
        "file": path.display().to_string(),
        "file_size": file_len,
        "header": {
            "magic": format!("{:#010x}", ota_core::image::IMAGE_MAGIC),
            "load_addr": h.load_addr,
            "hdr_size": h.hdr_size,
            "protect_tlv_size": h.protect_tlv_size,
            "img_size": h.img_size,
            "flags": h.flags.0,
            "flag_names": h.flags.names().collect::<Vec<_>>(),
            "version": h.version.to_string(),
        },
        "payload": { "offset": h.hdr_size, "size": h.img_size },
        "encryption": encryption(img),
        "protected_tlvs": prot.iter().map(tlv_json).collect::<Vec<_>>(),
        "tlvs": unprot.iter().map(tlv_json).collect::<Vec<_>>(),
        "image_size": img.len(),
        "trailer": t.map(|t| trailer_json(t, img)),
    })
}

/// The trailer fields; for an encrypted image also whether its AES key fields are written.
fn trailer_json(t: &TrailerInfo, img: &ParsedImage<'_>) -> Value {
    let mut v = json!({
            "slot_size": t.layout.slot_size,
            "max_align": t.layout.max_align,
            "erased_val": t.layout.erased_val,
            "magic": format!("{:?}", t.magic).to_lowercase(),
            "image_ok": format!("{:?}", t.image_ok.1).to_lowercase(),
            "image_ok_byte": t.image_ok.0,
            "copy_done": format!("{:?}", t.copy_done.1).to_lowercase(),
            "copy_done_byte": t.copy_done.0,
            "swap_type": format!("{:?}", t.swap_info.1).to_lowercase(),
            "image_num": t.swap_info.2,
            "swap_info_byte": t.swap_info.0,
            "swap_size": t.swap_size,
    });
    let encrypted = img
        .header
        .flags
        .contains(ota_core::image::ImageFlags::ENCRYPTED_AES128);
    if encrypted {
        let state = |w: bool| if w { "written" } else { "erased" };
        v["enc_keys"] = json!(t.enc_keys_written.map(state));
    }
    v
}

fn print_text(d: &Value) {
    let h = &d["header"];
    outln!(
        "{} ({} bytes)",
        d["file"].as_str().unwrap_or(""),
        d["file_size"]
    );
    outln!("header:");
    outln!(
        "  magic:              {}",
        h["magic"].as_str().unwrap_or("")
    );
    for k in [
        "load_addr",
        "hdr_size",
        "protect_tlv_size",
        "img_size",
        "flags",
    ] {
        outln!(
            "  {:<19} {:#x}",
            format!("{k}:"),
            h[k].as_u64().unwrap_or(0)
        );
    }
    let names: Vec<&str> = h["flag_names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !names.is_empty() {
        outln!("  flag names:         {}", names.join(" | "));
    }
    outln!(
        "  version:            {}",
        h["version"].as_str().unwrap_or("")
    );
    outln!(
        "payload: offset {:#x}, {:#x} bytes",
        h["hdr_size"].as_u64().unwrap_or(0),
        h["img_size"].as_u64().unwrap_or(0)
    );
    if let Some(e) = d["encryption"].as_object() {
        outln!(
            "encryption: {} payload, key by {} ({} TLV), flag {}",
            e["cipher"].as_str().unwrap_or(""),
            e["key_exchange"].as_str().unwrap_or(""),
            e["tlv"].as_str().unwrap_or("no"),
            e["flag"].as_str().unwrap_or("")
        );
    }
    for (title, key) in [("protected TLVs", "protected_tlvs"), ("TLVs", "tlvs")] {
        let list = d[key].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            continue;
        }
        outln!("{title}:");
        for t in list {
            outln!(
                "  {:#06x} {:<12} @{:#x} len {:#x}: {}",
                t["type"].as_u64().unwrap_or(0),
                t["name"].as_str().unwrap_or(""),
                t["offset"].as_u64().unwrap_or(0),
                t["len"].as_u64().unwrap_or(0),
                t["value"].as_str().unwrap_or("")
            );
        }
    }
    outln!(
        "image size: {:#x} bytes",
        d["image_size"].as_u64().unwrap_or(0)
    );
    match d["trailer"].as_object() {
        None => outln!("trailer: none (file ends with the image)"),
        Some(t) => {
            outln!(
                "trailer (slot size {:#x}, max align {}, erased {:#04x}):",
                t["slot_size"].as_u64().unwrap_or(0),
                t["max_align"],
                t["erased_val"].as_u64().unwrap_or(0)
            );
            outln!("  magic:     {}", t["magic"].as_str().unwrap_or(""));
            outln!(
                "  image_ok:  {} ({:#04x})",
                t["image_ok"].as_str().unwrap_or(""),
                t["image_ok_byte"].as_u64().unwrap_or(0)
            );
            outln!(
                "  copy_done: {} ({:#04x})",
                t["copy_done"].as_str().unwrap_or(""),
                t["copy_done_byte"].as_u64().unwrap_or(0)
            );
            outln!(
                "  swap_info: {} image {} ({:#04x})",
                t["swap_type"].as_str().unwrap_or(""),
                t["image_num"],
                t["swap_info_byte"].as_u64().unwrap_or(0)
            );
            outln!("  swap_size: {:#x}", t["swap_size"].as_u64().unwrap_or(0));
            if let Some(k) = t.get("enc_keys") {
                outln!(
                    "  enc keys:  slot 0 {}, slot 1 {} (MCUBOOT_ENC_IMAGES swap trailer)",
                    k[0].as_str().unwrap_or(""),
                    k[1].as_str().unwrap_or("")
                );
            }
        }
    }
}
