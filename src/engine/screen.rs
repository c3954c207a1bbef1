//! A sandbox's screen, through the capturer its display kind needs.

use super::Deck;
use crate::capture::qmp::QmpCapture;
use crate::capture::x11::X11Capture;
use crate::capture::{CaptureResult, Frame};
use crate::error::{DeckError, Result};
use crate::sandbox::{BackendKind, SandboxRecord, SandboxState};

/// A live connection to one sandbox's display, kept across captures: Xvfb through x11rb,
/// a VM through QMP. Callers never see which.
pub enum ScreenCapturer {
    X11(Box<X11Capture>),
    Qmp(QmpCapture),
}

impl ScreenCapturer {
    /// The current screen.
    pub fn capture(&mut self) -> CaptureResult<Frame> {
        match self {
            ScreenCapturer::X11(c) => c.capture(),
            ScreenCapturer::Qmp(c) => c.capture(),
        }
    }

    /// The current screen if it changed since the last capture, else None (nothing converted).
    pub fn capture_if_changed(&mut self) -> CaptureResult<Option<Frame>> {
        match self {
            ScreenCapturer::X11(c) => c.capture_if_changed(),
            ScreenCapturer::Qmp(c) => c.capture_if_changed(),
        }
    }
}

/// Whether `record` has a display to capture now.
pub fn has_screen(record: &SandboxRecord) -> bool {
    record.state == SandboxState::Running
        && (record.display.is_some() || record.backend == BackendKind::Vm)
}

impl Deck {
    /// One screenshot of a running sandbox's display.
    pub fn screenshot(&self, name: &str) -> Result<Frame> {
        let mut capturer = self.screen_capturer(name)?;
        capturer
            .capture()
            .map_err(|e| DeckError::capture("taking a screenshot", e))
    }

    /// A capturer for a running sandbox's display, to keep while its screen is watched.
    pub fn screen_capturer(&self, name: &str) -> Result<ScreenCapturer> {
        let record = self.show(name)?;
        if !has_screen(&record) {
            return Err(DeckError::WrongState {
                name: record.name.to_string(),
                state: record.state.to_string(),
                hint: if record.managed {
                    format!(
                        "it has no display now; start it with `sandbox-deck start {}`",
                        record.name
                    )
                } else {
                    "a hand-launched sandbox has no display of its own".into()
                },
            });
        }
        let files = self.paths.sandbox_of(&record);
        let capture_error =
            |e: crate::capture::CaptureError| DeckError::capture("connecting to the display", e);
        match record.display {
            Some(display) => {
                let cookie = files.xauthority();
                X11Capture::connect(display, &cookie, true)
                    .map(|c| ScreenCapturer::X11(Box::new(c)))
                    .map_err(capture_error)
            }
            // A VM has no X display: its QMP socket sits in its runtime dir.
            None => QmpCapture::new(&files.qmp_socket(), &files.screendump())
                .map(ScreenCapturer::Qmp)
                .map_err(capture_error),
        }
    }
}
