//! The board string (`CY_TARGET_BOARD_STRING`): the kits `init` offers and the shape check that
//! `init`, `publish` and `job` run on a board string before using it.
//!
//! A device puts its board string in its request topic and compares it with the job's `Board`;
//! a publisher serving another string never hears it. The ModusToolbox build makes the string from
//! `TARGET` with `-` replaced by `_`, and an app-local BSP (ModusToolbox 3.x, Infineon's example)
//! adds `APP_` (spec/protocol.md §1.2): `TARGET=APP_CY8CPROTO-062S2-43439` reports
//! `APP_CY8CPROTO_062S2_43439`.

/// A development kit Infineon's OTA example supports, with the flash map its Makefile picks.
pub struct Kit {
    /// The ModusToolbox TARGET.
    pub target: &'static str,
    /// Its default OTA_FLASH_MAP file name.
    pub flashmap: &'static str,
}

const fn kit(target: &'static str, flashmap: &'static str) -> Kit {
    Kit { target, flashmap }
}

const PSOC62_2M: &str = "psoc62_2m_ext_swap_single.json";

/// Infineon kits (TARGET names) and their default OTA_FLASH_MAP, as ota-bootloader-abstraction's
/// `mcuboot_support.mk` chooses them.
pub const KITS: &[Kit] = &[
    kit("CY8CPROTO-062S2-43439", PSOC62_2M),
    kit("CY8CPROTO-062-4343W", PSOC62_2M),
    kit("CY8CKIT-062S2-43012", PSOC62_2M),
    kit("CY8CEVAL-062S2-LAI-4373M2", PSOC62_2M),
    kit("CY8CEVAL-062S2-MUR-43439M2", PSOC62_2M),
    kit("CY8CEVAL-062S2-CYW943439M2IPA1", PSOC62_2M),
    kit("CY8CPROTO-062S3-4343W", "psoc62_512k_xip_swap_single.json"),
    kit("KIT_XMC72_EVK", "xmc7200_int_swap_single.json"),
    kit("KIT_XMC72_EVK_MUR_43439M2", "xmc7200_int_swap_single.json"),
    kit("KIT_XMC71_EVK_LITE_V1", "xmc7100_int_swap_single.json"),
];

/// `APP_` + TARGET with `-` as `_` (the ModusToolbox rule for app-local BSPs).
pub fn board_string(target: &str) -> String {
    let s = target.replace('-', "_");
    if s.starts_with("APP_") {
        s
    } else {
        format!("APP_{s}")
    }
}

/// The kit whose board string is `board`.
pub fn kit_of(board: &str) -> Option<&'static Kit> {
    KITS.iter().find(|k| board_string(k.target) == board)
}

/// One MQTT topic level that devices also put in JSON without escaping.
pub fn check_topic_level(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('$') {
        return Err("must not start with '$'".into());
    }
    let bad = |c: &char| matches!(c, '/' | '+' | '#' | '"' | '\\') || !c.is_ascii_graphic();
    match s.chars().find(bad) {
        Some(c) => Err(format!("must not contain {c:?}")),
        None => Ok(()),
    }
}

/// Checks the shape of a board string. `Err`: it can never be what a device reports (the build's
/// TARGET form with `-`, or not one topic level), with the string to use instead. `Ok(Some)`: a
/// warning (no `APP_` prefix, lower case, characters a build macro does not have); the string is
/// still used, since a build may define its own.
pub fn check(board: &str) -> Result<Option<String>, String> {
    check_topic_level(board)?;
    let upper = board.to_ascii_uppercase();
    if board.contains('-') {
        return Err(format!(
            "{board} is the build's TARGET form; devices report CY_TARGET_BOARD_STRING, which \
             has '_' for '-' and an APP_ prefix for an app-local BSP: use {}",
            board_string(&upper)
        ));
    }
    if upper != board {
        let known = KITS
            .iter()
            .any(|k| board_string(k.target) == board_string(&upper));
        if known || board.starts_with("app_") {
            return Err(format!(
                "{board}: board strings are upper case (the build's TARGET): use {}",
                board_string(&upper)
            ));
        }
        return Ok(Some(format!(
            "board {board} has lower-case letters; ModusToolbox TARGETs are upper case \
             (devices report e.g. APP_CY8CPROTO_062S2_43439)"
        )));
    }
    if let Some(c) = board
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '_')
    {
        return Ok(Some(format!(
            "board {board} contains {c:?}; a board string built from TARGET has only letters, \
             digits and '_' (e.g. APP_CY8CPROTO_062S2_43439)"
        )));
    }
    if !board.starts_with("APP_") {
        return Ok(Some(format!(
            "board {board} has no APP_ prefix; firmware built with an app-local BSP \
             (ModusToolbox 3.x, Infineon's example) reports APP_{board}: use that unless your \
             build's CY_TARGET_BOARD is {board}"
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_strings_follow_the_modustoolbox_rule() {
        assert_eq!(
            board_string("CY8CPROTO-062S2-43439"),
            "APP_CY8CPROTO_062S2_43439"
        );
        assert_eq!(board_string("KIT_XMC72_EVK"), "APP_KIT_XMC72_EVK");
        assert_eq!(
            board_string("APP_CY8CPROTO-062S2-43439"),
            "APP_CY8CPROTO_062S2_43439"
        );
    }

    #[test]
    fn topic_levels_reject_wildcards_and_json_breakers() {
        assert!(check_topic_level("MyUniqueTopic").is_ok());
        for bad in ["", "a/b", "a+", "#", "a\"b", "a b", "$SYS"] {
            assert!(check_topic_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn target_form_is_refused_with_the_app_form() {
        for (bad, use_) in [
            ("CY8CPROTO-062S2-43439", "use APP_CY8CPROTO_062S2_43439"),
            ("APP_CY8CPROTO-062S2-43439", "use APP_CY8CPROTO_062S2_43439"),
            ("app_cy8cproto_062s2_43439", "use APP_CY8CPROTO_062S2_43439"),
            ("cy8cproto_062s2_43439", "use APP_CY8CPROTO_062S2_43439"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(use_), "{bad}: {e}");
        }
        assert!(check("a/b").is_err());
    }

    #[test]
    fn other_shapes_warn_and_the_app_form_is_quiet() {
        assert_eq!(check("APP_CY8CPROTO_062S2_43439"), Ok(None));
        assert_eq!(check("APP_MY_BOARD"), Ok(None));
        let w = check("CY8CPROTO_062S2_43439").unwrap().unwrap();
        assert!(w.contains("APP_CY8CPROTO_062S2_43439"), "{w}");
        assert!(check("B").unwrap().unwrap().contains("APP_B"));
        assert!(check("my_board").unwrap().is_some());
        assert!(check("APP_X.1").unwrap().is_some());
    }
}
