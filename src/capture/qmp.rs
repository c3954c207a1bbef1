//! Captures a VM's screen through QMP `screendump` (the qapi crate over the VM's QMP unix
//! socket). QEMU ≥ 7.1 writes PNG when asked; older versions only PPM, so we fall back.
//! The file goes to a private directory and is removed as soon as it is read.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qapi::qmp;

use super::{CaptureError, CaptureResult, Frame, frame_hash};

const TIMEOUT: Duration = Duration::from_secs(5);

pub struct QmpCapture {
    socket: PathBuf,
    /// A 0700 directory of ours for the dump files.
    scratch: PathBuf,
    last_hash: Option<u64>,
    counter: u64,
}

impl QmpCapture {
    pub fn new(socket: &Path, scratch: &Path) -> CaptureResult<QmpCapture> {
        crate::host::fs::make_private_dir(scratch).map_err(|e| CaptureError::Io {
            context: format!("preparing {}", scratch.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(QmpCapture {
            socket: socket.to_owned(),
            scratch: scratch.to_owned(),
            last_hash: None,
            counter: 0,
        })
    }

    /// The current screen.
    pub fn capture(&mut self) -> CaptureResult<Frame> {
        let (bytes, png) = self.dump()?;
        self.last_hash = Some(frame_hash(&bytes));
        decode(&bytes, png)
    }

    /// The current screen if its file differs from the last one, else None.
    pub fn capture_if_changed(&mut self) -> CaptureResult<Option<Frame>> {
        let (bytes, png) = self.dump()?;
        let hash = frame_hash(&bytes);
        if self.last_hash == Some(hash) {
            return Ok(None);
        }
        self.last_hash = Some(hash);
        decode(&bytes, png).map(Some)
    }

    /// Runs screendump and returns the file's bytes and whether they are PNG.
    fn dump(&mut self) -> CaptureResult<(Vec<u8>, bool)> {
        let qmp_error = |e: &dyn std::fmt::Display| CaptureError::Qmp(e.to_string());
        let stream = UnixStream::connect(&self.socket).map_err(|e| CaptureError::Io {
            context: format!("connecting to {}", self.socket.display()),
            source: e,
        })?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| qmp_error(&e))?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(|e| qmp_error(&e))?;
        let mut qmp = qapi::Qmp::from_stream(&stream);
        qmp.handshake().map_err(|e| qmp_error(&e))?;
        self.counter += 1;
        let file = self
            .scratch
            .join(format!("screen-{}-{}", std::process::id(), self.counter));
        let filename = file.display().to_string();
        let png = qmp
            .execute(&qmp::screendump {
                filename: filename.clone(),
                device: None,
                head: None,
                format: Some(qmp::ImageFormat::png),
            })
            .is_ok();
        if !png {
            // QEMU before 7.1 knows no `format` (or was built without libpng): PPM it is.
            qmp.execute(&qmp::screendump {
                filename,
                device: None,
                head: None,
                format: None,
            })
            .map_err(|e| qmp_error(&e))?;
        }
        let bytes = std::fs::read(&file).map_err(|e| CaptureError::Io {
            context: format!("reading {}", file.display()),
            source: e,
        });
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::debug!("removing the screendump {} failed: {e}", file.display());
        }
        Ok((bytes?, png))
    }
}

fn decode(bytes: &[u8], png: bool) -> CaptureResult<Frame> {
    if png {
        Frame::from_png(bytes)
    } else {
        Frame::from_ppm(bytes)
    }
}
