//! When the clock next matters to the screen (issue 15): the main loop sleeps until then
//! instead of ticking every second. An uptime under a minute changes each second, one
//! under a day each minute, an older one each hour; a flash message ends at its time.

use chrono::{DateTime, TimeDelta, Utc};

use super::state::State;

/// The first moment after `state.now` at which a figure drawn from the clock changes: the
/// uptime of a running row in sight (issue 15: a hundred sandboxes each change their uptime
/// once a minute, most of them off screen) or a flash's end. None: nothing on screen depends
/// on the clock. A moment already past (a clock that went stale while nothing woke the
/// loop) means "now".
pub fn next_change(state: &State) -> Option<DateTime<Utc>> {
    let table = state.table();
    let uptimes = table.visible().iter().filter_map(|r| {
        let started = r.started_at.filter(|_| r.is_running())?;
        Some(started + uptime_changes_after(state.now - started))
    });
    let flash = state.flash.as_ref().map(|f| f.until);
    uptimes.chain(flash).min()
}

/// The elapsed time at which `format::human_duration(elapsed)` next reads differently.
pub fn uptime_changes_after(elapsed: TimeDelta) -> TimeDelta {
    // `human_duration` truncates to whole seconds and shows a negative span as `0s`.
    let s = elapsed.num_seconds().max(0);
    let step = match s {
        0..60 => 1,
        60..86_400 => 60,
        _ => 3_600,
    };
    TimeDelta::seconds((s / step + 1) * step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::human_duration;

    #[test]
    fn the_next_change_is_when_the_text_reads_differently() {
        for elapsed_ms in [
            -5_500, -1, 0, 999, 1_000, 59_999, 60_000, 3_599_999, 86_399_000, 90_000_000,
        ] {
            let elapsed = TimeDelta::milliseconds(elapsed_ms);
            let next = uptime_changes_after(elapsed);
            assert!(next > elapsed, "{elapsed_ms} ms: {next}");
            let before = human_duration(next - TimeDelta::milliseconds(1));
            assert_eq!(
                human_duration(elapsed),
                before,
                "{elapsed_ms} ms: changed early"
            );
            assert_ne!(
                human_duration(next),
                before,
                "{elapsed_ms} ms: no change at {next}"
            );
        }
    }
}
