//! The seccomp filter every sandbox runs under. It closes what namespaces leave open:
//! TIOCSTI/TIOCLINUX (typing into the caller's terminal: CVE-2017-5226, verified here with
//! `dev.tty.legacy_tiocsti=1`) and kernel attack surface an agent has no use for.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{DeckError, Result};

/// Syscalls refused outright (EPERM): the kernel keyring (shared across namespaces),
/// and interfaces with a long record of privilege escalations.
const DENIED_SYSCALLS: &[(&str, libc::c_long)] = &[
    ("add_key", libc::SYS_add_key),
    ("keyctl", libc::SYS_keyctl),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("kexec_load", libc::SYS_kexec_load),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    // Nothing inside mounts: without capabilities these already fail, but a process in a
    // nested user namespace (which Chromium's sandbox needs, see `NAMESPACE_FLAGS`) would
    // hold CAP_SYS_ADMIN there, and filesystem code is a large part of the kernel.
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("setns", libc::SYS_setns),
];

/// Extended attribute writes, answered EOPNOTSUPP ("this filesystem has no xattrs", which `cp
/// -p`, `cp -a` and ACL code take in their stride, where EPERM would fail them). File
/// capabilities are an xattr (security.capability): a process holding CAP_SETFCAP in a
/// nested user namespace (see `NAMESPACE_FLAGS`) may write one, tagged with the kuid of that
/// namespace's root. For a root caller's sandbox that is host uid 0, so the file would carry
/// its capabilities for every host user who runs it: a setuid plant by another name. The
/// name is behind a pointer a filter cannot read, so every xattr write is refused.
const XATTR_WRITES: &[(&str, libc::c_long)] = &[
    ("setxattr", libc::SYS_setxattr),
    ("lsetxattr", libc::SYS_lsetxattr),
    ("fsetxattr", libc::SYS_fsetxattr),
    ("setxattrat", SYS_SETXATTRAT),
];

/// `setxattrat` (Linux 6.13), not in libc yet: the same number on every architecture, as
/// all syscalls from 424 on are.
const SYS_SETXATTRAT: libc::c_long = 463;

/// Namespaces a sandboxed process may not create, even where a nested user namespace is
/// allowed: Chromium's sandbox needs a user, a pid and a network namespace (the renderers'
/// empty network namespace is what keeps them off the network), nothing else. Refusing a
/// mount namespace keeps every filesystem type out of reach of the capabilities a nested
/// user namespace grants.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

/// Sockets refused: (domain, protocol or None for any). In a network namespace of its own a
/// process holds CAP_NET_ADMIN and CAP_NET_RAW; netfilter (nf_tables), xfrm and packet
/// sockets are where most escalations from there went (CVE-2022-1015, CVE-2023-32233,
/// CVE-2024-1086 among them). Without those capabilities nothing in a sandbox can use them,
/// so refusing them costs nothing.
const DENIED_SOCKETS: &[(&str, libc::c_int, Option<libc::c_int>)] = &[
    (
        "netlink netfilter",
        libc::AF_NETLINK,
        Some(libc::NETLINK_NETFILTER),
    ),
    ("netlink xfrm", libc::AF_NETLINK, Some(libc::NETLINK_XFRM)),
    ("packet", libc::AF_PACKET, None),
];

/// Socket types refused in any domain. `socket(AF_INET, SOCK_PACKET, ..)` is the obsolete
/// spelling of a packet socket: the kernel turns it into `AF_PACKET` after the filter has seen
/// `AF_INET`, so the domain rule above alone would let it through.
/// (libc marks the constant deprecated, for that reason: 10 in every Linux ABI.)
const DENIED_SOCKET_TYPES: &[(&str, libc::c_int)] = &[("SOCK_PACKET", 10)];

/// The kernel masks a socket's type with this before looking at it (the rest are
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: u64 = 0xf;

/// Legacy netfilter (ip_tables, ip6_tables, arp_tables, ebtables, IPVS) is configured through
/// `setsockopt`/`getsockopt` on an ordinary IP socket, not through netlink: with
/// `CAP_NET_ADMIN` over a network namespace of its own, a process reaches the x_tables code
/// (CVE-2016-3134, CVE-2021-22555 went through it) even with netlink netfilter refused.
/// Every IPv4 option from 64 up is netfilter's (`IPT_BASE_CTL` 64, `ARPT_BASE_CTL` 96,
/// `EBT_BASE_CTL` 128, `IP_VS_BASE_CTL` 1152), except `SO_ORIGINAL_DST` (80, a conntrack
/// lookup any program may make); IPv6 interleaves its own options (`IPV6_TCLASS` 67), so
/// ip6_tables' numbers are listed one by one.
const NETFILTER_SOCKOPTS: &[(libc::c_int, std::ops::RangeInclusive<u32>)] = &[
    (libc::SOL_IP, 64..=79),
    (libc::SOL_IP, 81..=u32::MAX),
    (libc::SOL_IPV6, 64..=65),
    (libc::SOL_IPV6, 68..=69),
];

/// Syscalls whose first argument carries namespace flags.
const NAMESPACE_SYSCALLS: &[libc::c_long] = &[libc::SYS_unshare, libc::SYS_clone];

/// ioctl requests refused. Compared on the low 32 bits only, so the variant with high bits
/// set (CVE-2019-10063) is caught too.
// The ioctl request type is c_ulong on glibc but c_int on musl: the cast is not always a no-op.
#[allow(clippy::unnecessary_cast)]
const DENIED_IOCTLS: &[(&str, u64)] = &[
    ("TIOCSTI", libc::TIOCSTI as u64),
    ("TIOCLINUX", libc::TIOCLINUX as u64),
];

/// chmod-family syscalls and the index of their mode argument. Setting a setuid or setgid bit
/// is refused, so a file planted in the project can never become a privileged binary for
/// the host (the same rule Flatpak applies).
const MODE_SYSCALLS: &[(libc::c_long, u8)] = &[
    (libc::SYS_chmod, 1),
    (libc::SYS_fchmod, 1),
    (libc::SYS_fchmodat, 2),
    (libc::SYS_fchmodat2, 2),
];

/// Syscalls that create a file with a mode: (syscall, index of the flags argument when the
/// mode only counts with O_CREAT/O_TMPFILE, index of the mode argument). Without these, the
/// chmod rule above is bypassed by creating the file with the bits already set
/// (`open(O_CREAT, 04755)`, `mknod(S_IFREG | 04755)`).
const CREATE_SYSCALLS: &[(libc::c_long, Option<u8>, u8)] = &[
    (libc::SYS_open, Some(1), 2),
    (libc::SYS_openat, Some(2), 3),
    (libc::SYS_creat, None, 1),
    (libc::SYS_mknod, None, 1),
    (libc::SYS_mknodat, None, 2),
];

/// Syscalls that make a filesystem node and the index of their mode argument: a FIFO is
/// refused. A FIFO planted where a host program opens a file by name (a loose ref under the
/// shared `refs/`, a file in the project an editor or a hook reads) blocks that program in
/// `open` until a writer comes, for good once the sandbox removes the name. No path is
/// visible to a filter, so FIFOs are refused everywhere: pipes and sockets do the same work
/// (GNU make falls back to a pipe for its jobserver).
const NODE_SYSCALLS: &[(libc::c_long, u8)] = &[(libc::SYS_mknod, 1), (libc::SYS_mknodat, 2)];

/// Names of what the filter refuses, for docs and `doctor`.
pub fn denied() -> Vec<&'static str> {
    DENIED_SYSCALLS
        .iter()
        .map(|(n, _)| *n)
        .chain(DENIED_IOCTLS.iter().map(|(n, _)| *n))
        .chain(DENIED_SOCKETS.iter().map(|(n, _, _)| *n))
        .chain(DENIED_SOCKET_TYPES.iter().map(|(n, _)| *n))
        .chain(XATTR_WRITES.iter().map(|(n, _)| *n))
        .chain([
            "chmod/fchmod/fchmodat with S_ISUID or S_ISGID",
            "open/openat (O_CREAT or O_TMPFILE)/creat/mknod/mknodat with S_ISUID or S_ISGID",
            "mknod/mknodat of a FIFO (mkfifo)",
            "openat2 (ENOSYS: its mode is in a struct a filter cannot read)",
            "unshare/clone with CLONE_NEWNS, NEWUTS, NEWIPC, NEWCGROUP or NEWTIME",
            "clone3 (ENOSYS: its flags are in a struct a filter cannot read)",
            "every x32 syscall on x86_64 (they would match no rule)",
            "setsockopt/getsockopt of legacy netfilter (ip/ip6/arp/ebtables, IPVS)",
        ])
        .collect()
}

fn target_arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(DeckError::from)
}

/// The filters a sandbox runs under, in order: the main one (EPERM), one that answers
/// openat2 and clone3 with ENOSYS, one that answers xattr writes with EOPNOTSUPP, and on
/// x86_64 one that refuses x32 syscalls. They take their mode or flags in a struct a filter cannot
/// read, so the setuid and namespace rules cannot look at them; ENOSYS makes callers (glibc
/// among them) fall back to openat and clone, which the main filter inspects. Several filters
/// because one filter has one action; the kernel applies them all.
pub fn programs() -> Result<Vec<BpfProgram>> {
    let mut programs = vec![main_program()?, openat2_program()?, xattr_program()?];
    programs.extend(x32_program());
    debug_assert_eq!(programs.len(), PROGRAM_COUNT);
    Ok(programs)
}

/// How many programs [`programs`] returns (bwrap gets one descriptor for each).
pub const PROGRAM_COUNT: usize = if cfg!(target_arch = "x86_64") { 4 } else { 3 };

/// The bit that marks an x32 syscall on x86_64. x32 calls come with the x86_64 audit arch,
/// so the arch check every program starts with lets them through, and their numbers
/// (`0x40000000 | nr`) match none of the rules: on a kernel built with `CONFIG_X86_X32_ABI`
/// (Debian's, switched on with `syscall.x32=y`) every rule above could be walked around.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A program that refuses every x32 syscall (EPERM), on x86_64 only.
#[cfg(target_arch = "x86_64")]
fn x32_program() -> Option<BpfProgram> {
    use seccompiler::sock_filter;
    let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    Some(vec![
        // The syscall number is the first field of `struct seccomp_data`.
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        op(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            1,
        ),
        op(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            0,
            0,
        ),
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ])
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_program() -> Option<BpfProgram> {
    None
}

/// A filter over `rules` for this architecture, compiled: `mismatch` for the calls no rule
/// matches, `matched` (the filter's one refusal) for the others.
fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram> {
    let filter =
        SeccompFilter::new(rules, mismatch, matched, target_arch()?).map_err(DeckError::from)?;
    BpfProgram::try_from(filter).map_err(DeckError::from)
}

fn openat2_program() -> Result<BpfProgram> {
    compile(
        BTreeMap::from([
            (libc::SYS_openat2, Vec::new()),
            (libc::SYS_clone3, Vec::new()),
        ]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )
}

fn xattr_program() -> Result<BpfProgram> {
    compile(
        XATTR_WRITES
            .iter()
            .map(|(_, nr)| (*nr, Vec::new()))
            .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EOPNOTSUPP as u32),
    )
}

/// The main filter (EPERM). Its rules are built by kind, in this order (a later kind would
/// replace an earlier one's rules for the same syscall; none shares one today): refused
/// syscalls, ioctls, setuid modes, setuid creates, namespaces, sockets, netfilter sockopts.
fn main_program() -> Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED_SYSCALLS
        .iter()
        .map(|(_, nr)| (*nr, Vec::new()))
        .collect();
    rules.insert(libc::SYS_ioctl, ioctl_rules()?);
    for (nr, arg) in MODE_SYSCALLS {
        rules.insert(*nr, mode_rules(*arg)?);
    }
    for (nr, flags_arg, mode_arg) in CREATE_SYSCALLS {
        rules.insert(*nr, create_rules(*flags_arg, *mode_arg)?);
    }
    for (nr, mode_arg) in NODE_SYSCALLS {
        rules.entry(*nr).or_default().push(rule(vec![condition(
            *mode_arg,
            SeccompCmpOp::MaskedEq(u64::from(libc::S_IFMT)),
            u64::from(libc::S_IFIFO),
        )?])?);
    }
    for nr in NAMESPACE_SYSCALLS {
        let namespace_rules = NAMESPACE_FLAGS
            .iter()
            .map(|flag| rule(vec![masked(0, *flag as u64)?]))
            .collect::<Result<Vec<_>>>()?;
        rules.insert(*nr, namespace_rules);
    }
    rules.insert(libc::SYS_socket, socket_rules()?);
    for nr in [libc::SYS_setsockopt, libc::SYS_getsockopt] {
        rules.insert(nr, sockopt_rules()?);
    }
    compile(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
    )
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conditions).map_err(DeckError::from)
}

/// Argument `arg` (its low 32 bits) compared with `op` against `value`.
fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(DeckError::from)
}

/// Argument `arg` has every one of `bits` set.
fn masked(arg: u8, bits: u64) -> Result<SeccompCondition> {
    condition(arg, SeccompCmpOp::MaskedEq(bits), bits)
}

/// Argument `arg` is `value`.
fn equal(arg: u8, value: libc::c_int) -> Result<SeccompCondition> {
    condition(arg, SeccompCmpOp::Eq, value as u64)
}

fn ioctl_rules() -> Result<Vec<SeccompRule>> {
    DENIED_IOCTLS
        .iter()
        .map(|(_, request)| rule(vec![condition(1, SeccompCmpOp::Eq, *request)?]))
        .collect()
}

/// A chmod-family call whose mode (argument `arg`) sets the setuid or the setgid bit.
fn mode_rules(arg: u8) -> Result<Vec<SeccompRule>> {
    [libc::S_ISUID, libc::S_ISGID]
        .into_iter()
        .map(|bit| {
            let bit = u64::from(bit);
            rule(vec![condition(arg, SeccompCmpOp::MaskedEq(bit), bit)?])
        })
        .collect()
}

/// A create call whose mode sets the setuid or the setgid bit, when its flags (if it has
/// them) create a file: O_CREAT or O_TMPFILE.
fn create_rules(flags_arg: Option<u8>, mode_arg: u8) -> Result<Vec<SeccompRule>> {
    let mut create_rules = Vec::new();
    for bit in [libc::S_ISUID, libc::S_ISGID] {
        let bit = u64::from(bit);
        match flags_arg {
            Some(flags_arg) => {
                for flag in [libc::O_CREAT, libc::O_TMPFILE] {
                    let conditions = vec![masked(flags_arg, flag as u64)?, masked(mode_arg, bit)?];
                    create_rules.push(rule(conditions)?);
                }
            }
            None => create_rules.push(rule(vec![masked(mode_arg, bit)?])?),
        }
    }
    Ok(create_rules)
}

/// The refused socket domains (and protocols), then the refused types in any domain.
fn socket_rules() -> Result<Vec<SeccompRule>> {
    let mut socket_rules = DENIED_SOCKETS
        .iter()
        .map(|(_, domain, protocol)| {
            let mut conditions = vec![equal(0, *domain)?];
            if let Some(protocol) = protocol {
                conditions.push(equal(2, *protocol)?);
            }
            rule(conditions)
        })
        .collect::<Result<Vec<_>>>()?;
    for (_, kind) in DENIED_SOCKET_TYPES {
        let kind = condition(1, SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK), *kind as u64)?;
        socket_rules.push(rule(vec![kind])?);
    }
    Ok(socket_rules)
}

/// A netfilter option (by level and name range) for setsockopt or getsockopt.
fn sockopt_rules() -> Result<Vec<SeccompRule>> {
    NETFILTER_SOCKOPTS
        .iter()
        .map(|(level, names)| {
            rule(vec![
                equal(1, *level)?,
                condition(2, SeccompCmpOp::Ge, u64::from(*names.start()))?,
                condition(2, SeccompCmpOp::Le, u64::from(*names.end()))?,
            ])
        })
        .collect()
}

/// A program as the raw `struct sock_filter` array bwrap's `--add-seccomp-fd FD` reads.
pub fn program_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_to_whole_instructions() {
        let programs = programs().unwrap();
        assert_eq!(programs.len(), PROGRAM_COUNT);
        for program in &programs {
            let bytes = program_bytes(program);
            assert!(!bytes.is_empty());
            assert_eq!(bytes.len(), program.len() * 8);
        }
        assert!(denied().contains(&"TIOCSTI"));
        assert!(denied().contains(&"keyctl"));
    }

    /// Every instruction of every program, one per line (`code jt jf k` in hex), reviewed
    /// like code: a change to the rules (or to seccompiler's code generation) shows in the
    /// snapshot's diff. Syscall numbers are the architecture's, so x86_64 only.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_programs_are_unchanged() {
        let mut text = String::new();
        for (i, program) in programs().unwrap().iter().enumerate() {
            text.push_str(&format!("# program {i}: {} instructions\n", program.len()));
            for op in program {
                text.push_str(&format!(
                    "{:04x} {:02x} {:02x} {:08x}\n",
                    op.code, op.jt, op.jf, op.k
                ));
            }
        }
        insta::assert_snapshot!(text);
    }
}
