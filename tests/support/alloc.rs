//! A counting global allocator for the test binaries that bound memory.
//! A global allocator cannot be written without unsafe; the library itself forbids it.
#![allow(unsafe_code, dead_code, unreachable_pub)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Live heap bytes.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most live heap bytes since the last reset.
pub static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations made on this thread (calls to `alloc`, including those
    /// behind `realloc`). Per thread, so the test harness's own allocations
    /// on other threads do not count.
    static THREAD_ALLOCS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made so far on the calling thread.
pub fn thread_allocations() -> usize {
    THREAD_ALLOCS.with(Cell::get)
}

/// Tracks live heap bytes and their peak.
struct Counting;

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread's slot may be gone while it exits.
        let _ = THREAD_ALLOCS.try_with(|n| n.set(n.get().wrapping_add(1)));
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// A measurement of peak heap growth. Holding it serialises the tests of a
/// binary, so one test's allocations do not count against another's bound.
pub struct Meter {
    before: usize,
    _serial: MutexGuard<'static, ()>,
}

impl Meter {
    /// Starts measuring from the heap as it is now.
    pub fn start() -> Self {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let before = LIVE.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        Self {
            before,
            _serial: serial,
        }
    }

    /// Measures afresh from the heap as it is now (still holding the lock).
    pub fn restart(&mut self) {
        self.before = LIVE.load(Ordering::SeqCst);
        PEAK.store(self.before, Ordering::SeqCst);
    }

    /// How much more the heap holds now than at [`start`](Self::start).
    pub fn live_growth(&self) -> usize {
        LIVE.load(Ordering::SeqCst).saturating_sub(self.before)
    }

    /// The most the heap grew since [`start`](Self::start).
    pub fn peak_growth(&self) -> usize {
        PEAK.load(Ordering::SeqCst).saturating_sub(self.before)
    }

    /// Asserts the peak growth stayed under `bound` bytes.
    #[track_caller]
    pub fn assert_below(&self, bound: usize, what: &str) {
        let grew = self.peak_growth();
        assert!(
            grew < bound,
            "{what}: heap grew {grew} bytes, bound {bound}"
        );
        eprintln!("{what}: peak heap growth {grew} bytes (bound {bound})");
    }
}
