//! Screenshots against a real Xvfb (x11rb, plain and MIT-SHM) and a real QEMU (QMP).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use sandbox_deck::capture::Frame;
use sandbox_deck::capture::qmp::QmpCapture;
use sandbox_deck::capture::x11::X11Capture;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
};

/// A running managed sandbox and what a host-side X client needs to reach its display.
struct Screen {
    world: World,
    display: u32,
    cookie: PathBuf,
}

fn screen_world(name: &str) -> Option<Screen> {
    if !prerequisites(&["tmux", "Xvfb", "bwrap", "xsetroot"]) {
        return None;
    }
    let world = World::new();
    let record = world.create_idle(name);
    let display = record["display"].as_u64().unwrap() as u32;
    let id = record["id"].as_str().unwrap();
    let cookie = world
        .runtime
        .join("sandbox-deck/sandboxes")
        .join(id)
        .join("Xauthority");
    Some(Screen {
        world,
        display,
        cookie,
    })
}

fn xsetroot(screen: &Screen, colour: &str) {
    let status = Command::new("xsetroot")
        .args([
            "-display",
            &format!(":{}", screen.display),
            "-solid",
            colour,
        ])
        .env("XAUTHORITY", &screen.cookie)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Draws a window at (100, 50) of 200x100: red left half, blue right half.
fn draw_pattern(screen: &Screen) -> x11rb::rust_connection::RustConnection {
    let cookie = sandbox_deck::host::xvfb::read_cookie(&screen.cookie).unwrap();
    let stream =
        std::os::unix::net::UnixStream::connect(format!("/tmp/.X11-unix/X{}", screen.display))
            .unwrap();
    let (stream, _) = x11rb::rust_connection::DefaultStream::from_unix_stream(stream).unwrap();
    let conn = x11rb::rust_connection::RustConnection::connect_to_stream_with_auth_info(
        stream,
        0,
        b"MIT-MAGIC-COOKIE-1".to_vec(),
        cookie,
    )
    .unwrap();
    let root = conn.setup().roots[0].root;
    let window = conn.generate_id().unwrap();
    conn.create_window(
        24,
        window,
        root,
        100,
        50,
        200,
        100,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(0xff0000)
            .override_redirect(1),
    )
    .unwrap();
    conn.map_window(window).unwrap();
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, window, &CreateGCAux::new().foreground(0x0000ff))
        .unwrap();
    conn.poly_fill_rectangle(
        window,
        gc,
        &[Rectangle {
            x: 100,
            y: 0,
            width: 100,
            height: 100,
        }],
    )
    .unwrap();
    conn.get_input_focus().unwrap().reply().unwrap(); // a round trip: everything is drawn
    conn
}

fn check_known_pixels(use_shm: bool) {
    let Some(screen) = screen_world(if use_shm { "shm" } else { "plain" }) else {
        return;
    };
    xsetroot(&screen, "#ff8000");
    let _window = draw_pattern(&screen);
    let mut capture = X11Capture::connect(screen.display, &screen.cookie, use_shm).unwrap();
    assert_eq!(capture.uses_shm(), use_shm, "Xvfb offers MIT-SHM");
    let frame = capture.capture().unwrap();
    assert_eq!(
        (frame.width, frame.height),
        (1280, 800),
        "the configured screen size"
    );
    assert_eq!(frame.pixel(5, 5), [255, 128, 0], "background");
    assert_eq!(frame.pixel(1279, 799), [255, 128, 0], "far corner");
    assert_eq!(frame.pixel(110, 60), [255, 0, 0], "left half of the window");
    assert_eq!(
        frame.pixel(290, 140),
        [0, 0, 255],
        "right half of the window"
    );
    assert_eq!(
        frame.pixel(99, 49),
        [255, 128, 0],
        "just outside the window"
    );
    // Nothing changed: no new frame. Then a change gives one.
    assert_eq!(capture.capture_if_changed().unwrap(), None);
    xsetroot(&screen, "#00ff00");
    wait_for("the new background", Duration::from_secs(5), || {
        X11Capture::connect(screen.display, &screen.cookie, false)
            .unwrap()
            .capture()
            .unwrap()
            .pixel(5, 5)
            == [0, 255, 0]
    });
    let changed = capture
        .capture_if_changed()
        .unwrap()
        .expect("a new frame after a change");
    assert_eq!(changed.pixel(5, 5), [0, 255, 0]);
    assert_eq!(
        changed.pixel(110, 60),
        [255, 0, 0],
        "the window is still there"
    );
    drop(screen.world);
}

#[test]
fn x11_capture_reads_known_pixels_and_skips_unchanged_frames() {
    check_known_pixels(false);
}

#[test]
fn x11_capture_through_shared_memory_reads_the_same_pixels() {
    check_known_pixels(true);
}

#[test]
fn the_screenshot_command_writes_a_png_that_round_trips() {
    let Some(screen) = screen_world("cli") else {
        return;
    };
    xsetroot(&screen, "#123456");
    let out = screen.world.path("shot.png");
    let reply = screen
        .world
        .json(&["screenshot", "cli", "-o", out.to_str().unwrap()]);
    assert_eq!(reply["width"], 1280);
    assert_eq!(reply["height"], 800);
    assert_eq!(reply["name"], "cli");
    assert_eq!(reply["path"], out.to_str().unwrap());
    assert!(reply["captured_at"].as_str().unwrap().contains('T'));
    let frame = Frame::from_png(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!((frame.width, frame.height), (1280, 800));
    assert_eq!(frame.pixel(640, 400), [0x12, 0x34, 0x56]);
    // `-o -` writes the PNG to stdout.
    let stdout = screen.world.run(&["screenshot", "cli", "-o", "-"]);
    assert!(stdout.status.success());
    assert_eq!(Frame::from_png(&stdout.stdout).unwrap(), frame);
    // A stopped sandbox has no screen: a clear error.
    screen.world.json(&["stop", "cli"]);
    let (kind, message) =
        screen
            .world
            .error_kind(&["screenshot", "cli", "-o", out.to_str().unwrap()]);
    assert_eq!(kind, "wrong_state");
    assert!(message.contains("start"), "{message}");
}

#[test]
fn a_vanished_display_is_an_error_not_a_hang() {
    let Some(screen) = screen_world("vanish") else {
        return;
    };
    let record = screen.world.show("vanish");
    let xvfb = record["xvfb"]["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(xvfb),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("Xvfb to die", Duration::from_secs(5), || {
        !is_running(xvfb as u32)
    });
    let err = X11Capture::connect(screen.display, &screen.cookie, true)
        .err()
        .unwrap();
    assert!(err.to_string().contains("gone"), "{err}");
    assert_eq!(screen.world.show("vanish")["state"], "dead");
}

/// A QEMU with no guest: the firmware's screen is a real frame.
struct Qemu {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_qemu() -> Option<Qemu> {
    if !prerequisites(&["qemu-system-x86_64"]) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("qmp.sock");
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-vga",
            "std",
            "-m",
            "64",
        ])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the QMP socket", Duration::from_secs(10), || {
        socket.exists()
    });
    Some(Qemu {
        child,
        socket,
        _dir: dir,
    })
}

#[test]
fn qmp_screendump_of_a_real_qemu_decodes_to_the_firmware_screen() {
    let Some(qemu) = start_qemu() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dumps = scratch.path().join("dumps");
    let mut capture = QmpCapture::new(&qemu.socket, &dumps).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dumps).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // SeaBIOS switches to its 720x400 text mode early; wait for it. A VM still starting on a
    // busy machine may not answer a screendump yet: what counts is a good one in time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let frame = loop {
        let last = match capture.capture() {
            Ok(f) if (f.width, f.height) == (720, 400) => break f,
            Ok(f) => format!("{}x{}", f.width, f.height),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "no firmware screen in 20 s; the last capture: {last}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(frame.rgb.len(), 720 * 400 * 3);
    assert!(
        std::fs::read_dir(&dumps).unwrap().next().is_none(),
        "dump files are removed"
    );
    let missing = QmpCapture::new(Path::new("/nonexistent/qmp.sock"), &dumps)
        .unwrap()
        .capture();
    assert!(missing.is_err());
}
