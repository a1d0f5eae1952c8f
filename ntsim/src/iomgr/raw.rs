//! Kernel objects that the I/O manager owns and hands to drivers by address: heap storage that
//! never moves, kept in the side tables as an address (so that the tables stay `Send`).

use std::marker::PhantomData;

use crate::ntdef::{EVENT_TYPE, KEVENT};

/// A zeroed `T` on the heap, freed on drop. The address is stable for the value's life.
#[derive(Debug)]
pub(crate) struct Raw<T> {
    addr: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Raw<T> {
    /// Zeroed storage for a `T` (every type used here is valid when zeroed: C structs).
    pub(crate) fn zeroed() -> Raw<T> {
        let layout = std::alloc::Layout::new::<T>();
        // SAFETY: every `T` used with `Raw` is a C struct with non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!p.is_null(), "host out of memory");
        Raw {
            addr: p as usize,
            _t: PhantomData,
        }
    }

    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    pub(crate) fn ptr(&self) -> *mut T {
        self.addr as *mut T
    }
}

impl<T> Drop for Raw<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout; dropped once.
        unsafe { std::alloc::dealloc(self.addr as *mut u8, std::alloc::Layout::new::<T>()) };
    }
}

/// A kernel event owned by the I/O manager (a request's completion, a thread's termination
/// request, the worker's wake-up).
pub(crate) fn new_event(event_type: EVENT_TYPE, signalled: bool) -> Raw<KEVENT> {
    let e = Raw::<KEVENT>::zeroed();
    // SAFETY: fresh storage for a KEVENT.
    unsafe { crate::event::init_event_object(e.ptr(), event_type, signalled) };
    e
}
