//! A one-line progress bar on stderr: items done / total, the current label, elapsed time
//! and an ETA from the work done so far (work is weighted, e.g. by tokens², because a 4k
//! sample costs far more than a 1k one).
//!
//! Items can be of several kinds whose seconds per unit of work differ (`moa eval`'s
//! retrieval batches and perplexity windows: round 17's new user saw "ETA 4m05s" while the
//! perplexity items, counted like a pass-key batch, took hours). Each kind's rate is measured
//! from its own finished items; a kind with none finished yet borrows the rate of those
//! that have ([`eta_secs`]).

#![warn(missing_docs)]

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work and time of one kind of item, for [`eta_secs`]. Work is in the caller's unit (the
/// same unit for every kind, e.g. multiply-adds), time in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KindTally {
    /// Work of this kind's finished items.
    pub done_work: f64,
    /// Seconds those items took.
    pub done_secs: f64,
    /// Work of this kind's items not finished yet, the one running included.
    pub left_work: f64,
}

/// The item running now: its kind (an index into the tallies), its work, and the seconds
/// it has run so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Running {
    /// Index of the item's kind into the tallies.
    pub kind: usize,
    /// The item's work, in the tallies' unit.
    pub work: f64,
    /// Seconds the item has run so far.
    pub secs: f64,
}

/// Seconds left, estimated from the finished items, or `None` before any item has
/// finished (no rate is known) or when there is no work left.
///
/// Each kind's rate (seconds per unit of work) is its finished items' time over their
/// work; a kind with none finished takes the pooled rate of all finished items (so the
/// work unit must make kinds comparable: then the first finished item of a kind replaces
/// that guess with a measured rate). The running item bounds its kind's rate from below
/// by `secs / work` (it is not done yet), so an item slower than its kind's estimate
/// raises the ETA while it runs instead of leaving it stale. The result is
/// `Σ_kind left_work · rate − running.secs`, never below 0.
pub fn eta_secs(kinds: &[KindTally], running: Option<Running>) -> Option<f64> {
    let (work, secs) = kinds
        .iter()
        .filter(|k| k.done_work > 0.0)
        .fold((0.0, 0.0), |(w, s), k| (w + k.done_work, s + k.done_secs));
    if work <= 0.0 || kinds.iter().all(|k| k.left_work <= 0.0) {
        return None;
    }
    let pooled = secs / work;
    let mut left = 0.0;
    for (i, k) in kinds.iter().enumerate() {
        let mut rate = if k.done_work > 0.0 {
            k.done_secs / k.done_work
        } else {
            pooled
        };
        if let Some(r) = running.filter(|r| r.kind == i && r.work > 0.0) {
            rate = rate.max(r.secs / r.work);
        }
        left += k.left_work.max(0.0) * rate;
    }
    Some((left - running.map_or(0.0, |r| r.secs)).max(0.0))
}

/// `1m05s` / `42s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The progress bar: items done of total, weighted work per kind, and the running item;
/// drawn on stderr when enabled (redrawn in place on a terminal, plain lines otherwise).
pub struct Progress {
    state: Arc<Mutex<State>>,
    enabled: bool,
    /// Whether stderr is a terminal (redrawn lines) or not (plain lines), see [`draw`].
    tty: bool,
    /// The thread of [`Progress::redraw_every`] and its stop flag.
    ticker: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
}

struct State {
    start: Instant,
    /// When the last item finished (or the bar was made): an item's time runs from here,
    /// so work between items (an engine built per plan) is charged to the next item.
    last_finish: Instant,
    kinds: Vec<KindTally>,
    total: usize,
    done: usize,
    /// The running item's kind, work and label.
    current: Option<(usize, f64, String)>,
}

impl State {
    fn line(&self) -> String {
        let label = self.current.as_ref().map_or("", |(_, _, l)| l.as_str());
        format!(
            "[{}/{}] {label} | elapsed {}{}",
            self.done + 1,
            self.total,
            fmt_duration(self.start.elapsed()),
            self.eta()
        )
    }

    fn eta(&self) -> String {
        let running = self.current.as_ref().map(|&(kind, work, _)| Running {
            kind,
            work,
            secs: self.last_finish.elapsed().as_secs_f64(),
        });
        match eta_secs(&self.kinds, running) {
            Some(left) => format!(" | ETA {}", fmt_duration(Duration::from_secs_f64(left))),
            None => String::new(),
        }
    }
}

/// Shows `line` as the running item's: on a terminal it replaces the line under the
/// cursor (`\r`, erase line) and stays open for the next redraw; elsewhere (a log file, a
/// pipe) it is a line of its own, without the terminal codes, which logs showed as
/// `^M^[[2K` with each item's start and result run together on one line.
fn draw(line: &str, tty: bool) {
    let mut err = std::io::stderr().lock();
    // A failed write to stderr is not worth aborting a long run for.
    let _ = if tty {
        write!(err, "\r\x1b[2K{line}")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}

impl Progress {
    /// `total` items whose weights sum to `total_work`; `enabled = false` prints nothing.
    pub fn new(total: usize, total_work: f64, enabled: bool) -> Progress {
        Progress::with_kinds(total, &[total_work], enabled)
    }

    /// `total` items of `kind_work.len()` kinds, kind `k`'s weights summing to
    /// `kind_work[k]` (one work unit for all kinds); items are started with
    /// [`Progress::start_item_of`].
    pub fn with_kinds(total: usize, kind_work: &[f64], enabled: bool) -> Progress {
        let now = Instant::now();
        let kinds = kind_work
            .iter()
            .map(|&w| KindTally {
                left_work: w.max(0.0),
                ..KindTally::default()
            })
            .collect();
        Progress {
            state: Arc::new(Mutex::new(State {
                start: now,
                last_finish: now,
                kinds,
                total,
                done: 0,
                current: None,
            })),
            enabled,
            tty: std::io::stderr().is_terminal(),
            ticker: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while drawing leaves nothing half-updated that matters here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows what is starting now (an item of kind 0 whose weight is given when it
    /// finishes).
    pub fn start_item(&self, label: &str) {
        self.start_item_of(0, 0.0, label);
    }

    /// Shows what is starting now: an item of `kind` and weight `work` (the running
    /// item's time so far then bounds its kind's rate, see [`eta_secs`]).
    pub fn start_item_of(&self, kind: usize, work: f64, label: &str) {
        let mut s = self.state();
        s.current = Some((kind, work, label.to_string()));
        if self.enabled {
            draw(&s.line(), self.tty);
        }
    }

    /// Marks the running item, of weight `work`, done and prints `message` on its own line.
    pub fn finish_item(&mut self, work: f64, message: &str) {
        let mut s = self.state();
        let kind = s.current.take().map_or(0, |(k, _, _)| k);
        let secs = s.last_finish.elapsed().as_secs_f64();
        s.last_finish = Instant::now();
        s.done += 1;
        if let Some(k) = s.kinds.get_mut(kind) {
            k.done_work += work;
            k.done_secs += secs;
            k.left_work = (k.left_work - work).max(0.0);
        }
        if self.enabled {
            let erase = if self.tty { "\r\x1b[2K" } else { "" };
            let _ = writeln!(std::io::stderr(), "{erase}{message}");
        }
    }

    /// Marks the running item, of weight `work`, done without computing it (reused from
    /// an earlier run: calibration answers, stored tiles, cached scores) and prints
    /// `message`: its work leaves the total, but neither its work nor its time goes into
    /// the rate, so a resumed run's ETA is not the reused items' near-zero time spread
    /// over what is left ("ETA 0.1s" with 12 of 18 answers to compute, round 18).
    pub fn skip_item(&mut self, work: f64, message: &str) {
        let mut s = self.state();
        let kind = s.current.take().map_or(0, |(k, _, _)| k);
        s.last_finish = Instant::now();
        s.done += 1;
        if let Some(k) = s.kinds.get_mut(kind) {
            k.left_work = (k.left_work - work).max(0.0);
        }
        if self.enabled {
            let erase = if self.tty { "\r\x1b[2K" } else { "" };
            let _ = writeln!(std::io::stderr(), "{erase}{message}");
        }
    }

    /// On a terminal, redraws the running item's line (elapsed time and ETA) every
    /// `period`, so a long item's ETA moves while it runs; elsewhere (a log file) nothing
    /// changes: one line per item start, as without it.
    pub fn redraw_every(&mut self, period: Duration) {
        if !self.enabled || self.ticker.is_some() || !self.tty {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (state, flag) = (Arc::clone(&self.state), Arc::clone(&stop));
        let handle = std::thread::spawn(move || loop {
            std::thread::park_timeout(period);
            if flag.load(Ordering::Relaxed) {
                return;
            }
            let s = state.lock().unwrap_or_else(|e| e.into_inner());
            if s.current.is_some() {
                draw(&s.line(), true);
            }
        });
        self.ticker = Some((handle, stop));
    }

    /// Time since the bar was made.
    pub fn elapsed(&self) -> Duration {
        self.state().start.elapsed()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((handle, stop)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eta_secs` equal to `want` up to rounding.
    fn eta_is(kinds: &[KindTally], running: Option<Running>, want: Option<f64>) {
        let got = eta_secs(kinds, running);
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{g} vs {w}"),
            _ => assert_eq!(got, want),
        }
    }

    fn kind(done_work: f64, done_secs: f64, left_work: f64) -> KindTally {
        KindTally {
            done_work,
            done_secs,
            left_work,
        }
    }

    #[test]
    fn no_eta_before_a_finished_item_or_without_work_left() {
        eta_is(&[kind(0.0, 0.0, 10.0)], None, None);
        let running = Running {
            kind: 0,
            work: 5.0,
            secs: 3.0,
        };
        eta_is(&[kind(0.0, 0.0, 10.0)], Some(running), None);
        eta_is(&[kind(10.0, 4.0, 0.0)], None, None);
    }

    #[test]
    fn one_kind_is_the_plain_rate() {
        // 4 units in 8 s: 2 s a unit, 6 units left.
        eta_is(&[kind(4.0, 8.0, 6.0)], None, Some(12.0));
    }

    #[test]
    fn an_unmeasured_kind_borrows_the_pooled_rate_then_its_own() {
        // Retrieval: 100 units in 10 s (0.1 s/unit), 100 left; perplexity (not run yet):
        // 1000 units at the borrowed rate.
        let before = [kind(100.0, 10.0, 100.0), kind(0.0, 0.0, 1000.0)];
        eta_is(&before, None, Some(10.0 + 100.0));
        // Its first item measured 0.4 s/unit: the rest of it is counted at that rate.
        let after = [kind(100.0, 10.0, 100.0), kind(500.0, 200.0, 500.0)];
        eta_is(&after, None, Some(10.0 + 200.0));
    }

    #[test]
    fn a_slow_running_item_raises_its_kinds_rate() {
        let kinds = [kind(100.0, 10.0, 100.0), kind(0.0, 0.0, 1000.0)];
        // 50 s into a 500-unit perplexity item: faster than the borrowed 0.1 s/unit would
        // allow, so nothing changes but the 50 s spent.
        let early = Running {
            kind: 1,
            work: 500.0,
            secs: 20.0,
        };
        eta_is(&kinds, Some(early), Some(110.0 - 20.0));
        // 150 s in: at least 0.3 s/unit, so 1000 units take ≥ 300 s, 150 of them spent.
        let late = Running {
            secs: 150.0,
            ..early
        };
        eta_is(&kinds, Some(late), Some(10.0 + 300.0 - 150.0));
        // The ETA never goes below 0, and an item of unknown work bounds nothing.
        let unknown = Running {
            kind: 0,
            work: 0.0,
            secs: 500.0,
        };
        eta_is(&kinds, Some(unknown), Some(0.0));
    }

    #[test]
    fn progress_counts_work_per_kind() {
        let mut p = Progress::with_kinds(3, &[10.0, 90.0], false);
        p.start_item_of(0, 10.0, "a");
        p.finish_item(10.0, "a done");
        p.start_item_of(1, 45.0, "b");
        p.finish_item(45.0, "b done");
        let s = p.state();
        assert_eq!(s.done, 2);
        assert_eq!((s.kinds[0].done_work, s.kinds[0].left_work), (10.0, 0.0));
        assert_eq!((s.kinds[1].done_work, s.kinds[1].left_work), (45.0, 45.0));
        assert!(s.current.is_none());
    }

    /// A reused item leaves the work to do but not the rate: a resumed run shows no ETA
    /// until an item is computed, then the computed items' rate alone.
    #[test]
    fn a_reused_item_leaves_the_total_but_not_the_rate() {
        let mut p = Progress::new(3, 30.0, false);
        p.start_item("reused");
        p.skip_item(10.0, "reused");
        {
            let s = p.state();
            assert_eq!(s.done, 1);
            assert_eq!((s.kinds[0].done_work, s.kinds[0].left_work), (0.0, 20.0));
            assert_eq!(eta_secs(&s.kinds, None), None);
        }
        p.start_item("computed");
        p.finish_item(10.0, "computed");
        let s = p.state();
        assert_eq!((s.kinds[0].done_work, s.kinds[0].left_work), (10.0, 10.0));
        let rate = s.kinds[0].done_secs / 10.0;
        eta_is(&s.kinds, None, Some(10.0 * rate));
    }
}
