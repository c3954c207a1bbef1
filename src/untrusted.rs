//! Opening files that a sandbox can write (its transcripts, its status events). Such a file
//! may be a symlink to a host file the sandbox cannot see, a FIFO that blocks a reader
//! forever, a device such as `/dev/zero`, or a sparse file of any size. The one way in is
//! [`open_regular`] / [`open_regular_beneath`]: no symlink is followed, nothing blocks on
//! open, and only a regular file (checked on the open descriptor, so it cannot be swapped
//! after the check) is returned. Whoever reads it then bounds its memory by a constant.

use std::fs::{File, Metadata};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a file was not read. Stable strings: they appear in `usage --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The file, or a directory on its way below the root, is a symlink.
    Symlink,
    /// A FIFO, socket, device or directory where a regular file was expected.
    NotRegular,
    /// Bigger than any log the reader accepts (the limit in bytes).
    TooLarge,
    /// The refresh ran out of its time budget; reading goes on at the next refresh.
    TimeBudget,
    /// Any other error while opening or reading (permission, I/O).
    Unreadable,
}

impl SkipReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Symlink => "symlink",
            SkipReason::NotRegular => "not_regular",
            SkipReason::TooLarge => "too_large",
            SkipReason::TimeBudget => "time_budget",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

/// A file that was not read (or not read to the end), with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: std::path::PathBuf,
    pub reason: SkipReason,
    /// The error or limit behind the reason, for people.
    pub detail: String,
}

/// What went wrong opening a file: gone (a normal race with the writer) or refused.
#[derive(Debug)]
pub enum OpenError {
    Gone,
    Refused(SkipReason, String),
}

const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// Opens `path` for reading without following a symlink in its last component and without
/// blocking, and returns it only if it is a regular file.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(classify)?;
    checked_regular(file)
}

/// [`open_regular`] for reading and appending (the host trims a file the sandbox appends to).
pub fn open_regular_rw(path: &Path) -> Result<(File, Metadata), OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(classify)?;
    checked_regular(file)
}

/// Opens `rel` below the directory `root` with no symlink followed anywhere below `root`
/// (openat2 with RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH); `root` itself is the user's choice
/// and may be a symlink. On kernels without openat2 (before 5.6) only the last component is
/// checked, as [`open_regular`] does.
pub fn open_regular_beneath(root: &Path, rel: &Path) -> Result<(File, Metadata), OpenError> {
    let dir = match File::open(root) {
        Ok(dir) => dir,
        Err(e) => return Err(classify(e)),
    };
    let Ok(rel_c) = std::ffi::CString::new(rel.as_os_str().as_bytes()) else {
        return Err(OpenError::Refused(
            SkipReason::Unreadable,
            "a NUL byte in the path".into(),
        ));
    };
    let how = OpenHow {
        flags: OPEN_FLAGS as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 reads `how` (its size passed) and the NUL-terminated path; the
    // descriptor it returns is ours alone.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            return open_regular(&root.join(rel));
        }
        return Err(classify(err));
    }
    // SAFETY: a fresh descriptor from openat2, owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    checked_regular(file)
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn checked_regular(file: File) -> Result<(File, Metadata), OpenError> {
    let meta = file.metadata().map_err(classify)?;
    if !meta.is_file() {
        return Err(OpenError::Refused(
            SkipReason::NotRegular,
            format!("not a regular file ({})", kind_name(&meta)),
        ));
    }
    Ok((file, meta))
}

fn kind_name(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

fn classify(e: std::io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::Gone,
        // ELOOP: O_NOFOLLOW met a symlink; EXDEV: RESOLVE_BENEATH met `..` or an absolute
        // symlink target; both are a symlink a sandbox planted.
        Some(libc::ELOOP) | Some(libc::EXDEV) => {
            OpenError::Refused(SkipReason::Symlink, "a symlink (not followed)".into())
        }
        // ENXIO: O_NONBLOCK open of a FIFO's write side or a socket; never wait for it.
        Some(libc::ENXIO) => OpenError::Refused(SkipReason::NotRegular, e.to_string()),
        _ => OpenError::Refused(SkipReason::Unreadable, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<(File, Metadata), OpenError>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(OpenError::Gone) => "gone".into(),
            Err(OpenError::Refused(r, _)) => r.as_str().into(),
        }
    }

    #[test]
    fn only_regular_files_below_the_root_without_symlinks_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/a.jsonl"), "{}\n").unwrap();
        let outside = dir.path().join("secret");
        std::fs::write(&outside, "host secret\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("real/link.jsonl")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked_dir")).unwrap();
        nix::unistd::mkfifo(
            &root.join("real/fifo.jsonl"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let at = |rel: &str| reason(open_regular_beneath(&root, Path::new(rel)));
        assert_eq!(at("real/a.jsonl"), "ok");
        assert_eq!(at("real/link.jsonl"), "symlink");
        assert_eq!(
            at("linked_dir/a.jsonl"),
            "symlink",
            "a symlinked dir on the way"
        );
        assert_eq!(at("real/fifo.jsonl"), "not_regular", "and did not block");
        assert_eq!(at("real"), "not_regular");
        assert_eq!(at("real/none.jsonl"), "gone");
        assert_eq!(at("../secret"), "symlink", "no way out of the root");
        assert_eq!(reason(open_regular(Path::new("/dev/zero"))), "not_regular");
        assert_eq!(
            reason(open_regular(&root.join("real/link.jsonl"))),
            "symlink"
        );
    }
}
