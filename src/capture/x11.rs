//! Captures an Xvfb display with x11rb: GetImage of the root window, through MIT-SHM when
//! the server offers it (the pixels land in shared memory instead of the socket).

use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::{DefaultStream, PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

use super::{CaptureError, CaptureResult, Frame, frame_hash};
use crate::host::xvfb;

/// The longest we wait for the X server at any one time. A sandbox owns its display, and a
/// client inside that calls XGrabServer stops the server answering anyone else: without a
/// limit `screenshot` and the Screen tab would wait for ever.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection's socket, with every wait bounded by a timeout (x11rb's own stream waits
/// without one). A timeout is an error that breaks the connection: a later capture connects
/// again.
pub struct PatientStream {
    inner: DefaultStream,
    timeout: Duration,
}

/// The message of the I/O error a timeout raises, to tell it from others.
const TIMED_OUT: &str = "the X server did not answer in time";

impl Stream for PatientStream {
    fn poll(&self, mode: PollMode) -> std::io::Result<()> {
        let mut events = 0;
        if mode.readable() {
            events |= libc::POLLIN;
        }
        if mode.writable() {
            events |= libc::POLLOUT;
        }
        let mut fd = libc::pollfd {
            fd: self.inner.as_raw_fd(),
            events,
            revents: 0,
        };
        let timeout_ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fd, 1, timeout_ms) };
            if ready > 0 {
                return Ok(());
            }
            if ready == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, TIMED_OUT));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn read(&self, buf: &mut [u8], fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        self.inner.read(buf, fds)
    }

    fn write(&self, buf: &[u8], fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        self.inner.write(buf, fds)
    }

    fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<RawFdContainer>,
    ) -> std::io::Result<usize> {
        self.inner.write_vectored(bufs, fds)
    }
}

/// Whether an error's text comes from a [`PatientStream`] timeout.
fn timed_out(e: &dyn std::fmt::Display) -> bool {
    e.to_string().contains(TIMED_OUT)
}

/// How a server stores one pixel, read from its setup once.
#[derive(Debug, Clone, Copy)]
struct PixelLayout {
    msb_first: bool,
    shifts: [u32; 3],
}

struct SharedSegment {
    seg: shm::Seg,
    map: memmap2::MmapMut,
}

pub struct X11Capture {
    display: u32,
    conn: RustConnection<PatientStream>,
    root: Window,
    width: u16,
    height: u16,
    layout: PixelLayout,
    shm: Option<SharedSegment>,
    last_hash: Option<u64>,
}

impl X11Capture {
    /// Connects to display `number` through its socket path with its own cookie (x11rb 0.14
    /// takes no socket path, so the stream is connected here). `use_shm` asks for MIT-SHM.
    pub fn connect(number: u32, xauthority: &Path, use_shm: bool) -> CaptureResult<X11Capture> {
        let gone = |detail: String| CaptureError::DisplayGone {
            display: number,
            detail,
        };
        let busy = |display| CaptureError::Busy {
            display,
            waited_ms: ANSWER_TIMEOUT.as_millis() as u64,
        };
        let socket = xvfb::socket_path(number);
        let stream = UnixStream::connect(&socket).map_err(|e| gone(e.to_string()))?;
        let (stream, _) =
            DefaultStream::from_unix_stream(stream).map_err(|e| gone(e.to_string()))?;
        let stream = PatientStream {
            inner: stream,
            timeout: ANSWER_TIMEOUT,
        };
        let cookie = xvfb::read_cookie(xauthority).unwrap_or_default();
        let (name, data) = if cookie.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (b"MIT-MAGIC-COOKIE-1".to_vec(), cookie)
        };
        let conn = RustConnection::connect_to_stream_with_auth_info(stream, 0, name, data)
            .map_err(|e| match e {
                x11rb::errors::ConnectError::IoError(io) if timed_out(&io) => busy(number),
                // The server went away between connect and setup.
                x11rb::errors::ConnectError::IoError(io) => gone(io.to_string()),
                other => CaptureError::X11(other.to_string()),
            })?;
        let setup = conn.setup();
        let screen = &setup.roots[0];
        let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
        let depth = screen.root_depth;
        if depth != 24 && depth != 32 {
            return Err(CaptureError::UnsupportedDepth(depth));
        }
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == screen.root_visual)
            .ok_or_else(|| CaptureError::X11("no root visual".into()))?;
        let layout = PixelLayout {
            msb_first: setup.image_byte_order == ImageOrder::MSB_FIRST,
            shifts: [
                visual.red_mask.trailing_zeros(),
                visual.green_mask.trailing_zeros(),
                visual.blue_mask.trailing_zeros(),
            ],
        };
        let mut capture = X11Capture {
            display: number,
            conn,
            root,
            width,
            height,
            layout,
            shm: None,
            last_hash: None,
        };
        if use_shm {
            match capture.attach_shm() {
                Ok(shm) => capture.shm = Some(shm),
                // A busy server now is busy for the capture too: say so at once.
                Err(busy @ CaptureError::Busy { .. }) => return Err(busy),
                // Without MIT-SHM the pixels come through the socket.
                Err(_) => {}
            }
        }
        Ok(capture)
    }

    pub fn uses_shm(&self) -> bool {
        self.shm.is_some()
    }

    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }

    fn attach_shm(&self) -> CaptureResult<SharedSegment> {
        let x11 = |e: &dyn std::fmt::Display| self.gone(e);
        self.conn
            .shm_query_version()
            .map_err(|e| x11(&e))?
            .reply()
            .map_err(|e| x11(&e))?;
        let len = usize::from(self.width) * usize::from(self.height) * 4;
        let fd = nix::sys::memfd::memfd_create(
            "sandbox-deck-capture",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| x11(&e))?;
        let file = std::fs::File::from(fd);
        file.set_len(len as u64).map_err(|e| x11(&e))?;
        // SAFETY: the mapping is private to this capturer; only the X server writes into it,
        // and only while we wait for its GetImage reply.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(|e| x11(&e))?;
        let seg = self.conn.generate_id().map_err(|e| x11(&e))?;
        let for_server = file.try_clone().map_err(|e| x11(&e))?;
        self.conn
            .shm_attach_fd(seg, std::os::fd::OwnedFd::from(for_server), false)
            .map_err(|e| x11(&e))?
            .check()
            .map_err(|e| x11(&e))?;
        Ok(SharedSegment { seg, map })
    }

    fn gone(&self, e: impl std::fmt::Display) -> CaptureError {
        if timed_out(&e) {
            return CaptureError::Busy {
                display: self.display,
                waited_ms: ANSWER_TIMEOUT.as_millis() as u64,
            };
        }
        CaptureError::DisplayGone {
            display: self.display,
            detail: e.to_string(),
        }
    }

    /// The raw pixels (4 bytes each, in the server's layout) and their hash.
    fn grab(&mut self) -> CaptureResult<(Vec<u8>, u64)> {
        let (w, h) = (self.width, self.height);
        let all_planes = !0;
        if let Some(shm) = &self.shm {
            self.conn
                .shm_get_image(
                    self.root,
                    0,
                    0,
                    w,
                    h,
                    all_planes,
                    ImageFormat::Z_PIXMAP.into(),
                    shm.seg,
                    0,
                )
                .map_err(|e| self.gone(e))?
                .reply()
                .map_err(|e| self.gone(e))?;
            let hash = frame_hash(&shm.map);
            return Ok((shm.map.to_vec(), hash));
        }
        let reply = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, w, h, all_planes)
            .map_err(|e| self.gone(e))?
            .reply()
            .map_err(|e| self.gone(e))?;
        let hash = frame_hash(&reply.data);
        Ok((reply.data, hash))
    }

    /// The current screen.
    pub fn capture(&mut self) -> CaptureResult<Frame> {
        let (raw, hash) = self.grab()?;
        self.last_hash = Some(hash);
        Ok(self.to_frame(&raw))
    }

    /// The current screen if it differs from the last one captured, else None (nothing
    /// converted or encoded).
    pub fn capture_if_changed(&mut self) -> CaptureResult<Option<Frame>> {
        let (raw, hash) = self.grab()?;
        if self.last_hash == Some(hash) {
            return Ok(None);
        }
        self.last_hash = Some(hash);
        Ok(Some(self.to_frame(&raw)))
    }

    fn to_frame(&self, raw: &[u8]) -> Frame {
        let PixelLayout { msb_first, shifts } = self.layout;
        let mut rgb = Vec::with_capacity(raw.len() / 4 * 3);
        for px in raw.chunks_exact(4) {
            let bytes = [px[0], px[1], px[2], px[3]];
            let value = if msb_first {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            };
            rgb.extend(shifts.iter().map(|s| (value >> s) as u8));
        }
        Frame {
            width: u32::from(self.width),
            height: u32::from(self.height),
            rgb,
        }
    }
}

impl Drop for X11Capture {
    fn drop(&mut self) {
        if let Some(shm) = &self.shm {
            // A server that is gone freed the segment with the connection already.
            let _ = self.conn.shm_detach(shm.seg);
            let _ = self.conn.flush();
        }
    }
}
