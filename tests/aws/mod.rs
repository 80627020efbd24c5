//! AWS IoT Core without AWS: the test front that enforces AWS's broker limits (its own tests),
//! `otactl aws policy` checked by a small evaluator of IoT policy documents, and the
//! certificate flows (`certs csr`, `cert-to-c` with AWS-shaped files) checked with openssl.

mod certs;
mod fleet;
mod front;
mod policy;
mod readme;

use std::path::Path;
use std::process::Command;

use crate::util::run;

/// Runs openssl in `dir`; panics with its stderr on failure; its stdout.
fn openssl(bin: &Path, dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(Command::new(bin).current_dir(dir).args(args));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
