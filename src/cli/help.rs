//! `--help` with its examples printed exactly as written.
//!
//! clap re-wraps every text of a help page to the terminal's width, examples included, which
//! breaks a long command line in the middle: copied back into a shell it no longer runs. So each
//! command keeps its examples in `after_help` (lines of at most 100 columns, continued with
//! `\`), and when help is asked for, clap renders the page without them and they are appended
//! unchanged.

use std::ffi::OsString;

use super::ParseError;

/// The help page clap wanted to show for `args`, with the examples of the command it is about
/// appended verbatim; clap's own error when there is nothing to improve.
pub fn verbatim(e: clap::Error, mut cmd: clap::Command, args: &[OsString]) -> ParseError {
    let path = super::argv::subcommand_path(args);
    let long = !args.iter().skip(1).any(|a| a == "-h");
    cmd.build();
    let mut target = &mut cmd;
    for name in &path {
        match target.find_subcommand_mut(name) {
            Some(sub) => target = sub,
            None => return ParseError::Clap(e),
        }
    }
    let Some(examples) = target.get_after_help().map(ToString::to_string) else {
        return ParseError::Clap(e);
    };
    let mut page = target.clone().after_help(None::<&'static str>);
    let rendered = if long {
        page.render_long_help()
    } else {
        page.render_help()
    };
    let text = if dialoguer::console::colors_enabled() {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    ParseError::Help(format!("{}\n\n{}", text.trim_end(), examples.trim_end()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every example line fits in 100 columns, so a 100-column terminal shows it unwrapped; on a
    /// narrower one it is still printed as one line (the terminal folds it, a copy keeps it).
    #[test]
    fn examples_are_appended_unwrapped() {
        let cmd = super::super::argv::output_flags(super::super::Cli::command(), true);
        let args: Vec<OsString> = ["otactl", "publish", "--help"].map(Into::into).to_vec();
        let e = cmd.clone().try_get_matches_from(&args).unwrap_err();
        let ParseError::Help(text) = verbatim(e, cmd, &args) else {
            panic!("no help text");
        };
        let examples = text.split("Examples:").nth(1).expect("examples");
        assert!(
            examples.contains(
                "  otactl publish --broker mqtt://127.0.0.1:1883 --board APP_CY8CPROTO_062S2_43439 \\\n"
            ),
            "{examples}"
        );
        assert!(text.contains("Usage: otactl publish"), "{text}");
    }

    #[test]
    fn every_example_line_fits_100_columns() {
        fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
            if let Some(h) = cmd.get_after_help() {
                out.extend(h.to_string().lines().map(str::to_owned));
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut lines = Vec::new();
        walk(&super::super::Cli::command(), &mut lines);
        assert!(lines.len() > 20, "{lines:?}");
        for l in lines {
            assert!(
                l.chars().count() <= 100,
                "{} columns: {l}",
                l.chars().count()
            );
        }
    }
}
