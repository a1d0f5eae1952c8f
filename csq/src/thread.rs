//! [`SystemThread`]: a kernel system thread that owns its data and is joined before that data
//! is freed (spec A.16: unload stops the thread and waits on the thread object first).

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use pinned_init::{PinInit, pin_init_from_closure};

use crate::status::NtStatus;
use crate::sys;

/// The body of a [`SystemThread`] and the way to ask it to stop.
pub trait ThreadMain: Sync + Send {
    /// The thread's body, run once at PASSIVE_LEVEL in the System process. The thread ends
    /// when it returns.
    fn run(self: Pin<&Self>);

    /// Asks a running [`run`](ThreadMain::run) to return soon (e.g. signals a stop event it
    /// waits on). Called by [`SystemThread::stop`] before it waits for the thread.
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn request_stop(self: Pin<&Self>);
}

/// A system thread (`PsCreateSystemThread`) running `T::run` on the `T` it owns.
///
/// The thread borrows `T` in place, so `SystemThread` is built in place ([`SystemThread::new`])
/// and never moves; its drop (or [`stop`](Self::stop)) asks the thread to stop, waits on the
/// thread object until it has ended, and only then lets `T` go. Leaking it leaks `T` too, so the
/// thread never sees freed memory.
///
/// # Invariants
///
/// While `thread` is non-null, it is a referenced thread object whose start routine borrows
/// `data`.
pub struct SystemThread<T: ThreadMain> {
    data: T,
    thread: AtomicPtr<sys::KThread>,
    _pin: PhantomPinned,
}

impl<T: ThreadMain> SystemThread<T> {
    /// An initializer that builds `data` in place, then starts the thread on it.
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// What `PsCreateSystemThread` fails with (e.g. `STATUS_INSUFFICIENT_RESOURCES`); `data` is
    /// then dropped again.
    pub fn new(data: impl PinInit<T>) -> impl PinInit<Self, NtStatus> {
        let init = move |this: *mut Self| {
            // SAFETY: `this` is valid for writes (PinInit contract); address only.
            let slot = unsafe { &raw mut (*this).data };
            // SAFETY: as above.
            let thread = unsafe { &raw mut (*this).thread };
            // SAFETY: `slot` is writable and pinned with `Self`.
            let Ok(()) = unsafe { data.__pinned_init(slot) };
            // SAFETY: the start routine gets `slot`, which stays valid until the thread has
            // ended: the drop waits for that before `data` goes.
            match unsafe { sys::thread_create(Self::start, slot.cast()) } {
                Ok(t) => {
                    // SAFETY: writable storage for the field.
                    unsafe { thread.write(AtomicPtr::new(t)) };
                    Ok(())
                }
                Err(status) => {
                    // SAFETY: `data` was initialized above and nothing else uses it.
                    unsafe { ptr::drop_in_place(slot) };
                    Err(NtStatus(status))
                }
            }
        };
        // SAFETY: on Ok every field is initialized; on Err nothing is left initialized.
        unsafe { pin_init_from_closure(init) }
    }

    /// The data the thread runs on.
    ///
    /// IRQL: any.
    pub fn data(&self) -> Pin<&T> {
        // SAFETY: `data` is structurally pinned: `Self` is `!Unpin` and never moves it.
        unsafe { Pin::new_unchecked(&self.data) }
    }

    /// Whether the thread has ended (its thread object is signaled).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn is_finished(&self) -> bool {
        let t = self.thread.load(Ordering::Acquire);
        // SAFETY: a referenced thread object (type invariant); a zero timeout only polls.
        t.is_null() || NtStatus(unsafe { sys::wait_single(t.cast(), Some(0)) }) == NtStatus::SUCCESS
    }

    /// Asks the thread to stop ([`ThreadMain::request_stop`]), waits until it has ended, and
    /// drops the thread object reference. Idempotent. Must not be called from the thread itself.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub fn stop(&self) {
        let t = self.thread.swap(ptr::null_mut(), Ordering::AcqRel);
        if t.is_null() {
            return;
        }
        self.data().request_stop();
        // SAFETY: a referenced thread object (type invariant); waiting at PASSIVE_LEVEL.
        unsafe { sys::wait_single(t.cast(), None) };
        // SAFETY: the reference taken at creation, given up once.
        unsafe { sys::object_dereference(t.cast()) };
    }

    unsafe extern "system" fn start(context: *mut c_void) {
        // SAFETY: `context` is the `data` of a `SystemThread`, valid until this returns.
        let data = unsafe { &*context.cast::<T>() };
        // SAFETY: `data` is pinned in its `SystemThread`.
        let data = unsafe { Pin::new_unchecked(data) };
        data.run();
    }
}

impl<T: ThreadMain> Drop for SystemThread<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<T: ThreadMain> fmt::Debug for SystemThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemThread")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
