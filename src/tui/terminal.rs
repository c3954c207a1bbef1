//! The real terminal: raw mode and the alternate screen in, everything back out (also on
//! a panic), suspend/resume around `tmux attach`, and frames wrapped in synchronized output,
//! each sent in one write. The size is the one the resize events said: no query per frame.

use std::io::{self, Write};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute, queue};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use super::output::Held;
use super::state::State;
use super::theme::Theme;
use super::views;

/// The terminal the main loop draws on. Generic over the ratatui backend, so a test drives
/// the real loop on a `TestBackend`; only a `Tui` that owns the real terminal (`tty`)
/// switches its modes, suspends for `tmux attach`, rings the bell or sets the clipboard.
pub struct Tui<B: Backend> {
    /// A fixed viewport, resized when the state's size changes: ratatui would otherwise ask
    /// the terminal its size (open `/dev/tty`, an ioctl) before every frame.
    terminal: Terminal<B>,
    area: Rect,
    tty: Option<Tty>,
    frames: u64,
}

/// The real terminal's modes, as `Tui::enter` set them, and what it is sent.
struct Tty {
    mouse: bool,
    active: bool,
    out: Held,
}

impl Tui<CrosstermBackend<Held>> {
    pub fn enter(mouse: bool) -> io::Result<Self> {
        let out = Held::default();
        let (width, height) = crossterm::terminal::size()?;
        let mut tui = Tui::on(CrosstermBackend::new(out.clone()), (width, height))?;
        tui.tty = Some(Tty {
            mouse,
            active: false,
            out,
        });
        tui.start()?;
        Ok(tui)
    }
}

impl<B: Backend> Tui<B> {
    /// A terminal that is only drawn on (tests).
    pub fn headless(backend: B) -> io::Result<Self> {
        let size = backend.size().map_err(other)?;
        Tui::on(backend, (size.width, size.height))
    }

    fn on(backend: B, (width, height): (u16, u16)) -> io::Result<Self> {
        let area = Rect::new(0, 0, width, height);
        let options = TerminalOptions {
            viewport: Viewport::Fixed(area),
        };
        Ok(Tui {
            terminal: Terminal::with_options(backend, options).map_err(other)?,
            area,
            tty: None,
            frames: 0,
        })
    }

    /// Frames drawn so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn backend(&self) -> &B {
        self.terminal.backend()
    }

    fn start(&mut self) -> io::Result<()> {
        let Some(tty) = &mut self.tty else {
            return Ok(());
        };
        crossterm::terminal::enable_raw_mode()?;
        let mut out = io::stdout();
        execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        if tty.mouse {
            execute!(out, EnableMouseCapture)?;
        }
        tty.active = true;
        Ok(())
    }

    pub fn size(&self) -> io::Result<(u16, u16)> {
        let size = self.terminal.size().map_err(other)?;
        Ok((size.width, size.height))
    }

    /// One frame, sent as a single synchronized update so SSH never shows half of it.
    pub fn draw(&mut self, state: &State, theme: &Theme) -> io::Result<()> {
        let (width, height) = state.size;
        if (width, height) != (self.area.width, self.area.height) {
            self.resize(Rect::new(0, 0, width, height))?;
        }
        // The backend writes into the same held bytes: the order holds.
        if let Some(tty) = &mut self.tty {
            queue!(tty.out, BeginSynchronizedUpdate)?;
        }
        self.terminal
            .draw(|frame| views::draw(frame, state, theme))
            .map_err(other)?;
        self.frames += 1;
        if let Some(tty) = &mut self.tty {
            queue!(tty.out, EndSynchronizedUpdate)?;
            tty.out.send()?;
        }
        Ok(())
    }

    /// A new size; the next frame is drawn in full.
    fn resize(&mut self, area: Rect) -> io::Result<()> {
        self.terminal.resize(area).map_err(other)?;
        self.area = area;
        Ok(())
    }

    /// Hands the terminal back as the shell had it, for a child (tmux attach) to use.
    pub fn suspend(&mut self) -> io::Result<()> {
        match &mut self.tty {
            Some(tty) => {
                tty.active = false;
                restore()
            }
            None => Ok(()),
        }
    }

    /// Takes the terminal again after a child used it. `resize` (not `clear`) throws away
    /// ratatui's idea of the screen so the next frame is drawn in full; `clear` would query
    /// the cursor position, which fails now and then right after a child exits.
    pub fn resume(&mut self) -> io::Result<()> {
        self.start()?;
        let (width, height) = self.size()?;
        self.resize(Rect::new(0, 0, width, height))?;
        match &self.tty {
            Some(tty) => tty.out.send(),
            None => Ok(()),
        }
    }

    /// OSC 52: the terminal (even over SSH, even inside tmux) puts `text` on the clipboard.
    pub fn copy(&mut self, text: &str) -> io::Result<()> {
        if self.tty.is_none() {
            return Ok(());
        }
        execute!(
            io::stdout(),
            crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
        )
    }

    pub fn bell(&mut self) -> io::Result<()> {
        if self.tty.is_none() {
            return Ok(());
        }
        let mut out = io::stdout();
        out.write_all(b"\x07")?;
        out.flush()
    }

    pub fn leave(&mut self) -> io::Result<()> {
        if let Some(tty) = &mut self.tty
            && tty.active
        {
            tty.active = false;
            restore()?;
        }
        Ok(())
    }
}

impl<B: Backend> Drop for Tui<B> {
    fn drop(&mut self) {
        // Best effort on the way out; a terminal that is gone needs no restoring.
        let _ = self.leave();
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
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
