//! Putting the proxy's listeners inside a sandbox's network namespace while the proxy
//! itself stays on the host.
//!
//! bwrap tells us its child's pid on `--info-fd` and waits on `--block-fd` before it runs
//! anything of the sandbox. Meanwhile a forked child of ours (single-threaded, as `setns`
//! into a user namespace needs) joins the user namespace that owns the sandbox's network
//! namespace (`NS_GET_USERNS`: it is bwrap's, not ours), then the network namespace, binds
//! 127.0.0.1:3128 and [::1]:3128, hands the two sockets back over a unix socket and exits.
//! The sockets keep their namespace: connections inside reach us, and we connect out from
//! the host's. Nothing of ours runs inside, and no other sandbox can reach these sockets.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sched::CloneFlags;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Where the proxy listens inside every sandbox.
pub const PROXY_PORT: u16 = 3128;

/// `NS_GET_USERNS` from linux/nsfs.h: the user namespace that owns a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// Reads bwrap's `--info-fd` JSON up to the child's pid. bwrap writes it once its child
/// exists; EOF first means bwrap never got that far.
pub fn read_child_pid(info: &mut impl Read) -> std::io::Result<i32> {
    let mut text = Vec::new();
    let mut byte = [0u8; 256];
    loop {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text)
            && let Some(pid) = value.get("child-pid").and_then(serde_json::Value::as_i64)
        {
            return i32::try_from(pid).map_err(std::io::Error::other);
        }
        let n = info.read(&mut byte)?;
        if n == 0 || text.len() > 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "bwrap ended before it reported its child",
            ));
        }
        text.extend_from_slice(&byte[..n]);
    }
}

/// Ends the sandbox's first process (and with it the sandbox): what a proxy that could not
/// plant its listeners does, so the sandbox never runs without the egress it was promised.
pub fn kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal with a pidfd we own, a signal number and no info.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// A pidfd for the sandbox's first process: readable once it has exited.
pub fn pidfd(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Binds the proxy's listeners inside `pid`'s network namespace (see the module comment).
/// Must be called while this process has a single thread.
pub fn listeners_in(pid: i32) -> std::io::Result<Vec<std::net::TcpListener>> {
    let (ours, theirs) = UnixStream::pair()?;
    // SAFETY: this process is single-threaded here (no runtime yet), so the child may do
    // anything; it ends with _exit and never returns into our code.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let code = match plant_and_send(pid, &theirs) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let received = receive_fds(&ours);
            let status = nix::sys::wait::waitpid(child, None).map_err(std::io::Error::from)?;
            let fds = received?;
            if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) || fds.is_empty() {
                return Err(std::io::Error::other(format!(
                    "planting the listeners failed ({status:?})"
                )));
            }
            Ok(fds.into_iter().map(std::net::TcpListener::from).collect())
        }
    }
}

/// In the forked child: join, bind, send.
fn plant_and_send(pid: i32, back: &UnixStream) -> std::io::Result<()> {
    let net = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd or -1.
    let owner = unsafe { libc::ioctl(net.as_raw_fd(), NS_GET_USERNS) };
    if owner < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    let owner = unsafe { OwnedFd::from_raw_fd(owner) };
    nix::sched::setns(&owner, CloneFlags::CLONE_NEWUSER).map_err(std::io::Error::from)?;
    nix::sched::setns(&net, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    let v4 = listen(libc::AF_INET)?;
    // A kernel without IPv6 (ipv6.disable=1) has no [::1]: IPv4 alone then.
    let v6 = match listen(libc::AF_INET6) {
        Ok(v6) => Some(v6),
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
        Err(e) => return Err(e),
    };
    let fds: Vec<RawFd> = std::iter::once(&v4)
        .chain(v6.as_ref())
        .map(AsRawFd::as_raw_fd)
        .collect();
    sendmsg::<()>(
        back.as_raw_fd(),
        &[IoSlice::new(b"L")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// A listening TCP socket on the loopback address of `family`, port [`PROXY_PORT`]. With
/// FREEBIND: bwrap may not have brought `lo` up yet when we bind.
fn listen(family: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let set = |level, name| {
        // SAFETY: an int option, passed by pointer with its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    set(libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    let rc = if family == libc::AF_INET {
        set(libc::IPPROTO_IP, libc::IP_FREEBIND)?;
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: PROXY_PORT.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: a sockaddr_in with its size.
        unsafe {
            libc::bind(
                fd,
                (&raw const address).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
    } else {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
        set(libc::IPPROTO_IPV6, libc::IPV6_FREEBIND)?;
        let address = libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            sin6_port: PROXY_PORT.to_be(),
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: std::net::Ipv6Addr::LOCALHOST.octets(),
            },
            sin6_scope_id: 0,
        };
        // SAFETY: a sockaddr_in6 with its size.
        unsafe {
            libc::bind(
                fd,
                (&raw const address).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: listen on the socket we own.
    if unsafe { libc::listen(fd, 128) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(socket)
}

fn receive_fds(from: &UnixStream) -> std::io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let message = recvmsg::<()>(
        from.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: SCM_RIGHTS fds are new in this process and ours alone.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok(fds)
}
