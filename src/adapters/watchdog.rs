//! Tells a stuck routing engine from a busy one. The engine counts its ticks
//! (every 100 ms, a due tick before any queued command, so a busy engine
//! still ticks); a count that has not moved for [`STUCK_AFTER`] means a
//! command does not end. Health then reports NOT_SERVING and `/livez` fails,
//! so the liveness probe restarts the pod.
//!
//! The watchdog runs on a thread of its own: a task would share the runtime
//! with the stuck engine, which may hold the only worker or the slot the
//! task was woken into.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// No tick for this long means the engine is stuck. Far above any real
/// command (a snapshot of a million records takes seconds), so a busy router
/// is never taken for a stuck one.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// How often the watchdog looks.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The engine's tick count, shared with the watchdog.
pub type Beats = Arc<AtomicU64>;

/// What the watchdog knows between two looks; time is passed in.
#[derive(Debug)]
pub struct Watch {
    beats: u64,
    moved_at: Instant,
    looked_at: Instant,
    stuck_after: Duration,
    look_every: Duration,
    alive: bool,
}

impl Watch {
    pub fn new(beats: u64, now: Instant, stuck_after: Duration, look_every: Duration) -> Watch {
        Watch { beats, moved_at: now, looked_at: now, stuck_after, look_every, alive: true }
    }

    /// Looks at the tick count at `now`; whether the engine is alive, when
    /// that changed.
    pub fn look(&mut self, beats: u64, now: Instant) -> Option<bool> {
        // A look long overdue means this process was paused (a frozen
        // container, a suspended VM): the engine was too, so its silence
        // counts only from now.
        let overdue = now.saturating_duration_since(self.looked_at) > self.look_every * 3;
        self.looked_at = now;
        let moved = beats != self.beats;
        if moved || overdue {
            self.beats = beats;
            self.moved_at = now;
        }
        if moved && !self.alive {
            self.alive = true;
            return Some(true);
        }
        if self.alive && now.saturating_duration_since(self.moved_at) >= self.stuck_after {
            self.alive = false;
            return Some(false);
        }
        None
    }
}

/// Watches `beats` into `alive` until the engine drops its `beats`.
pub fn spawn(beats: Beats, alive: watch::Sender<bool>) -> std::io::Result<()> {
    let thread = std::thread::Builder::new().name("engine-watchdog".into());
    thread.spawn(move || {
        let mut watch = Watch::new(beats.load(Ordering::Acquire), Instant::now(), STUCK_AFTER, LOOK_EVERY);
        while Arc::strong_count(&beats) > 1 {
            std::thread::sleep(LOOK_EVERY);
            match watch.look(beats.load(Ordering::Acquire), Instant::now()) {
                Some(false) => {
                    tracing::error!(
                        stuck_for_s = STUCK_AFTER.as_secs(),
                        "the routing engine has not ticked: a command does not end. Nothing is routed; health is \
                         NOT_SERVING and /livez fails, so the liveness probe restarts the router (the journal \
                         keeps every recorded decision). Report the log lines before this one"
                    );
                    alive.send_replace(false);
                }
                Some(true) => {
                    tracing::info!("the routing engine ticks again");
                    alive.send_replace(true);
                }
                None => {}
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_engine_is_stuck_after_stuck_after_without_a_tick_and_alive_at_the_next() {
        let start = Instant::now();
        let at = |s: u64| start + SECOND * s as u32;
        let mut watch = Watch::new(0, start, STUCK_AFTER, SECOND);
        // Ticking: alive throughout, however long.
        assert!((1..=100).all(|s| watch.look(s * 10, at(s)).is_none()));
        // Silent from second 100 on.
        assert!((101..130).all(|s| watch.look(1000, at(s)).is_none()));
        assert_eq!(watch.look(1000, at(130)), Some(false));
        assert_eq!(watch.look(1000, at(131)), None, "said once");
        assert_eq!(watch.look(1001, at(132)), Some(true));
    }

    #[test]
    fn a_paused_process_is_not_taken_for_a_stuck_engine() {
        let start = Instant::now();
        let at = |s: u64| start + SECOND * s as u32;
        let mut watch = Watch::new(0, start, STUCK_AFTER, SECOND);
        assert_eq!(watch.look(5, at(1)), None);
        // Frozen for a minute: the first look after it finds the count unmoved.
        assert_eq!(watch.look(5, at(61)), None);
        assert!((62..91).all(|s| watch.look(5, at(s)).is_none()));
        assert_eq!(watch.look(5, at(91)), Some(false), "silent for 30 s after the pause");
    }
}
