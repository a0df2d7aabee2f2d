//! The counting allocator and the memory report of the benchmark.

use super::world::World;
use super::{STEP_MS, WAITING};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use ticket_router::allocator::Mimalloc;
use ticket_router::core::{AgentStatus, Command};

/// mimalloc — the allocator the router binary runs with — counting bytes
/// and blocks allocated minus freed while `COUNTING` is on (only during the
/// memory report, so the timed runs pay no atomic per allocation). Differences between two readings taken
/// while counting are exact; the readings themselves mean nothing.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn count(bytes: usize, blocks: usize, add: bool) {
    if COUNTING.load(Relaxed) {
        if add {
            LIVE_BYTES.fetch_add(bytes, Relaxed);
            LIVE_BLOCKS.fetch_add(blocks, Relaxed);
        } else {
            LIVE_BYTES.fetch_sub(bytes, Relaxed);
            LIVE_BLOCKS.fetch_sub(blocks, Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Mimalloc.alloc(layout) };
        if !p.is_null() {
            count(layout.size(), 1, true);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Mimalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size(), 1, true);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { Mimalloc.dealloc(p, layout) };
        count(layout.size(), 1, false);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { Mimalloc.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size, 0, true);
            count(layout.size(), 0, false);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (usize, usize) {
    (LIVE_BYTES.load(Relaxed), LIVE_BLOCKS.load(Relaxed))
}

/// Heap growth per inquiry between two points, and its subject text.
struct Growth {
    bytes: f64,
    blocks: f64,
    subject: f64,
}

impl Growth {
    fn since(start: (usize, usize), subject_bytes: usize, inquiries: i64) -> Growth {
        let ((b0, n0), (b1, n1), n) = (start, live(), inquiries as f64);
        let per = |a: usize, b: usize| a.wrapping_sub(b) as isize as f64 / n;
        Growth { bytes: per(b1, b0), blocks: per(n1, n0), subject: subject_bytes as f64 / n }
    }

    fn line(&self, what: &str) -> f64 {
        self.line_for("waiting", what)
    }

    fn line_for(&self, kind: &str, what: &str) -> f64 {
        let net = self.bytes - self.subject;
        println!(
            "memory: {net:.0} bytes per {kind} inquiry ({:.0} with the subject text; {:.1} allocations) {what}",
            self.bytes, self.blocks
        );
        net
    }
}

/// 100,000 arrivals, each of which must queue.
fn queue_arrivals(w: &mut World) {
    let w0 = w.waiting;
    for _ in 0..WAITING {
        w.now += STEP_MS;
        w.arrive();
    }
    assert_eq!(w.waiting - w0, WAITING, "every arrival must queue");
}

/// 100,000 inquiries that each arrive, are offered, accepted and completed
/// with nothing waiting: what a finished one costs while it is kept.
fn finish_arrivals(w: &mut World) {
    for _ in 0..WAITING {
        w.now += STEP_MS;
        w.arrive();
        while w.active_total > 0 {
            w.complete_one();
        }
    }
    assert_eq!(w.waiting, 0, "every arrival must be offered at once");
}

/// Heap bytes a waiting inquiry costs the router, measured as the growth of
/// live heap bytes over 100,000 arrivals that all queue, less the bytes of
/// their `subject` (the only free text an inquiry carries). Everything else
/// is counted: the record, the inquiry's ids, the timeline, the id index and
/// the queue indexes, and the unused capacity of tables that grew meanwhile.
/// Then the same for a finished inquiry (no target: a sizing figure).
pub(crate) fn report() {
    COUNTING.store(true, Relaxed);
    // 10,000 agents on break: nothing is offered, so everything queues.
    let mut idle = World::new(AgentStatus::Break, false);
    let (start, subject0) = (live(), idle.subject_bytes);
    queue_arrivals(&mut idle);
    let fresh = Growth::since(start, idle.subject_bytes - subject0, WAITING);
    // Ten minutes on, every one of them has waited past `overflow_after`.
    idle.now += 600_000;
    idle.apply(Command::Tick, true);
    let overflowed = Growth::since(start, idle.subject_bytes - subject0, WAITING);
    drop(idle);
    // Every slot of every agent busy; what queued while filling them stays.
    let mut busy = World::new(AgentStatus::Available, false);
    while busy.active_total < busy.capacity && busy.next_inquiry < 1_000_000 {
        busy.now += STEP_MS;
        busy.arrive();
    }
    let (w0, slots) = (busy.waiting, format!("{}/{}", busy.active_total, busy.capacity));
    let (start, subject0) = (live(), busy.subject_bytes);
    queue_arrivals(&mut busy);
    let full = Growth::since(start, busy.subject_bytes - subject0, WAITING);
    drop(busy);
    // Finished inquiries stay in memory for `agents.retain_finished` (24 h by
    // default) with their timelines: the figure to size a promotion day by.
    let mut done = World::new(AgentStatus::Available, false);
    let (start, subject0) = (live(), done.subject_bytes);
    finish_arrivals(&mut done);
    let finished = Growth::since(start, done.subject_bytes - subject0, WAITING);
    drop(done);
    COUNTING.store(false, Relaxed);
    let worst = [
        fresh.line("0 -> 100,000 waiting, 10,000 agents on break"),
        overflowed.line("the same once all have waited past overflow_after"),
        full.line(&format!("{w0} -> {} waiting, agents full ({slots} slots busy)", w0 + WAITING)),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    println!(
        "memory: {worst:.0} bytes per waiting inquiry (the largest above; excluding {:.1} bytes of subject text; \
         requested heap bytes, without the allocator's own overhead; target <= 512)",
        fresh.subject
    );
    finished.line_for("finished", "kept for retain_finished: 100,000 arrived, accepted and completed (no target)");
}
