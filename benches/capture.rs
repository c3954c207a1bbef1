//! Capture cost per 1280x800 frame (issue 5): `cargo bench --bench capture [-- --runs N]`.
//!
//! On one Xvfb with real content, in the same run: x11rb GetImage, x11rb MIT-SHM (each to an
//! RGB frame, and to a PNG), against ImageMagick's `import -window root` (the seed's way),
//! which captures and writes a PNG. Target: at least 20 times faster than `import`.
//!
//! Then the bytes the TUI writes to the terminal for one changed frame at 100x30 cells, per
//! protocol (cells of 10x20 pixels), and for a redraw with no new frame.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use sandbox_deck::capture::x11::X11Capture;
use sandbox_deck::host::xvfb::{self, XvfbSpec};

const TARGET_RATIO: f64 = 20.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f());
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    median(samples)
}

fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30usize);
    if let Some(tool) = missing_tool() {
        eprintln!(
            "{tool} is missing (apt-get install xvfb imagemagick x11-xserver-utils x11-apps): nothing measured"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let desktop = Desktop::start(dir.path());
    let (number, auth) = (desktop.server.number, desktop.spec.auth_file.clone());
    let mut plain = X11Capture::connect(number, &auth, false).expect("x11 plain");
    let mut shm = X11Capture::connect(number, &auth, true).expect("x11 shm");
    assert!(shm.uses_shm(), "Xvfb offers MIT-SHM");
    let import = || {
        let mut c = desktop.command("import");
        let status = c
            .args(["-window", "root", "png:-"])
            .stdout(Stdio::null())
            .status()
            .expect("import");
        assert!(status.success());
    };
    // Warm-up.
    plain.capture().unwrap();
    shm.capture().unwrap();
    import();

    let t_plain = time(runs, || plain.capture().unwrap());
    let t_shm = time(runs, || shm.capture().unwrap());
    let t_plain_png = time(runs, || plain.capture().unwrap().to_png().unwrap());
    let t_shm_png = time(runs, || shm.capture().unwrap().to_png().unwrap());
    let t_unchanged = {
        // The common case on a quiet screen: hash only, nothing converted.
        let _ = shm.capture_if_changed();
        time(runs, || shm.capture_if_changed().unwrap())
    };
    let t_import = time(runs.min(15), import);
    print_capture_times(
        runs,
        &CaptureTimes {
            plain: t_plain,
            shm: t_shm,
            plain_png: t_plain_png,
            shm_png: t_shm_png,
            unchanged: t_unchanged,
            import: t_import,
        },
    );

    terminal_bytes(&mut shm);

    drop(plain);
    drop(shm);
    desktop.stop();
}

/// The first of the tools the bench needs that the host lacks.
fn missing_tool() -> Option<&'static str> {
    ["Xvfb", "import", "xsetroot", "xclock"]
        .into_iter()
        .find(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
}

/// An Xvfb with real content: a solid root and a ticking xclock.
struct Desktop {
    spec: XvfbSpec,
    server: xvfb::Display,
    clock: std::process::Child,
}

impl Desktop {
    fn start(dir: &Path) -> Desktop {
        let spec = XvfbSpec {
            first_display: 200,
            width: 1280,
            height: 800,
            depth: 24,
            auth_file: dir.join("auth"),
            log_file: dir.join("log"),
        };
        xvfb::write_cookie(&spec.auth_file).expect("cookie");
        let server = xvfb::start(Path::new("Xvfb"), &spec).expect("Xvfb");
        let x = |program: &str| x_client(server.number, &spec.auth_file, program);
        x("xsetroot")
            .args(["-solid", "#336699"])
            .status()
            .expect("xsetroot");
        let clock = x("xclock")
            .args(["-geometry", "600x600+100+100", "-update", "1"])
            .stderr(Stdio::null())
            .spawn()
            .expect("xclock");
        std::thread::sleep(std::time::Duration::from_millis(500));
        Desktop {
            spec,
            server,
            clock,
        }
    }

    /// `program` as an X client of this display.
    fn command(&self, program: &str) -> Command {
        x_client(self.server.number, &self.spec.auth_file, program)
    }

    fn stop(mut self) {
        let _ = self.clock.kill();
        let _ = self.clock.wait();
        self.server
            .process
            .terminate(std::time::Duration::from_secs(2));
        let _ = self.server.child.wait();
    }
}

fn x_client(number: u32, auth: &Path, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("DISPLAY", format!(":{number}"))
        .env("XAUTHORITY", auth);
    c
}

/// Medians in milliseconds.
struct CaptureTimes {
    plain: f64,
    shm: f64,
    plain_png: f64,
    shm_png: f64,
    unchanged: f64,
    import: f64,
}

fn print_capture_times(runs: usize, t: &CaptureTimes) {
    let t_import = t.import;
    println!(
        "capture of one 1280x800 frame, median of {runs} runs (import: {}):",
        runs.min(15)
    );
    println!(
        "  x11rb GetImage -> RGB        {:8.2} ms   {:6.1}x faster than import",
        t.plain,
        t_import / t.plain
    );
    println!(
        "  x11rb MIT-SHM  -> RGB        {:8.2} ms   {:6.1}x",
        t.shm,
        t_import / t.shm
    );
    println!(
        "  x11rb GetImage -> PNG        {:8.2} ms   {:6.1}x",
        t.plain_png,
        t_import / t.plain_png
    );
    println!(
        "  x11rb MIT-SHM  -> PNG        {:8.2} ms   {:6.1}x",
        t.shm_png,
        t_import / t.shm_png
    );
    println!(
        "  MIT-SHM, unchanged (skipped) {:8.2} ms   {:6.1}x",
        t.unchanged,
        t_import / t.unchanged
    );
    println!("  import -window root png:-    {t_import:8.2} ms   (baseline)");
    let best_raw = t.shm.min(t.plain);
    let verdict = if t_import / best_raw >= TARGET_RATIO {
        "ok"
    } else {
        "MISSED"
    };
    println!(
        "x11rb capture {:.1}x faster than import (target >= {TARGET_RATIO}x): {verdict}",
        t_import / best_raw
    );
}

/// Counts what would go to the terminal.
#[derive(Default, Clone)]
struct Counter(std::rc::Rc<std::cell::Cell<usize>>);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn terminal_bytes(capturer: &mut X11Capture) {
    use ratatui::backend::CrosstermBackend;
    use ratatui::layout::{Rect, Size};
    use ratatui::{Terminal, TerminalOptions, Viewport};
    use sandbox_deck::config::ImageProtocol;
    use sandbox_deck::tui::graphics::Graphics;

    const KIB: f64 = 1024.0;
    let area = Rect::new(0, 0, 100, 30);
    println!("bytes written to the terminal at 100x30 cells (10x20-pixel cells):");
    for (label, protocol, compress) in [
        ("halfblocks", ImageProtocol::Halfblocks, false),
        ("sixel", ImageProtocol::Sixel, false),
        ("iterm2", ImageProtocol::Iterm2, false),
        ("kitty", ImageProtocol::Kitty, false),
        ("kitty, zlib (over SSH)", ImageProtocol::Kitty, true),
    ] {
        let graphics = Graphics::forced(protocol, (10, 20), compress);
        let written = Counter::default();
        let mut terminal = Terminal::with_options(
            CrosstermBackend::new(written.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )
        .expect("a terminal");
        let mut draw = |image: &sandbox_deck::tui::graphics::ScreenImage| {
            let before = written.0.get();
            terminal
                .draw(|f| f.render_widget(ratatui_image::Image::new(&image.protocol), area))
                .expect("drawing");
            written.0.get() - before
        };
        let first = capturer.capture().expect("a frame");
        let first = graphics
            .encode(&first, Size::new(100, 30), 7)
            .expect("encoding");
        draw(&first);
        // xclock's second hand moves: the next capture is a changed frame.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let changed = capturer.capture().expect("a frame");
        let changed = graphics
            .encode(&changed, Size::new(100, 30), 7)
            .expect("encoding");
        let bytes = draw(&changed);
        let again = draw(&changed);
        println!(
            "  {label:<24} changed frame {:8.1} KiB   redraw, no new frame {again:6} B",
            bytes as f64 / KIB
        );
    }
    println!("  (an unchanged frame is dropped at the hash: nothing is drawn, 0 bytes)");
}
