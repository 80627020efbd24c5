//! Logging shim: forwards to `log` when the `log` feature is on, compiles to nothing otherwise.
#![allow(unused_macros)]

macro_rules! fw_debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::debug!($($arg)*);
        #[cfg(not(feature = "log"))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}

macro_rules! fw_info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::info!($($arg)*);
        #[cfg(not(feature = "log"))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}

macro_rules! fw_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::warn!($($arg)*);
        #[cfg(not(feature = "log"))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}
