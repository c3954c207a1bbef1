//! The binary frames of the protocol (`docs/protocol.md`): a screen (`SDF1`, the name's
//! length (1 byte) and bytes, width and height (u32 big-endian), then the RGB pixels (3
//! bytes each, row by row) compressed with zlib) and a chunk of pane output (`SDO1`, the
//! name's length and bytes, then the bytes as the pane wrote them). The engine encodes, a
//! client decodes.

use crate::capture::Frame;
use crate::sandbox::SandboxName;

/// The first bytes of every screen frame (and its format's version).
pub const MAGIC: &[u8; 4] = b"SDF1";
/// The first bytes of every pane output frame.
pub const OUTPUT_MAGIC: &[u8; 4] = b"SDO1";
/// The largest screen a client accepts (per side): a frame announcing more is refused
/// before anything is inflated.
pub const MAX_SIDE: u32 = 8192;

pub fn encode(name: &SandboxName, frame: &Frame) -> Vec<u8> {
    let name = name.as_str().as_bytes();
    let pixels = miniz_oxide::deflate::compress_to_vec_zlib(&frame.rgb, 3);
    let mut out = Vec::with_capacity(4 + 1 + name.len() + 8 + pixels.len());
    out.extend_from_slice(MAGIC);
    // A name is at most 32 bytes.
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&frame.width.to_be_bytes());
    out.extend_from_slice(&frame.height.to_be_bytes());
    out.extend_from_slice(&pixels);
    out
}

/// A chunk of `name`'s pane output.
pub fn encode_output(name: &SandboxName, data: &[u8]) -> Vec<u8> {
    let name = name.as_str().as_bytes();
    let mut out = Vec::with_capacity(4 + 1 + name.len() + data.len());
    out.extend_from_slice(OUTPUT_MAGIC);
    // A name is at most 32 bytes.
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    out
}

/// The sandbox name a screen frame is for, without inflating it (to route it to its
/// watchers).
pub fn name_of(bytes: &[u8]) -> Option<&str> {
    named(bytes, MAGIC).map(|(name, _)| name)
}

/// An output frame's sandbox name and bytes.
pub fn decode_output(bytes: &[u8]) -> Option<(&str, &[u8])> {
    named(bytes, OUTPUT_MAGIC)
}

/// The name after `magic`, and what follows it.
fn named<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Option<(&'a str, &'a [u8])> {
    let rest = bytes.strip_prefix(magic)?;
    let (&n, rest) = rest.split_first()?;
    let n = usize::from(n);
    let name = std::str::from_utf8(rest.get(..n)?).ok()?;
    Some((name, &rest[n..]))
}

/// A frame back into its name and pixels; every length is checked against what it
/// announces, so a truncated or oversized frame is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<(String, Frame), String> {
    let name = name_of(bytes).ok_or("not a screen frame (no SDF1 header)")?;
    let rest = &bytes[MAGIC.len() + 1 + name.len()..];
    let size = |at: usize| -> Result<u32, String> {
        rest.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| "a screen frame without its size".to_owned())
    };
    let (width, height) = (size(0)?, size(4)?);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "a screen of {width}×{height} is larger than {MAX_SIDE} a side"
        ));
    }
    let expected = width as usize * height as usize * 3;
    let rgb = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&rest[8..], expected)
        .map_err(|e| format!("a screen frame's pixels do not inflate: {:?}", e.status))?;
    if rgb.len() != expected {
        return Err(format!(
            "a {width}×{height} screen frame carries {} bytes of pixels, not {expected}",
            rgb.len()
        ));
    }
    Ok((name.to_owned(), Frame { width, height, rgb }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (SandboxName, Frame) {
        let name = SandboxName::parse("api").expect("name");
        let frame = Frame {
            width: 2,
            height: 1,
            rgb: vec![255, 0, 0, 0, 0, 255],
        };
        (name, frame)
    }

    #[test]
    fn a_frame_encodes_to_magic_name_size_and_zlib_pixels() {
        let (name, frame) = example();
        let bytes = encode(&name, &frame);
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(bytes[4], 3);
        assert_eq!(&bytes[5..8], b"api");
        assert_eq!(&bytes[8..12], &2u32.to_be_bytes());
        assert_eq!(&bytes[12..16], &1u32.to_be_bytes());
        let pixels = miniz_oxide::inflate::decompress_to_vec_zlib(&bytes[16..]).expect("zlib");
        assert_eq!(pixels, frame.rgb);
    }

    #[test]
    fn a_frame_decodes_back_and_a_damaged_one_is_an_error() {
        let (name, frame) = example();
        let bytes = encode(&name, &frame);
        assert_eq!(decode(&bytes), Ok(("api".to_owned(), frame)));
        for cut in [0, 3, 5, 7, 12, 17, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_size = bytes.clone();
        wrong_size[11] = 3;
        assert!(
            decode(&wrong_size).is_err(),
            "more pixels announced than sent"
        );
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&huge).is_err(), "too large");
    }

    #[test]
    fn an_output_frame_carries_its_bytes_as_they_were() {
        let (name, _) = example();
        let bytes = encode_output(&name, b"\x1b[31mred\xff");
        assert_eq!(&bytes[..4], OUTPUT_MAGIC);
        assert_eq!(
            decode_output(&bytes),
            Some(("api", &b"\x1b[31mred\xff"[..]))
        );
        assert_eq!(name_of(&bytes), None, "not a screen");
        assert_eq!(decode_output(&bytes[..6]), None, "cut in the name");
    }
}
