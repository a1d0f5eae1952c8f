//! The address ranges of the images mapped in this process, and which image's code the running
//! OS thread is executing.
//!
//! `crate::abi` asks [`image_at`] whether a routine pointer lies inside an image (then it is
//! called with the `win64` convention) and marks the call with [`enter`]; the export thunks ask
//! [`current`] which image called them, so that `DbgPrint` output goes to the right
//! driver's log. The table is process-wide (an image is mapped once, at one address), not
//! per machine.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use super::pe::Import;

/// What ntsim keeps about one mapped image; shared by [`super::LoadedImage`] handles, the
/// machine that loaded it as a driver, and the registry (weakly).
#[derive(Debug)]
pub(crate) struct ImageShared {
    pub(crate) name: String,
    pub(crate) base: usize,
    pub(crate) size: usize,
    pub(crate) entry: usize,
    pub(crate) imports: Vec<Import>,
    /// `DbgPrint`/`DbgPrintEx` output, one entry per call.
    pub(crate) log: Mutex<Vec<String>>,
    /// How many times its code called DbgBreakPoint.
    pub(crate) breakpoints: Mutex<u64>,
    /// Whether a driver was loaded from it (an image's globals serve one driver).
    pub(crate) driver: Mutex<Option<usize>>,
    /// The memory; unmapped when the last handle goes (after the registry entry).
    #[allow(dead_code, reason = "held for its Drop, which unmaps")]
    pub(crate) mapping: Option<super::map::Mapping>,
}

impl ImageShared {
    pub(crate) fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.size
    }
}

impl Drop for ImageShared {
    fn drop(&mut self) {
        unregister(self.base);
    }
}

/// One registered range; the image itself is only reached through the weak handle, upgraded
/// outside the lock (dropping the last handle unregisters, which takes the lock).
#[derive(Debug)]
struct Range {
    base: usize,
    size: usize,
    image: Weak<ImageShared>,
}

static IMAGES: RwLock<Vec<Range>> = RwLock::new(Vec::new());
/// How many images are registered: host-built drivers skip the lock when it is zero.
static COUNT: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn register(image: &Arc<ImageShared>) {
    let mut v = IMAGES.write().unwrap_or_else(|e| e.into_inner());
    v.push(Range {
        base: image.base,
        size: image.size,
        image: Arc::downgrade(image),
    });
    COUNT.store(v.len(), Ordering::SeqCst);
}

fn unregister(base: usize) {
    let mut v = IMAGES.write().unwrap_or_else(|e| e.into_inner());
    v.retain(|r| r.base != base);
    COUNT.store(v.len(), Ordering::SeqCst);
}

/// The image whose mapping holds `addr`, if any.
pub(crate) fn image_at(addr: usize) -> Option<Arc<ImageShared>> {
    if COUNT.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let weak = {
        let v = IMAGES.read().unwrap_or_else(|e| e.into_inner());
        v.iter()
            .find(|r| addr >= r.base && addr - r.base < r.size)?
            .image
            .clone()
    };
    weak.upgrade()
}

thread_local! {
    /// The images whose code this OS thread is inside, innermost last.
    static INSIDE: RefCell<Vec<Arc<ImageShared>>> = const { RefCell::new(Vec::new()) };
}

/// Marks that the running thread executes `image`'s code until the guard drops.
#[derive(Debug)]
pub(crate) struct Entered(());

pub(crate) fn enter(image: Arc<ImageShared>) -> Entered {
    INSIDE.with(|s| s.borrow_mut().push(image));
    Entered(())
}

impl Drop for Entered {
    fn drop(&mut self) {
        INSIDE.with(|s| s.borrow_mut().pop());
    }
}

/// The image whose code called into ntsim on this thread (the innermost one).
pub(crate) fn current() -> Option<Arc<ImageShared>> {
    INSIDE.with(|s| s.borrow().last().cloned())
}
