//! The allocator export the host calls to hand us memory (header maps, bodies, properties).
//! wasm32-unknown-unknown exports it as `malloc` (what every host looks up first); on WASI,
//! libc already owns `malloc`, so it is `proxy_on_memory_allocate` there.

#[cfg_attr(
    all(target_arch = "wasm32", not(target_os = "wasi")),
    export_name = "malloc"
)]
#[cfg_attr(
    any(not(target_arch = "wasm32"), target_os = "wasi"),
    export_name = "proxy_on_memory_allocate"
)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Small blocks kept for reuse: every request frees and allocates again the same few
/// (its context, the header map the host hands over), and std's allocator on wasm
/// (dlmalloc) spends a few hundred instructions on each malloc and each free, where a
/// free list per size class pops and pushes in a handful. Blocks of up to `MAX` bytes,
/// rounded up to a power of two from 16, aligned to at most `ALIGN`; a class keeps as
/// many blocks as the plugin once had at the same time (they never go back to `inner`).
/// Everything bigger goes to `inner`. On by default (feature `small-blocks`); a plugin
/// with its own `#[global_allocator]` turns it off with `default-features = false`.
pub(crate) struct SmallBlocks<A> {
    inner: A,
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

const CLASSES: usize = 5;
const MAX: usize = 16 << (CLASSES - 1);
const ALIGN: usize = 16;

// used by the wasm32 build (and the tests)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl<A> SmallBlocks<A> {
    pub(crate) const fn new(inner: A) -> Self {
        SmallBlocks { inner, free: UnsafeCell::new([ptr::null_mut(); CLASSES]) }
    }
}

fn class(layout: &Layout) -> Option<usize> {
    let size = layout.size();
    if size > MAX || layout.align() > ALIGN {
        return None;
    }
    // 16 -> 0, 17..=32 -> 1, ..., 129..=256 -> 4
    Some((usize::BITS - (size.max(16) - 1).leading_zeros()) as usize - 4)
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallBlocks<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(&layout) {
            Some(c) => {
                let free = &mut *self.free.get();
                let head = free[c];
                if head.is_null() {
                    self.inner.alloc(Layout::from_size_align_unchecked(16 << c, ALIGN))
                } else {
                    // a free block holds the next free block's address
                    free[c] = *(head as *mut *mut u8);
                    head
                }
            }
            None => self.inner.alloc(layout),
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(&layout) {
            Some(c) => {
                let free = &mut *self.free.get();
                *(p as *mut *mut u8) = free[c];
                free[c] = p;
            }
            None => self.inner.dealloc(p, layout),
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class(&layout), class(&new)) {
            (Some(a), Some(b)) if a == b => p,
            (None, None) => self.inner.realloc(p, layout, new_size),
            _ => {
                let q = self.alloc(new);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

// wasm32 without the atomics feature has one thread: the lists need no lock
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), feature = "small-blocks"))]
unsafe impl<A> Sync for SmallBlocks<A> {}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), feature = "small-blocks"))]
#[global_allocator]
static ALLOCATOR: SmallBlocks<std::alloc::System> = SmallBlocks::new(std::alloc::System);

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn size_classes() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class(&l(1, 1)), Some(0));
        assert_eq!(class(&l(16, 8)), Some(0));
        assert_eq!(class(&l(17, 1)), Some(1));
        assert_eq!(class(&l(256, 16)), Some(4));
        assert_eq!(class(&l(257, 1)), None);
        assert_eq!(class(&l(8, 32)), None);
    }

    #[test]
    fn blocks_are_reused_per_class_and_realloc_moves_across_classes() {
        let a = SmallBlocks::new(System);
        let small = Layout::from_size_align(24, 8).unwrap();
        unsafe {
            let p = a.alloc(small);
            let q = a.alloc(small);
            assert!(!p.is_null() && !q.is_null() && p != q);
            a.dealloc(p, small);
            assert_eq!(a.alloc(small), p); // the last block freed comes back first
            // within the class: the same block; out of it: moved, with the contents
            assert_eq!(a.realloc(p, small, 30), p);
            *p = 7;
            let big = a.realloc(p, Layout::from_size_align(30, 8).unwrap(), 1000);
            assert_eq!(*big, 7);
            assert_eq!(a.alloc(Layout::from_size_align(32, 8).unwrap()), p); // p was freed
            a.dealloc(big, Layout::from_size_align(1000, 8).unwrap());
            a.dealloc(q, small);
        }
    }
}
