//! Images in the terminal: which protocol this terminal speaks (asked once, at start) and
//! frames turned into that protocol's cells, off the UI task.

use std::fmt;
use std::sync::Arc;

use crossterm::event::KeyEvent;
use image::{DynamicImage, RgbImage};
use ratatui::layout::Size;
use ratatui_image::picker::cap_parser::{QueryStdioOptions, Response};
use ratatui_image::picker::{Capability, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::protocol::iterm2::Iterm2;
use ratatui_image::protocol::kitty::Kitty;
use ratatui_image::protocol::sixel::Sixel;
use ratatui_image::{FilterType, FontSize, Resize};

use super::terminal_query::{self, Answer};
use crate::capture::Frame;
use crate::config::ImageProtocol;

/// What the state needs to know about images: plain data, for the reducer and the views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSupport {
    /// The protocol in use, by name.
    pub protocol: &'static str,
    /// Set when the protocol asked for cannot be shown here: (asked, what to pick instead).
    pub unsupported: Option<(&'static str, &'static str)>,
}

impl ImageSupport {
    pub fn can_show(&self) -> bool {
        self.unsupported.is_none()
    }

    /// Half blocks: no terminal query, always drawable (tests and `--image-protocol halfblocks`).
    pub fn halfblocks() -> ImageSupport {
        ImageSupport {
            protocol: "halfblocks",
            unsupported: None,
        }
    }
}

/// How frames become terminal images. Shared with the capture tasks.
#[derive(Debug, Clone)]
pub struct Graphics {
    protocol: ProtocolType,
    font_size: FontSize,
    is_tmux: bool,
    compress: bool,
}

impl Graphics {
    /// Half blocks at a nominal 1:2 cell; what tests use.
    pub fn halfblocks() -> Graphics {
        Graphics {
            protocol: ProtocolType::Halfblocks,
            font_size: FontSize::new(10, 20),
            is_tmux: false,
            compress: false,
        }
    }

    /// A protocol forced with a known cell size in pixels, for measurements. `Auto` is half
    /// blocks; `compress` is kitty's zlib transmission.
    pub fn forced(protocol: ImageProtocol, cell: (u16, u16), compress: bool) -> Graphics {
        let protocol = match protocol {
            ImageProtocol::Kitty => ProtocolType::Kitty,
            ImageProtocol::Sixel => ProtocolType::Sixel,
            ImageProtocol::Iterm2 => ProtocolType::Iterm2,
            ImageProtocol::Auto | ImageProtocol::Halfblocks => ProtocolType::Halfblocks,
        };
        Graphics {
            protocol,
            font_size: FontSize::new(cell.0, cell.1),
            is_tmux: false,
            compress,
        }
    }

    /// Asks the terminal what it can show, unless `choice` makes the answer moot. Call it
    /// after the first frame is drawn and before the input reader starts: the answer comes
    /// in on stdin. Returns the keys typed meanwhile too, for the caller to replay.
    pub fn detect(choice: ImageProtocol) -> (Graphics, ImageSupport, Vec<KeyEvent>) {
        if choice == ImageProtocol::Halfblocks {
            return (
                Graphics::halfblocks(),
                ImageSupport::halfblocks(),
                Vec::new(),
            );
        }
        let is_tmux = terminal_query::terminal_is_tmux();
        // Inside tmux the query goes through passthrough to the outer terminal. With
        // passthrough off, or no client attached, nobody answers. Without `$TMUX` (sudo -i,
        // su - inside tmux) the server cannot even be asked: do not ask the terminal either.
        let passthrough = !is_tmux || (std::env::var_os("TMUX").is_some() && tmux_passes_images());
        let (detected, typed) = if passthrough {
            let answer = terminal_query::ask(is_tmux, query_options()).unwrap_or_default();
            (Detected::from_answer(&answer, is_tmux), answer.typed)
        } else {
            let detected = Detected {
                is_tmux: true,
                ..Detected::default()
            };
            (detected, Vec::new())
        };
        let protocol = decide(choice, &detected, passthrough);
        let graphics = Graphics {
            protocol: protocol.unwrap_or(ProtocolType::Halfblocks),
            font_size: detected.font_size.unwrap_or(FontSize::new(10, 20)),
            is_tmux: detected.is_tmux,
            compress: detected
                .capabilities
                .contains(&Capability::KittyCompression),
        };
        let support = match protocol {
            Some(p) => ImageSupport {
                protocol: name(p),
                unsupported: None,
            },
            None => ImageSupport {
                protocol: choice.as_str(),
                unsupported: Some((choice.as_str(), name(auto_pick(&detected, passthrough)))),
            },
        };
        (graphics, support, typed)
    }

    /// The frame scaled to fill `area` cells as far as its aspect ratio allows (enlarged too:
    /// a display smaller than the terminal in pixels still fills it), encoded for the terminal.
    /// `image_id` names the kitty image of this pane: reused, each frame replaces the last
    /// one in the terminal instead of piling up.
    pub fn encode(&self, frame: &Frame, area: Size, image_id: u32) -> Result<ScreenImage, String> {
        let rgb = RgbImage::from_raw(frame.width, frame.height, frame.rgb.clone())
            .ok_or("the frame is shorter than its size")?;
        let source = DynamicImage::ImageRgb8(rgb);
        // Triangle keeps text on the screen readable when it is scaled down or up.
        let resize = Resize::Scale(Some(FilterType::Triangle));
        let cells = resize.size_for(&source, self.font_size, area);
        if cells.width == 0 || cells.height == 0 {
            return Err("no room for the image".into());
        }
        let image = resize.resize(&source, self.font_size, cells, None);
        let failed = |e: ratatui_image::errors::Errors| e.to_string();
        let protocol = match self.protocol {
            ProtocolType::Halfblocks => {
                Protocol::Halfblocks(Halfblocks::new(image, cells).map_err(failed)?)
            }
            ProtocolType::Sixel => {
                Protocol::Sixel(Sixel::new(image, cells, self.is_tmux).map_err(failed)?)
            }
            ProtocolType::Kitty => Protocol::Kitty(
                Kitty::new(image, cells, image_id, self.is_tmux, self.compress).map_err(failed)?,
            ),
            ProtocolType::Iterm2 => {
                Protocol::ITerm2(Iterm2::new(image, cells, self.is_tmux).map_err(failed)?)
            }
        };
        Ok(ScreenImage {
            protocol: Arc::new(protocol),
            cells,
            frame_size: (frame.width, frame.height),
        })
    }
}

/// One encoded frame, ready to draw.
#[derive(Clone)]
pub struct ScreenImage {
    pub protocol: Arc<Protocol>,
    pub cells: Size,
    pub frame_size: (u32, u32),
}

impl fmt::Debug for ScreenImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ScreenImage({}x{} in {}x{} cells)",
            self.frame_size.0, self.frame_size.1, self.cells.width, self.cells.height
        )
    }
}

/// What the terminal query found.
#[derive(Debug, Clone, Default)]
struct Detected {
    /// What ratatui-image would pick; None when the terminal did not answer.
    protocol: Option<ProtocolType>,
    font_size: Option<FontSize>,
    capabilities: Vec<Capability>,
    is_tmux: bool,
}

impl Detected {
    /// Kitty if the terminal said so, else sixel, else iTerm2 by the environment. Without an
    /// answer there is no cell size, so only half blocks pass `supports`: a guessed size would
    /// distort pixel images.
    fn from_answer(answer: &Answer, is_tmux: bool) -> Detected {
        if !answer.answered {
            return Detected {
                is_tmux,
                ..Detected::default()
            };
        }
        let capabilities: Vec<Capability> = answer
            .responses
            .iter()
            .filter_map(|r| match r {
                Response::Kitty => Some(Capability::Kitty),
                Response::Sixel => Some(Capability::Sixel),
                Response::KittyCompression => Some(Capability::KittyCompression),
                Response::RectangularOps => Some(Capability::RectangularOps),
                Response::CellSize(size) => Some(Capability::CellSize(*size)),
                _ => None,
            })
            .collect();
        let has = |c: &Capability| capabilities.contains(c);
        let protocol = if has(&Capability::Kitty) {
            Some(ProtocolType::Kitty)
        } else if has(&Capability::Sixel) {
            Some(ProtocolType::Sixel)
        } else {
            terminal_query::iterm2_by_environment().or(Some(ProtocolType::Halfblocks))
        };
        let reported = capabilities.iter().find_map(|c| match c {
            Capability::CellSize(Some((w, h))) => Some(FontSize::new(*w, *h)),
            _ => None,
        });
        Detected {
            protocol,
            font_size: reported.or_else(cell_size_from_window),
            capabilities,
            is_tmux,
        }
    }

    fn supports(&self, protocol: ProtocolType) -> bool {
        match protocol {
            ProtocolType::Halfblocks => true,
            _ if self.font_size.is_none() => false,
            ProtocolType::Kitty => self.capabilities.contains(&Capability::Kitty),
            ProtocolType::Sixel => self.capabilities.contains(&Capability::Sixel),
            // iTerm2 answers no query: only the environment (ratatui-image's pick) says so.
            ProtocolType::Iterm2 => self.protocol == Some(ProtocolType::Iterm2),
        }
    }
}

/// The protocol to draw with, or None when the one forced cannot be shown here.
fn decide(choice: ImageProtocol, detected: &Detected, passthrough: bool) -> Option<ProtocolType> {
    let forced = match choice {
        ImageProtocol::Auto => return Some(auto_pick(detected, passthrough)),
        ImageProtocol::Halfblocks => return Some(ProtocolType::Halfblocks),
        ImageProtocol::Kitty => ProtocolType::Kitty,
        ImageProtocol::Sixel => ProtocolType::Sixel,
        ImageProtocol::Iterm2 => ProtocolType::Iterm2,
    };
    (passthrough && detected.supports(forced)).then_some(forced)
}

/// What `auto` draws with: the terminal's own protocol, half blocks when it has none, when
/// its cell size is unknown, or inside a tmux that does not pass escapes through.
fn auto_pick(detected: &Detected, passthrough: bool) -> ProtocolType {
    match detected.protocol {
        Some(p) if passthrough && detected.supports(p) => p,
        _ => ProtocolType::Halfblocks,
    }
}

/// What the query asks. Over SSH the link is the bottleneck: kitty frames go zlib-compressed
/// when the terminal says it can inflate them. WezTerm and Konsole draw kitty and sixel
/// images badly (placeholders, a buggy sixel): they are not asked about those.
fn query_options() -> QueryStdioOptions {
    let over_ssh =
        std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some();
    let set = |var| std::env::var(var).is_ok_and(|v| !v.is_empty());
    let blacklist_protocols = if set("WEZTERM_EXECUTABLE") || set("KONSOLE_VERSION") {
        vec![ProtocolType::Kitty, ProtocolType::Sixel]
    } else {
        Vec::new()
    };
    QueryStdioOptions {
        kitty_compression: over_ssh,
        blacklist_protocols,
        ..QueryStdioOptions::default()
    }
}

/// The cell size from the window's size in pixels, for terminals that do not answer `16t`.
fn cell_size_from_window() -> Option<FontSize> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    Some(FontSize::new(
        size.width / size.columns,
        size.height / size.rows,
    ))
}

/// Inside tmux, images reach the outer terminal only with `allow-passthrough` on (tmux
/// before 3.3 has no such option) and a client attached to show them.
fn tmux_passes_images() -> bool {
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    // Our own pane only; ratatui-image asks for the same. Whether it took is read back next.
    let _ = tmux(&["set", "-p", "allow-passthrough", "on"]);
    let passthrough = tmux(&["show", "-pv", "allow-passthrough"])
        .is_some_and(|v| matches!(v.as_str(), "on" | "all"));
    let attached = tmux(&["display", "-p", "#{session_attached}"]).is_some_and(|n| n != "0");
    passthrough && attached
}

fn name(protocol: ProtocolType) -> &'static str {
    match protocol {
        ProtocolType::Halfblocks => "halfblocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iterm2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(caps: Vec<Capability>, protocol: ProtocolType) -> Detected {
        Detected {
            protocol: Some(protocol),
            font_size: Some(FontSize::new(9, 18)),
            capabilities: caps,
            is_tmux: false,
        }
    }

    #[test]
    fn auto_takes_what_the_terminal_says_and_half_blocks_otherwise() {
        let kitty = answered(vec![Capability::Kitty], ProtocolType::Kitty);
        assert_eq!(
            decide(ImageProtocol::Auto, &kitty, true),
            Some(ProtocolType::Kitty)
        );
        assert_eq!(
            decide(ImageProtocol::Auto, &kitty, false),
            Some(ProtocolType::Halfblocks),
            "tmux without passthrough"
        );
        assert_eq!(
            decide(ImageProtocol::Auto, &Detected::default(), true),
            Some(ProtocolType::Halfblocks),
            "no answer"
        );
    }

    #[test]
    fn a_forced_protocol_the_terminal_lacks_is_refused_with_an_alternative() {
        let sixel = answered(vec![Capability::Sixel], ProtocolType::Sixel);
        assert_eq!(decide(ImageProtocol::Kitty, &sixel, true), None);
        assert_eq!(auto_pick(&sixel, true), ProtocolType::Sixel);
        assert_eq!(
            decide(ImageProtocol::Sixel, &sixel, true),
            Some(ProtocolType::Sixel)
        );
        assert_eq!(
            decide(ImageProtocol::Kitty, &Detected::default(), true),
            None
        );
        assert_eq!(
            decide(ImageProtocol::Halfblocks, &Detected::default(), false),
            Some(ProtocolType::Halfblocks)
        );
    }

    #[test]
    fn the_answer_picks_kitty_and_its_cell_size_and_silence_picks_half_blocks() {
        let answer = Answer {
            responses: vec![
                Response::Sixel,
                Response::Kitty,
                Response::CellSize(Some((9, 18))),
            ],
            answered: true,
            typed: Vec::new(),
        };
        let detected = Detected::from_answer(&answer, false);
        assert_eq!(detected.protocol, Some(ProtocolType::Kitty));
        let font = detected.font_size.expect("a cell size");
        assert_eq!((font.width, font.height), (9, 18));
        assert_eq!(
            decide(ImageProtocol::Auto, &detected, true),
            Some(ProtocolType::Kitty)
        );
        let silent = Detected::from_answer(&Answer::default(), true);
        assert!(silent.is_tmux);
        assert_eq!(
            decide(ImageProtocol::Auto, &silent, true),
            Some(ProtocolType::Halfblocks)
        );
        assert_eq!(decide(ImageProtocol::Kitty, &silent, true), None);
    }

    #[test]
    fn a_small_frame_is_enlarged_to_fill_the_area_keeping_its_aspect_ratio() {
        // 80x50 pixels is 8x3 cells at 10x20; the area is 100x40 cells.
        let frame = Frame {
            width: 80,
            height: 50,
            rgb: vec![10; 80 * 50 * 3],
        };
        let image = Graphics::halfblocks()
            .encode(&frame, Size::new(100, 40), 7)
            .unwrap();
        // 1.6:1 in 40 rows of 10x20 cells: 1280x800 pixels, 128 columns; too wide for 100,
        // so 100 columns and 1000x625 pixels, 32 rows.
        assert_eq!((image.cells.width, image.cells.height), (100, 32));
    }

    #[test]
    fn a_frame_becomes_half_blocks_that_fit_the_area() {
        let frame = Frame {
            width: 40,
            height: 20,
            rgb: vec![200; 40 * 20 * 3],
        };
        let image = Graphics::halfblocks()
            .encode(&frame, Size::new(10, 10), 7)
            .unwrap();
        assert!(
            image.cells.width <= 10 && image.cells.height <= 10,
            "{image:?}"
        );
        assert!(image.cells.width > 0 && image.cells.height > 0, "{image:?}");
    }
}
