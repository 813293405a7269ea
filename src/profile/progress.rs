//! A one-line progress bar on stderr: items done / total, the current label, elapsed time
//! and an ETA from the work done so far (work is weighted, e.g. by tokens², because a 4k
//! sample costs far more than a 1k one).

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    start: Instant,
    total_work: f64,
    done_work: f64,
    total: usize,
    done: usize,
    enabled: bool,
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

impl Progress {
    /// `total` items whose weights sum to `total_work`; `enabled = false` prints nothing.
    pub fn new(total: usize, total_work: f64, enabled: bool) -> Progress {
        Progress {
            start: Instant::now(),
            total_work: total_work.max(f64::MIN_POSITIVE),
            done_work: 0.0,
            total,
            done: 0,
            enabled,
        }
    }

    /// Shows what is starting now.
    pub fn start_item(&self, label: &str) {
        if self.enabled {
            let line = format!(
                "[{}/{}] {label} | elapsed {}{}",
                self.done + 1,
                self.total,
                fmt_duration(self.start.elapsed()),
                self.eta()
            );
            let mut err = std::io::stderr().lock();
            // A failed write to stderr is not worth aborting a long run for.
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }

    /// Marks an item of weight `work` done and prints `message` on its own line.
    pub fn finish_item(&mut self, work: f64, message: &str) {
        self.done += 1;
        self.done_work += work;
        if self.enabled {
            let _ = writeln!(std::io::stderr(), "\r\x1b[2K{message}");
        }
    }

    fn eta(&self) -> String {
        if self.done_work <= 0.0 {
            return String::new();
        }
        let per = self.start.elapsed().as_secs_f64() / self.done_work;
        let left = (self.total_work - self.done_work).max(0.0) * per;
        format!(" | ETA {}", fmt_duration(Duration::from_secs_f64(left)))
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
