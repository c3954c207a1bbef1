//! The sandboxes' process trees, kept between metrics samples (issue 15). A sample reads
//! the `stat` of the processes it knows and of the pids handed out since the last sample
//! (the kernel's last pid, `/proc/loadavg`), never a listing of `/proc`: a process started
//! inside a sandbox has a pid after the last one seen, and its parent is in the tree. The
//! full walk of `/proc` (its listing, each process's `stat` read once) runs only when the
//! set of sandboxes (or a launcher) changed, when the pid counter wrapped or moved further
//! than probing is worth, and every [`WALK_EVERY`] as a safety net. The trees are then
//! what a walk would find: each process's parent is in its tree (one that moved out is
//! dropped with what is below it), and every process whose parent is in it is in it.
//!
//! The `stat` of every process in a tree stays open between samples and is read again in
//! place ([`StatReader::sample_kept`]); a pid probed is opened once, and its file kept if it
//! joins a tree, closed if not. A thread (which answers at `/proc/<tid>` too) is told from a
//! process by its `stat` alone.

use std::time::{Duration, Instant};

use crate::host::process::{Probed, ProcRef, Sample, StatReader};
use crate::sandbox::{SandboxId, SandboxRecord};

/// The slow safety net: a full walk of `/proc` at least this often.
pub const WALK_EVERY: Duration = Duration::from_secs(30);
/// More pids handed out than this since the last sample: a walk costs less than probing.
const MAX_PROBES: u32 = 4096;

/// One process of a tree, with its figures at the last sample.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub proc: ProcRef,
    pub ppid: u32,
    pub cpu_ticks: u64,
    pub rss_pages: u64,
}

impl Member {
    fn of(pid: u32, sample: &Sample) -> Member {
        Member {
            proc: sample.proc_ref(pid),
            ppid: sample.ppid,
            cpu_ticks: sample.cpu_ticks,
            rss_pages: sample.rss_pages,
        }
    }
}

/// A sandbox's launcher (first) and every process below it.
pub struct Tree {
    pub id: SandboxId,
    pub members: Vec<Member>,
}

impl Tree {
    fn has(&self, pid: u32) -> bool {
        self.members.iter().any(|m| m.proc.pid == pid)
    }
}

#[derive(Default)]
pub struct Trees {
    reader: StatReader,
    trees: Vec<Tree>,
    /// The kernel's last pid when the trees were last brought up to date.
    last_pid: Option<u32>,
    walked: Option<Instant>,
    walks: u64,
    /// Pids handed out since the last sample that exist, with their stat still open (the
    /// vec kept for its room).
    candidates: Vec<(u32, Sample, Probed)>,
    /// The walk's reading of every process, (parent, pid, sample) sorted by parent (kept
    /// for its room).
    table: Vec<(u32, u32, Sample)>,
}

impl Trees {
    /// The trees of the records whose launcher runs, in the records' order.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// How many full walks of `/proc` were taken (for tests and benchmarks).
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Brings the trees of `records` up to date, with each process's figures now.
    pub fn refresh(&mut self, records: &[SandboxRecord], now: Instant) {
        let same = self.launchers_unchanged(records);
        let due = self
            .walked
            .is_none_or(|at| now.duration_since(at) >= WALK_EVERY);
        if !same || due || !self.follow() {
            self.walk(records, now);
        }
        // The `stat` files of processes that left the trees.
        self.reader.close_unread();
    }

    /// How many `stat` files are kept open between samples (for tests).
    pub fn kept_files(&self) -> usize {
        self.reader.kept()
    }

    /// How many `/proc` paths were opened so far (for tests).
    pub fn opened(&self) -> u64 {
        self.reader.opened()
    }

    /// The kernel's last pid at the last refresh (for tests).
    pub fn last_pid(&self) -> Option<u32> {
        self.last_pid
    }

    /// `record`'s launcher and its figures, when that very process (same start) still runs.
    fn running_launcher(&mut self, record: &SandboxRecord) -> Option<(ProcRef, Sample)> {
        let launcher = record.launcher?;
        let sample = self.reader.sample_kept(launcher.pid)?;
        (sample.start_time == launcher.start_time && sample.is_running())
            .then_some((launcher, sample))
    }

    /// Whether the running launchers are those of the trees, in order; their figures are
    /// taken on the way.
    fn launchers_unchanged(&mut self, records: &[SandboxRecord]) -> bool {
        let mut same = true;
        let mut at = 0;
        for record in records {
            let Some((launcher, sample)) = self.running_launcher(record) else {
                continue;
            };
            match self.trees.get_mut(at) {
                Some(tree) if tree.id == record.id && tree.members[0].proc == launcher => {
                    tree.members[0] = Member::of(launcher.pid, &sample);
                }
                _ => same = false,
            }
            at += 1;
        }
        same && at == self.trees.len()
    }

    /// Follows the trees from the last sample; false when only a walk can tell (no pid
    /// counter, or it wrapped or moved too far).
    fn follow(&mut self) -> bool {
        let (Some(before), Some(now)) = (self.last_pid, self.reader.last_pid()) else {
            return false;
        };
        if now < before || now - before > MAX_PROBES {
            return false;
        }
        for tree in &mut self.trees {
            refresh_members(&mut self.reader, tree);
        }
        self.candidates.clear();
        for pid in before.saturating_add(1)..=now {
            if self.trees.iter().any(|t| t.has(pid)) {
                continue;
            }
            // A thread answers at /proc/<tid> too, with its process's parent: never a member.
            if let Some((sample, file)) = self.reader.probe(pid)
                && !sample.thread
            {
                self.candidates.push((pid, sample, file));
            }
        }
        self.adopt_candidates();
        self.last_pid = Some(now);
        true
    }

    /// Puts each new process whose parent is in a tree into it, until none is left to place
    /// (a child may be listed before its parent once pids wrap).
    fn adopt_candidates(&mut self) {
        loop {
            let mut placed = false;
            let mut i = 0;
            while i < self.candidates.len() {
                let (pid, sample, _) = &self.candidates[i];
                let (pid, ppid) = (*pid, sample.ppid);
                match self.trees.iter_mut().find(|t| t.has(ppid)) {
                    Some(tree) => {
                        let (_, sample, file) = self.candidates.swap_remove(i);
                        tree.members.push(Member::of(pid, &sample));
                        // Its `stat` kept open from now on, like every member's: the file
                        // the probe opened, no second open.
                        self.reader.keep(pid, file);
                        placed = true;
                    }
                    None => i += 1,
                }
            }
            if !placed {
                return;
            }
        }
    }

    /// The whole walk: `/proc` listed and every tree found anew. Each process is read once:
    /// a member's kept file in place, any other pid opened and closed.
    fn walk(&mut self, records: &[SandboxRecord], now: Instant) {
        // Read first: a process started during the walk is probed next time.
        self.last_pid = self.reader.last_pid();
        self.walked = Some(now);
        self.walks += 1;
        let mut table = std::mem::take(&mut self.table);
        table.clear();
        let known: std::collections::HashSet<u32> = self
            .trees
            .iter()
            .flat_map(|t| t.members.iter().map(|m| m.proc.pid))
            .collect();
        for pid in crate::host::process::pids() {
            let sample = if known.contains(&pid) {
                self.reader.sample_kept(pid)
            } else {
                self.reader.sample(pid)
            };
            if let Some(sample) = sample {
                table.push((sample.ppid, pid, sample));
            }
        }
        table.sort_unstable_by_key(|(ppid, pid, _)| (*ppid, *pid));
        let mut trees = Vec::with_capacity(self.trees.len().max(1));
        for record in records {
            let Some((launcher, sample)) = self.running_launcher(record) else {
                continue;
            };
            let mut members = vec![Member::of(launcher.pid, &sample)];
            // Breadth first over the children, by parent; a pid is taken once (a torn read
            // of `/proc` could show a cycle).
            let mut next = 0;
            while next < members.len() {
                let parent = members[next].proc.pid;
                next += 1;
                let from = table.partition_point(|(ppid, _, _)| *ppid < parent);
                for (_, pid, sample) in table[from..].iter().take_while(|(p, _, _)| *p == parent) {
                    if *pid != launcher.pid && !members.iter().any(|m| m.proc.pid == *pid) {
                        members.push(Member::of(*pid, sample));
                    }
                }
            }
            // Every member's `stat` kept open from now on (already so for those known).
            for member in &members[1..] {
                if !known.contains(&member.proc.pid) {
                    // Its figures are the walk's; one that ended since is dropped next time.
                    let _ = self.reader.sample_kept(member.proc.pid);
                }
            }
            trees.push(Tree {
                id: record.id.clone(),
                members,
            });
        }
        self.table = table;
        self.trees = trees;
    }
}

/// Reads each process of `tree` again: one that ended is dropped, and so is one whose parent
/// is no longer in the tree (it moved out), with what is below it.
fn refresh_members(reader: &mut StatReader, tree: &mut Tree) {
    let launcher = tree.members[0].proc.pid;
    let mut i = 1;
    while i < tree.members.len() {
        let member = tree.members[i];
        match reader.sample_kept(member.proc.pid) {
            Some(sample) if sample.start_time == member.proc.start_time => {
                tree.members[i] = Member::of(member.proc.pid, &sample);
                i += 1;
            }
            _ => {
                tree.members.swap_remove(i);
            }
        }
    }
    loop {
        let before = tree.members.len();
        let mut i = 1;
        while i < tree.members.len() {
            let ppid = tree.members[i].ppid;
            if ppid == launcher || tree.members.iter().any(|m| m.proc.pid == ppid) {
                i += 1;
            } else {
                tree.members.swap_remove(i);
            }
        }
        if tree.members.len() == before {
            return;
        }
    }
}
