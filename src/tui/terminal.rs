//! The real terminal: raw mode and the alternate screen in, everything back out (also on
//! a panic), suspend/resume around `tmux attach`, and frames wrapped in synchronized output.

use std::io::{self, Stdout, Write};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute, queue};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;

use super::state::State;
use super::theme::Theme;
use super::views;

pub struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    mouse: bool,
    active: bool,
}

impl Tui {
    pub fn enter(mouse: bool) -> io::Result<Tui> {
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let mut tui = Tui {
            terminal,
            mouse,
            active: false,
        };
        tui.start()?;
        Ok(tui)
    }

    fn start(&mut self) -> io::Result<()> {
        crossterm::terminal::enable_raw_mode()?;
        let mut out = io::stdout();
        execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        if self.mouse {
            execute!(out, EnableMouseCapture)?;
        }
        self.active = true;
        Ok(())
    }

    pub fn size(&self) -> io::Result<(u16, u16)> {
        crossterm::terminal::size()
    }

    /// One frame, sent as a single synchronized update so SSH never shows half of it.
    pub fn draw(&mut self, state: &State, theme: &Theme) -> io::Result<()> {
        queue!(self.terminal.backend_mut(), BeginSynchronizedUpdate)?;
        self.terminal
            .draw(|frame| views::draw(frame, state, theme))?;
        execute!(self.terminal.backend_mut(), EndSynchronizedUpdate)?;
        Ok(())
    }

    /// Hands the terminal back as the shell had it, for a child (tmux attach) to use.
    pub fn suspend(&mut self) -> io::Result<()> {
        self.active = false;
        restore()
    }

    /// Takes the terminal again after a child used it. `resize` (not `clear`) throws away
    /// ratatui's idea of the screen so the next frame is drawn in full; `clear` would query
    /// the cursor position, which fails now and then right after a child exits.
    pub fn resume(&mut self) -> io::Result<()> {
        self.start()?;
        let (width, height) = self.size()?;
        self.terminal.resize(Rect::new(0, 0, width, height))?;
        Ok(())
    }

    /// OSC 52: the terminal (even over SSH, even inside tmux) puts `text` on the clipboard.
    pub fn copy(&mut self, text: &str) -> io::Result<()> {
        execute!(
            self.terminal.backend_mut(),
            crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
        )
    }

    pub fn bell(&mut self) -> io::Result<()> {
        let out = self.terminal.backend_mut();
        out.write_all(b"\x07")?;
        out.flush()
    }

    pub fn leave(&mut self) -> io::Result<()> {
        if self.active {
            self.active = false;
            restore()?;
        }
        Ok(())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        // Best effort on the way out; a terminal that is gone needs no restoring.
        let _ = self.leave();
    }
}

/// Undoes everything `start` did; safe to call twice and from a panic.
pub fn restore() -> io::Result<()> {
    let mut out = io::stdout();
    // Each step on its own: one the terminal refuses must not keep the others from running.
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    crossterm::terminal::disable_raw_mode()?;
    out.flush()
}

/// A panic prints its message on a usable terminal, not into the alternate screen.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Nothing to do about a failure here: the panic message still follows.
        let _ = restore();
        previous(info);
    }));
}

/// Mosh passes mouse reports poorly, so the mouse stays off under it. Mosh sets no
/// variable of its own: look for `mosh-server` among our ancestors.
pub fn under_mosh() -> bool {
    crate::host::process::ancestry(std::process::id(), 32)
        .iter()
        .any(|p| p.name.starts_with("mosh-server"))
}
