//! Shell completions and the manual page, generated from the command-line grammar itself so that
//! they never disagree with it.

use super::exit::{Failure, OK};
use super::Cli;
use clap::{CommandFactory, Subcommand};
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Shell completions on stdout, e.g. `autovolt completions bash >
    /// /etc/bash_completion.d/autovolt` (zsh: into a directory of $fpath as `_autovolt`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout: `autovolt man | man -l -`, or one command's
    /// (`autovolt man collect`).
    Man {
        /// A command, for its own page (`autovolt-collect(1)`).
        command: Option<String>,
    },
}

/// Writes what was asked to `out`.
pub fn write(command: &GenerateCommand, out: &mut dyn Write) -> Result<i32, Failure> {
    let mut cli = Cli::command();
    // Generated in memory first: the completion generator panics on a write error, and a closed
    // pipe (`| head`) is no reason to.
    let mut text = Vec::new();
    match command {
        GenerateCommand::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli, "autovolt", &mut text);
        }
        GenerateCommand::Man { command: None } => clap_mangen::Man::new(cli)
            .render(&mut text)
            .map_err(|e| Failure::unusable(format!("cannot write the manual page: {e}")))?,
        GenerateCommand::Man {
            command: Some(name),
        } => {
            cli.build();
            let Some(sub) = cli.find_subcommand(name).cloned() else {
                let known: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                return Err(Failure::unusable(format!(
                    "{:?} is not a command; one of: {}",
                    name.escape_default().to_string(),
                    known.join(", ")
                )));
            };
            // Built under `autovolt`, it is titled `autovolt-NAME`.
            clap_mangen::Man::new(sub)
                .render(&mut text)
                .map_err(|e| Failure::unusable(format!("cannot write the manual page: {e}")))?
        }
    }
    match out.write_all(&text).and_then(|()| out.flush()) {
        Ok(()) => Ok(OK),
        // A closed pipe has taken what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(OK),
        Err(e) => Err(Failure::unusable(format!("cannot write the output: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(command: GenerateCommand) -> String {
        let mut out = Vec::new();
        assert_eq!(write(&command, &mut out).expect("generated"), OK);
        String::from_utf8(out).expect("utf-8")
    }

    fn top_level_commands() -> Vec<String> {
        let cli = Cli::command();
        let names: Vec<String> = cli
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect();
        assert!(names.len() > 10, "{names:?}");
        names
    }

    #[test]
    fn completions_for_every_shell_name_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let text = generated(GenerateCommand::Completions { shell });
            for name in top_level_commands() {
                assert!(text.contains(&name), "{shell} completions lack {name}");
            }
        }
    }

    #[test]
    fn the_manual_page_names_every_command() {
        let page = generated(GenerateCommand::Man { command: None });
        assert!(
            page.starts_with(".ie") || page.contains(".TH autovolt"),
            "{page}"
        );
        for name in top_level_commands() {
            // roff escapes the hyphen: `prune\-telemetry`.
            let roff = name.replace('-', "\\-");
            assert!(page.contains(&roff), "the manual page lacks {name}");
        }
        let collect = generated(GenerateCommand::Man {
            command: Some("collect".into()),
        });
        assert!(collect.contains("autovolt\\-collect"), "{collect}");
        assert!(collect.contains("\\-\\-group"), "{collect}");
    }

    #[test]
    fn a_manual_page_for_an_unknown_command_is_refused() {
        let err = write(
            &GenerateCommand::Man {
                command: Some("colect".into()),
            },
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.code, super::super::exit::UNUSABLE);
        assert!(err.message.contains("collect"), "{}", err.message);
    }
}
