//! The terminal: raw mode, alternate screen and mouse on entry; everything restored on exit,
//! on panic (a hook) and on Ctrl-C (a key in raw mode, handled as quit).

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdin, stdout, IsTerminal, Stdout};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal; safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        LeaveAlternateScreen,
        DisableMouseCapture,
        crossterm::cursor::Show
    );
}

/// Whether the dashboard can run here: it reads keys from stdin and draws on stdout, so both must
/// be a terminal (`ssh host autovolt` without `-t`, a pipe or `</dev/null` give none). `Err` says
/// so in one sentence about `what` ("the dashboard").
pub fn available(what: &str) -> Result<(), String> {
    let missing = match (stdin().is_terminal(), stdout().is_terminal()) {
        (true, true) => return Ok(()),
        (false, true) => "its input is not",
        (true, false) => "its output is not",
        (false, false) => "neither its input nor its output is",
    };
    Err(format!(
        "{what} needs a terminal and {missing} one: run it in a terminal (over ssh: ssh -t)"
    ))
}

/// Enters the dashboard's terminal mode and installs a panic hook that leaves it first, so that the
/// panic message is readable. Refuses, before changing anything, where there is no terminal.
pub fn enter() -> std::io::Result<Term> {
    available("the dashboard").map_err(std::io::Error::other)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    if let Err(e) = execute!(stdout(), EnterAlternateScreen, EnableMouseCapture) {
        restore();
        return Err(e);
    }
    let term = Terminal::new(CrosstermBackend::new(stdout()));
    if term.is_err() {
        restore();
    }
    term
}
