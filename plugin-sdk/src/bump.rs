//! The plugin's allocator on wasm32 (feature `bump-allocator`, on by
//! default): a bump allocator.
//!
//! A plugin's memory lives as long as its instance: one hook call, or up to
//! 64 `bonus` calls of a settlement in a row (see the crate's "Instances"
//! section). Allocating is a pointer bump, freeing the latest block gives it
//! back (so `Vec` growth and temporaries used last-in-first-out cost
//! nothing), and everything else is reclaimed when the instance ends. That
//! halves the cost of a call next to Rust's default allocator (which
//! initializes itself and asks the host for memory on every call), at the
//! price of holding memory a long-running allocation pattern would reuse:
//! calls on one instance that allocate more than the host's memory limit in
//! total fail with a memory-limit error (a `bonus` call that does is retried
//! alone on a fresh instance). Turn the feature off to use Rust's default
//! allocator instead.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

/// Bytes of a wasm page.
const PAGE: usize = 64 * 1024;

/// Pages asked for at least, when memory must grow.
const MIN_GROWTH_PAGES: usize = 16;

extern "C" {
    /// Where the linker leaves the heap: after the stack and static data.
    static __heap_base: u8;
}

/// A bump allocator over the linear memory above `__heap_base`.
pub struct Bump {
    /// The next free byte (0 until the first allocation).
    next: Cell<usize>,
    /// The end of linear memory as last seen.
    end: Cell<usize>,
}

// SAFETY: wasm32 without the `atomics` feature has a single thread.
unsafe impl Sync for Bump {}

impl Bump {
    /// An allocator that starts at the first allocation.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Ensures memory reaches `stop`; false when the host refuses to grow it.
    fn reserve(&self, stop: usize) -> bool {
        if stop <= self.end.get() {
            return true;
        }
        let pages = (stop - self.end.get()).div_ceil(PAGE).max(MIN_GROWTH_PAGES);
        if wasm32::memory_grow(0, pages) == usize::MAX {
            // Try the exact need before giving up.
            let exact = (stop - self.end.get()).div_ceil(PAGE);
            if exact == pages || wasm32::memory_grow(0, exact) == usize::MAX {
                return false;
            }
        }
        self.end.set(wasm32::memory_size(0) * PAGE);
        true
    }
}

impl Default for Bump {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.next.get() == 0 {
            // Only the symbol's address is taken (no `unsafe` needed).
            self.next.set(core::ptr::addr_of!(__heap_base) as usize);
            self.end.set(wasm32::memory_size(0) * PAGE);
        }
        let align = layout.align();
        let Some(start) = self
            .next
            .get()
            .checked_add(align - 1)
            .map(|p| p & !(align - 1))
        else {
            return core::ptr::null_mut();
        };
        let Some(stop) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !self.reserve(stop) {
            return core::ptr::null_mut();
        }
        self.next.set(stop);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the latest block can be given back.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.next.get() {
            // The latest block grows or shrinks in place.
            let Some(stop) = start.checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if !self.reserve(stop) {
                return core::ptr::null_mut();
            }
            self.next.set(stop);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees `layout`'s alignment is valid with `new_size`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of `new_size` bytes, disjoint from `ptr`.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
            }
            new
        }
    }
}

#[global_allocator]
static ALLOCATOR: Bump = Bump::new();
