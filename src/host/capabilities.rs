//! Emptying the calling thread's capability sets, and checking with the kernel that they are
//! empty: what a process joining a sandbox does before it runs anything (joining a user
//! namespace grants every capability in it), like bwrap's `--cap-drop ALL` does for the
//! sandbox itself.
//!
//! [`drop_all`] runs between fork and exec, so it only makes syscalls (through rustix, which
//! neither allocates nor locks); what needs a file read, the kernel's last capability number,
//! is read before the fork with [`last_cap`].

use std::io;

use rustix::thread::{self as caps, CapabilitySet, CapabilitySets};

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`, 40 on
/// Linux 5.9 and later). Read before forking. A kernel without that file (before 3.2) is
/// probed instead: the bounding set answers EINVAL past its last capability.
pub fn last_cap() -> io::Result<u32> {
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        && let Ok(last) = text.trim().parse::<u32>()
    {
        return Ok(last.min(63));
    }
    let mut last = None;
    for cap in 0..64 {
        match caps::capability_is_in_bounding_set(one(cap)) {
            Ok(_) => last = Some(cap),
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    last.ok_or_else(|| io::Error::other("the kernel knows no capability"))
}

/// The capabilities the kernel says the calling thread holds, one bit per capability number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub bounding: u64,
    pub ambient: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl Held {
    /// Asks the kernel (`PR_CAPBSET_READ` and `PR_CAP_AMBIENT_IS_SET` for every capability up
    /// to `last_cap`, `capget` for the rest). Only syscalls.
    pub fn now(last_cap: u32) -> io::Result<Held> {
        let sets = caps::capabilities(None)?;
        let mut held = Held {
            effective: sets.effective.bits(),
            permitted: sets.permitted.bits(),
            inheritable: sets.inheritable.bits(),
            ..Held::default()
        };
        for cap in 0..=last_cap.min(63) {
            if caps::capability_is_in_bounding_set(one(cap))? {
                held.bounding |= 1 << cap;
            }
            if caps::capability_is_in_ambient_set(one(cap))? {
                held.ambient |= 1 << cap;
            }
        }
        Ok(held)
    }

    /// The first set that still holds something, with what it holds; None when all are empty.
    pub fn leftover(&self) -> Option<(&'static str, u64)> {
        [
            ("bounding", self.bounding),
            ("ambient", self.ambient),
            ("effective", self.effective),
            ("permitted", self.permitted),
            ("inheritable", self.inheritable),
        ]
        .into_iter()
        .find(|(_, bits)| *bits != 0)
    }
}

/// Empties the bounding, ambient, inheritable, permitted and effective sets of the calling
/// thread, then reads them all back and fails unless every one is empty: a join never runs
/// its command with a capability left, whatever the kernel refused on the way.
///
/// Only syscalls: safe between fork and exec. The error reaches the caller across the exec
/// pipe as an errno only: the one the kernel gave when a drop was refused, else EPERM.
pub fn drop_all(last_cap: u32) -> io::Result<()> {
    let mut refused = None;
    // The bounding set first: dropping from it needs CAP_SETPCAP in the effective set.
    for cap in 0..=last_cap.min(63) {
        if let Err(e) = caps::remove_capability_from_bounding_set(one(cap)) {
            refused.get_or_insert(e);
        }
    }
    if let Err(e) = caps::clear_ambient_capability_set() {
        refused.get_or_insert(e);
    }
    let empty = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    if let Err(e) = caps::set_capabilities(None, empty) {
        refused.get_or_insert(e);
    }
    let held = Held::now(last_cap)?;
    match held.leftover() {
        None => Ok(()),
        Some(_) => Err(refused.map_or_else(
            || io::Error::from_raw_os_error(libc::EPERM),
            io::Error::from,
        )),
    }
}

fn one(cap: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1 << cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_names_its_last_capability() {
        // CAP_CHECKPOINT_RESTORE (40) since Linux 5.9; CAP_AUDIT_READ (37) since 3.16.
        let last = last_cap().unwrap();
        assert!((37..64).contains(&last), "{last}");
    }

    #[test]
    fn any_set_left_holding_something_is_a_leftover() {
        assert_eq!(Held::default().leftover(), None);
        for (name, held) in [
            (
                "bounding",
                Held {
                    bounding: 1 << 21,
                    ..Held::default()
                },
            ),
            (
                "ambient",
                Held {
                    ambient: 1,
                    ..Held::default()
                },
            ),
            (
                "effective",
                Held {
                    effective: 1 << 40,
                    ..Held::default()
                },
            ),
            (
                "permitted",
                Held {
                    permitted: 1 << 12,
                    ..Held::default()
                },
            ),
            (
                "inheritable",
                Held {
                    inheritable: 1 << 63,
                    ..Held::default()
                },
            ),
        ] {
            assert_eq!(held.leftover().map(|(set, _)| set), Some(name));
        }
        let two = Held {
            bounding: 1,
            permitted: 2,
            ..Held::default()
        };
        assert_eq!(two.leftover(), Some(("bounding", 1)));
    }

    #[test]
    fn a_thread_that_dropped_everything_holds_nothing_and_one_that_did_not_is_caught() {
        let last = last_cap().unwrap();
        // Every thread starts with a full bounding set (root or not): the check sees it.
        assert!(Held::now(last).unwrap().leftover().is_some());
        // Capabilities are per thread: drop them in one of our own, which then ends.
        let after = std::thread::spawn(move || drop_all(last).map(|()| Held::now(last).unwrap()))
            .join()
            .unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(after.unwrap(), Held::default());
        } else {
            // Without CAP_SETPCAP the bounding set cannot shrink: refused, never let through.
            assert!(after.is_err());
        }
    }
}
