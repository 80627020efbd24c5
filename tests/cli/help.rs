//! Every subcommand's `--help` ends in a short example: a line that runs that very command.

use super::{assert_code, otactl_in, text};

/// Placeholders on main that do nothing yet (each says "not available yet"); once one lands it
/// must leave this list and show an example like every other command.
const PENDING: &[&str] = &[];

/// The subcommands listed under "Commands:" in a help text (without clap's `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// `otactl PATH --help`.
fn help(path: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let o = otactl_in(dir.path())
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert_code(&o, 0);
    text(&o.stdout)
}

/// Every leaf command path (`["certs", "gen"]`, `["sign"]`, …).
fn leaves(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let subs = subcommands(&help(&path));
    if subs.is_empty() && !path.is_empty() {
        out.push(path);
        return;
    }
    for s in subs {
        let mut p = path.clone();
        p.push(s);
        leaves(p, out);
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    let mut all = Vec::new();
    leaves(Vec::new(), &mut all);
    assert!(all.len() >= 14, "{all:?}");
    let mut missing = Vec::new();
    for path in &all {
        let h = help(path);
        if PENDING.contains(&path.join(" ").as_str()) {
            let dir = tempfile::tempdir().unwrap();
            let o = otactl_in(dir.path()).args(path).output().unwrap();
            assert!(
                text(&o.stderr).contains("not available yet"),
                "`{}` is implemented now: remove it from PENDING (it needs an example)",
                path.join(" ")
            );
            continue;
        }
        let invocation = format!("otactl {}", path.join(" "));
        let has_example = h.to_ascii_lowercase().contains("example")
            && h.lines().any(|l| l.trim_start().starts_with(&invocation));
        if !has_example {
            missing.push(invocation);
        }
    }
    assert!(missing.is_empty(), "--help without an example: {missing:?}");
}

/// Examples are printed as written, whatever the terminal width: a command continued with `\`
/// is never broken elsewhere, so it can be copied back into a shell.
#[test]
fn examples_are_printed_verbatim_at_any_width() {
    for columns in ["40", "100", "200"] {
        let dir = tempfile::tempdir().unwrap();
        let o = otactl_in(dir.path())
            .args(["publish", "--help"])
            .env("COLUMNS", columns)
            .output()
            .unwrap();
        assert_code(&o, 0);
        let h = text(&o.stdout);
        assert!(
            h.contains(
                "\n  otactl publish --broker mqtt://127.0.0.1:1883 --board APP_CY8CPROTO_062S2_43439 \\\n    --image app.signed.bin --key signing.pem\n"
            ),
            "COLUMNS={columns}:\n{h}"
        );
        let o = otactl_in(dir.path())
            .args(["help", "sign"])
            .env("COLUMNS", columns)
            .output()
            .unwrap();
        assert!(
            text(&o.stdout).contains("\n  otactl sign --flashmap psoc62_2m_ext_swap_single.json -v 1.1.0 -k key.pem \\\n"),
            "{}",
            text(&o.stdout)
        );
    }
}
