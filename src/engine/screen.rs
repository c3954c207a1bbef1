//! A sandbox's screen, through the capturer its display kind needs.

use super::Deck;
use crate::capture::Frame;
use crate::capture::x11::X11Capture;
use crate::error::{DeckError, Result};
use crate::sandbox::SandboxState;

impl Deck {
    /// One screenshot of a running sandbox's display.
    pub fn screenshot(&self, name: &str) -> Result<Frame> {
        let record = self.show(name)?;
        let display = record
            .display
            .filter(|_| record.state == SandboxState::Running)
            .ok_or_else(|| DeckError::WrongState {
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
            })?;
        let cookie = self
            .paths
            .sandbox_runtime_dir(&record.id)
            .join("Xauthority");
        let capture_error =
            |e: crate::capture::CaptureError| DeckError::host("taking a screenshot", e.to_string());
        let mut capture = X11Capture::connect(display, &cookie, true).map_err(capture_error)?;
        capture.capture().map_err(capture_error)
    }
}
