//! What the terminal is sent, a frame at a time (issue 15): a frame, its synchronized-update
//! brackets and the cursor's state go out in one `write`, however large, instead of one
//! per kilobyte of stdout's buffer and two more for the brackets.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Stdout, held: bytes wait in memory until [`Held::send`], and ratatui's own flushes
/// mid-frame send nothing. Clones share the bytes: the backend writes the frame, the
/// terminal its brackets, in order.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Vec<u8>>>);

impl Held {
    /// Everything held so far, in one write.
    pub fn send(&self) -> io::Result<()> {
        let bytes = std::mem::take(&mut *self.bytes());
        if bytes.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for Held {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_wait_for_send_and_a_flush_sends_nothing() {
        let held = Held::default();
        let mut writer = held.clone();
        writer.write_all(b"frame").unwrap();
        writer.flush().unwrap();
        assert_eq!(*held.bytes(), b"frame");
        held.bytes().clear();
        held.send().unwrap();
        assert!(held.bytes().is_empty());
    }
}
