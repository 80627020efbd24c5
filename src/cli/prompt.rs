//! Prompts: the only place that talks to dialoguer.
//!
//! Rules (espflash, cargo-binstall):
//! - A prompt is shown only when stdin and stderr are terminals and `--non-interactive` (or
//!   `OTACTL_NON_INTERACTIVE`) is not set ([`Ctx::non_interactive`]).
//! - Otherwise a question with a safe default takes it, and a question without one is an error
//!   that names the flag giving the answer (exit 2).
//! - Prompts block, so they must never run on an async runtime's thread: ask before starting
//!   the runtime (or on a plain thread). Every prompt asserts this.
//! - Colours follow `NO_COLOR` (the `console` crate behind dialoguer honours it).
//! - A yes/no answer takes effect on Enter (typing `yes⏎` answers yes and leaves nothing for the
//!   next question).
//! - Ctrl-C ends the program (exit 130) with the terminal as it was: dialoguer hides the cursor
//!   while a menu is shown, so the interrupt is caught and the cursor shown again first.

use anyhow::{anyhow, Result};
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};

use super::Ctx;

/// Asks questions on the terminal, or explains which flag to pass when it may not.
pub struct Prompter {
    interactive: bool,
    theme: ColorfulTheme,
}

impl Prompter {
    /// Interactive when `ctx` allows it (a terminal and no `--non-interactive`); then Ctrl-C
    /// is caught from here on (see [`restore_terminal_on_interrupt`]).
    pub fn new(ctx: &Ctx) -> Self {
        if !ctx.non_interactive {
            restore_terminal_on_interrupt();
        }
        Self::with_interactive(!ctx.non_interactive)
    }

    /// An explicitly (non-)interactive prompter (for tests of the non-interactive rules).
    pub fn with_interactive(interactive: bool) -> Self {
        Self {
            interactive,
            theme: ColorfulTheme::default(),
        }
    }

    /// Whether questions are shown.
    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// Picks one of `items` (starting on `cursor`); `flag` is the option that answers it
    /// without a prompt. There is no default: without a terminal this is an error naming `flag`.
    ///
    /// # Errors
    /// No terminal (naming `flag`), the user cancelled (Esc/q), or terminal I/O errors.
    pub fn select(
        &self,
        flag: &str,
        prompt: &str,
        items: &[String],
        cursor: usize,
    ) -> Result<usize> {
        self.ready(flag, prompt)?;
        let picked = Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(cursor.min(items.len().saturating_sub(1)))
            .interact_opt()
            .map_err(|e| failed(flag, e))?;
        picked.ok_or_else(|| anyhow!("cancelled (no answer for {flag})"))
    }

    /// A line of text. Without a terminal the `default` is taken if there is one, else this is an
    /// error naming `flag`. `check` returns why an answer is unacceptable (the prompt repeats).
    ///
    /// # Errors
    /// No terminal and no default (naming `flag`), or terminal I/O errors.
    pub fn input(
        &self,
        flag: &str,
        prompt: &str,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        if !self.interactive {
            if let Some(d) = default {
                return Ok(d.to_owned());
            }
        }
        self.ready(flag, prompt)?;
        let mut input = Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|s: &String| check(s.trim()));
        if let Some(d) = default {
            input = input.default(d.to_owned());
        }
        let answer = input.interact_text().map_err(|e| failed(flag, e))?;
        Ok(answer.trim().to_owned())
    }

    /// Yes or no. Without a terminal the `default` is the answer.
    ///
    /// # Errors
    /// Terminal I/O errors.
    pub fn confirm(&self, flag: &str, prompt: &str, default: bool) -> Result<bool> {
        if !self.interactive {
            return Ok(default);
        }
        self.ready(flag, prompt)?;
        Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()
            .map_err(|e| failed(flag, e))
    }

    /// Yes or no with no default: without a terminal an error naming `flag`.
    ///
    /// # Errors
    /// No terminal (naming `flag`) or terminal I/O errors.
    pub fn confirm_required(&self, flag: &str, prompt: &str, default: bool) -> Result<bool> {
        self.ready(flag, prompt)?;
        self.confirm(flag, prompt, default)
    }

    fn ready(&self, flag: &str, what: &str) -> Result<()> {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "a blocking prompt ran on an async runtime thread ({what})"
        );
        if !self.interactive {
            return Err(missing(flag, what));
        }
        Ok(())
    }
}

/// A prompt that failed: Ctrl-C (the terminal read was interrupted) ends the program like the
/// interrupt would have, with the cursor shown again; anything else is an error naming `flag`.
fn failed(flag: &str, e: dialoguer::Error) -> anyhow::Error {
    let dialoguer::Error::IO(io) = &e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        interrupted();
    }
    anyhow!("cannot prompt for {flag}: {e}")
}

/// Shows the cursor again and exits with 130 (128 + SIGINT), as a shell reports Ctrl-C.
fn interrupted() -> ! {
    let term = dialoguer::console::Term::stderr();
    let _ = term.show_cursor();
    let _ = term.write_line("");
    std::process::exit(130);
}

/// Catches SIGINT from now on (once per process) on a thread of its own, so that Ctrl-C while a
/// prompt hides the cursor does not leave the terminal without one: the handler shows it and
/// exits with 130. The handler is in place when this returns.
fn restore_terminal_on_interrupt() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            let sigint = {
                let _in_rt = rt.enter();
                signal(SignalKind::interrupt())
            };
            let Ok(mut sigint) = sigint else { return };
            std::thread::spawn(move || {
                rt.block_on(sigint.recv());
                interrupted();
            });
        });
    }
}

/// A cargo-style status line on stderr (`     Created otactl.toml`): a green tag on a terminal
/// (unless `NO_COLOR`), plain text otherwise, nothing with `-q`.
pub fn status(ctx: &Ctx, tag: &str, message: &str) {
    if ctx.quiet {
        return;
    }
    if ctx.fancy() {
        let tag = dialoguer::console::style(format!("{tag:>12}"))
            .green()
            .bold()
            .for_stderr();
        eprintln!("{tag} {message}");
    } else {
        eprintln!("{tag} {message}");
    }
}

/// The error for an answer that is needed but cannot be asked for.
pub fn missing(flag: &str, what: &str) -> anyhow::Error {
    let what = what.trim_end_matches(['?', ':']);
    anyhow!("missing answer: {what}; pass {flag} (no prompt: --non-interactive or no terminal)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_interactive_takes_defaults_and_names_the_flag_otherwise() {
        let p = Prompter::with_interactive(false);
        assert!(p.confirm("--tls", "TLS?", true).unwrap());
        assert_eq!(
            p.input(
                "--topic-prefix",
                "Prefix",
                Some("MyUniqueTopic"),
                |_| Ok(())
            )
            .unwrap(),
            "MyUniqueTopic"
        );
        let e = p
            .input("--board", "Board string", None, |_| Ok(()))
            .unwrap_err();
        assert!(e.to_string().contains("pass --board"), "{e}");
        let e = p
            .select("--broker-kind", "Broker?", &["a".into()], 0)
            .unwrap_err();
        assert!(e.to_string().contains("--broker-kind"), "{e}");
        let e = p
            .confirm_required("--force", "Replace?", false)
            .unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
    }

    #[test]
    #[should_panic(expected = "async runtime")]
    fn prompting_inside_a_runtime_is_a_bug() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let _ = Prompter::with_interactive(true).confirm("--x", "x?", true);
        });
    }
}
