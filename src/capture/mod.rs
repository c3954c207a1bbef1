//! Screenshots of a sandbox's display (D5, D10): x11rb for Xvfb, QMP `screendump` for VMs.
//! A capturer remembers the hash of its last frame, so an unchanged screen costs no
//! conversion, no encoding and no bytes sent.

pub mod qmp;
pub mod x11;

use std::io::Write;

// Defined with the engine's other errors, which carry it as a cause: `error` needs nothing
// of `capture`, so no import circle.
pub use crate::error::CaptureError;

pub type CaptureResult<T> = Result<T, CaptureError>;

/// One screen, as 8-bit RGB rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The frame as a PNG file.
    pub fn to_png(&self) -> CaptureResult<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder
                .write_header()
                .map_err(|e| CaptureError::Decode(e.to_string()))?;
            writer
                .write_image_data(&self.rgb)
                .map_err(|e| CaptureError::Decode(e.to_string()))?;
        }
        Ok(out)
    }

    /// Reads a PNG (8-bit RGB or RGBA) into a frame.
    pub fn from_png(bytes: &[u8]) -> CaptureResult<Frame> {
        let decode = |e: png::DecodingError| CaptureError::Decode(e.to_string());
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(decode)?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| CaptureError::Decode("image too large".into()))?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(decode)?;
        buf.truncate(info.buffer_size());
        let rgb = match info.color_type {
            png::ColorType::Rgb => buf,
            png::ColorType::Rgba => buf
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|g| [*g, *g, *g]).collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            other => {
                return Err(CaptureError::Decode(format!(
                    "unexpected PNG colour type {other:?}"
                )));
            }
        };
        Ok(Frame {
            width: info.width,
            height: info.height,
            rgb,
        })
    }

    /// Reads a binary PPM (P6, maxval 255), what QEMU writes without PNG support.
    pub fn from_ppm(bytes: &[u8]) -> CaptureResult<Frame> {
        let bad = |why: &str| CaptureError::Decode(format!("PPM: {why}"));
        let mut fields = Vec::new();
        let mut pos = 0;
        while fields.len() < 4 {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if bytes.get(pos) == Some(&b'#') {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            let start = pos;
            while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if start == pos {
                return Err(bad("truncated header"));
            }
            fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
        }
        pos += 1; // the single whitespace after maxval
        let number = |s: &str| s.parse::<u32>().map_err(|_| bad("bad number"));
        if fields[0] != "P6" || number(&fields[3])? != 255 {
            return Err(bad("only P6 with maxval 255 is supported"));
        }
        let (width, height) = (number(&fields[1])?, number(&fields[2])?);
        let len = (width as usize) * (height as usize) * 3;
        let rgb = bytes
            .get(pos..pos + len)
            .ok_or_else(|| bad("pixel data shorter than the header says"))?
            .to_vec();
        Ok(Frame { width, height, rgb })
    }
}

/// Writes a PNG to `path`, or to stdout for `-`.
pub fn write_png(frame: &Frame, path: &std::path::Path) -> CaptureResult<()> {
    let png = frame.to_png()?;
    let io = |source| CaptureError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    if path == std::path::Path::new("-") {
        std::io::stdout().lock().write_all(&png).map_err(io)
    } else {
        std::fs::write(path, png).map_err(io)
    }
}

/// A fast hash of raw pixel data, to drop unchanged frames before any other work.
pub fn frame_hash(raw: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips() {
        let frame = Frame {
            width: 3,
            height: 2,
            rgb: (0..18).collect(),
        };
        let back = Frame::from_png(&frame.to_png().unwrap()).unwrap();
        assert_eq!(back, frame);
        assert_eq!(back.pixel(2, 1), [15, 16, 17]);
    }

    #[test]
    fn ppm_parses_with_comments_and_rejects_short_data() {
        let mut ppm = b"P6\n# qemu\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let frame = Frame::from_ppm(&ppm).unwrap();
        assert_eq!((frame.width, frame.height), (2, 1));
        assert_eq!(frame.pixel(1, 0), [4, 5, 6]);
        assert!(Frame::from_ppm(&ppm[..ppm.len() - 1]).is_err());
        assert!(Frame::from_ppm(b"P3\n1 1\n255\n").is_err());
        assert!(Frame::from_ppm(b"").is_err());
    }
}
