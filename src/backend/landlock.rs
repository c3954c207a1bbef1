//! Landlock scoping (kernel ABI 6+): a sandboxed process can neither connect to abstract unix
//! sockets created outside its domain (the host X server, some D-Bus buses: reachable
//! whenever the sandbox shares the host network namespace) nor signal processes outside it.

use landlock::{ABI, Access, Ruleset, RulesetAttr, RulesetCreated, Scope};

/// The Landlock ABI of the running kernel (0 when Landlock is off or absent).
pub fn abi_version() -> i32 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only queries the ABI.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

/// A ruleset with both scopes, ready for `restrict_self` in the child; None when the
/// kernel lacks scoping (ABI < 6).
pub fn scoped_ruleset() -> Option<RulesetCreated> {
    if abi_version() < 6 {
        return None;
    }
    Ruleset::default()
        .scope(Scope::from_all(ABI::V6))
        .ok()?
        .create()
        .ok()
}

/// Applies a prepared ruleset to the calling (child) process. Only syscalls: safe between
/// fork and exec.
pub fn restrict(ruleset: RulesetCreated) -> std::io::Result<()> {
    ruleset
        .restrict_self()
        .map(drop)
        .map_err(|e| std::io::Error::other(e.to_string()))
}
