//! Work on several threads whose results are taken in on this one in job order, as they
//! come: how a refresh reads files (on every core) while adding what each gave to the index
//! (which only this thread may touch, and in a fixed order, so that file ids do not depend
//! on which read finished first).
//!
//! This thread reads too, and takes in between its reads whatever is ready, so it seldom
//! sleeps: a channel with a thread waiting on it woke that thread once per file, a context
//! switch each, and a third thread on a machine of two cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The results so far, by job index.
struct Board<R> {
    done: Vec<Option<R>>,
    /// This thread sleeps until the next result in order is posted.
    waiting: bool,
}

/// Runs `work` on every job on `threads` threads (this one among them), and hands each
/// result to `take` on this thread, in job order.
pub(super) fn in_order<J: Sync, R: Send>(
    jobs: &[J],
    threads: usize,
    work: impl Fn(&J) -> R + Sync,
    mut take: impl FnMut(usize, R),
) {
    let n = jobs.len();
    let board = Mutex::new(Board {
        done: (0..n).map(|_| None).collect(),
        waiting: false,
    });
    let ready = Condvar::new();
    let next = AtomicUsize::new(0);
    let claim = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        (i < n).then_some(i)
    };
    let post = |i: usize, result: R| {
        let mut b = lock(&board);
        b.done[i] = Some(result);
        if b.waiting {
            ready.notify_one();
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(n) {
            scope.spawn(|| {
                while let Some(i) = claim() {
                    post(i, work(&jobs[i]));
                }
            });
        }
        let mut taken = 0;
        let mut batch = Vec::new();
        while taken < n {
            {
                let mut b = lock(&board);
                while let Some(result) = b.done.get_mut(taken + batch.len()).and_then(Option::take)
                {
                    batch.push(result);
                }
            }
            if !batch.is_empty() {
                for result in batch.drain(..) {
                    take(taken, result);
                    taken += 1;
                }
                continue;
            }
            match claim() {
                Some(i) => post(i, work(&jobs[i])),
                None => {
                    // Every job is claimed and the next in order is still being worked on.
                    let mut b = lock(&board);
                    while b.done[taken].is_none() {
                        b.waiting = true;
                        b = ready.wait(b).unwrap_or_else(PoisonError::into_inner);
                    }
                    b.waiting = false;
                }
            }
        }
    });
}

/// The board, also after a worker panicked holding it (the scope re-raises that panic).
fn lock<R>(board: &Mutex<Board<R>>) -> MutexGuard<'_, Board<R>> {
    board.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_taken_in_job_order_whatever_order_they_finish_in() {
        for threads in [1, 2, 4] {
            let jobs: Vec<u64> = (0..200).collect();
            let mut seen = Vec::new();
            in_order(
                &jobs,
                threads,
                |j| {
                    // Later jobs finish first now and then.
                    std::thread::sleep(std::time::Duration::from_micros((200 - j) % 7 * 50));
                    j * 2
                },
                |i, r| seen.push((i, r)),
            );
            let expected: Vec<(usize, u64)> = (0..200).map(|i| (i, i as u64 * 2)).collect();
            assert_eq!(seen, expected, "{threads} threads");
        }
        in_order(&[] as &[u8], 2, |_| (), |_, ()| panic!("no job"));
    }
}
