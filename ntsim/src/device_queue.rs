//! Device queues: `KDEVICE_QUEUE` and its entries (spec A.10).
//!
//! The queue is the driver-visible object itself: entries are linked through
//! `KDEVICE_QUEUE_ENTRY.DeviceListEntry` on `DeviceListHead`, `Busy` says whether the device
//! is working on an entry, `Inserted` whether an entry is linked, and `SortKey` orders keyed
//! inserts. Every routine takes the queue's own `Lock` as a kernel-internal spin lock, so the
//! cancel lock → device-queue lock nesting of the StartIo machinery is legal (spec A.1.4).
//!
//! Busy is the device's "an entry is in service" flag, not "the list is non-empty": the first
//! insert into an idle queue is refused (the caller starts that entry itself) and makes the
//! queue busy; a remove from an empty busy queue makes it idle again.

use crate::machine::Cx;
use crate::ntdef::{
    BOOLEAN, DISPATCH_LEVEL, DeviceQueueObject, KDEVICE_QUEUE, KDEVICE_QUEUE_ENTRY, LIST_ENTRY,
    ULONG,
};
use crate::spinlock::{acquire_internal, release_internal};

// ---- LIST_ENTRY primitives (one raw access each, so that callers stay readable) ----

/// # Safety
/// `e` must be a live list entry.
unsafe fn flink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Flink }
}

/// # Safety
/// `e` must be a live list entry.
unsafe fn blink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Blink }
}

/// # Safety
/// `e` must be a live list entry.
unsafe fn set_links(e: *mut LIST_ENTRY, f: *mut LIST_ENTRY, b: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { e.write(LIST_ENTRY { Flink: f, Blink: b }) };
}

/// # Safety
/// `e` must be a live list entry.
unsafe fn set_flink(e: *mut LIST_ENTRY, f: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Flink = f };
}

/// # Safety
/// `e` must be a live list entry.
unsafe fn set_blink(e: *mut LIST_ENTRY, b: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Blink = b };
}

/// Links `e` just before `next` (at the tail when `next` is the list head).
///
/// # Safety
/// `next` must be linked in a well-formed list; `e` must be live and unlinked.
unsafe fn insert_before(next: *mut LIST_ENTRY, e: *mut LIST_ENTRY) {
    // SAFETY: `next` is linked in a well-formed list (caller).
    let prev = unsafe { blink(next) };
    // SAFETY: `e` is live (caller).
    unsafe { set_links(e, next, prev) };
    // SAFETY: `prev` is linked in the same list, hence live.
    unsafe { set_flink(prev, e) };
    // SAFETY: `next` is live (caller).
    unsafe { set_blink(next, e) };
}

/// Unlinks `e` from its list.
///
/// # Safety
/// `e` must be linked in a well-formed list.
unsafe fn unlink(e: *mut LIST_ENTRY) {
    // SAFETY: `e` is linked (caller).
    let (f, b) = (unsafe { flink(e) }, unsafe { blink(e) });
    // SAFETY: `b` and `f` are its neighbours in a well-formed list, hence live.
    unsafe { set_flink(b, f) };
    // SAFETY: as above.
    unsafe { set_blink(f, b) };
}

/// The first link from `start` up to the head `h` whose entry's key satisfies `pred`, or `h`.
///
/// # Safety
/// `h` must head a well-formed list of device-queue entries and `start` be `h` or linked on it.
unsafe fn find_key(
    h: *mut LIST_ENTRY,
    start: *mut LIST_ENTRY,
    pred: impl Fn(ULONG) -> bool,
) -> *mut LIST_ENTRY {
    let mut l = start;
    while l != h {
        // SAFETY: `l` is linked on the list (caller), so its entry is live.
        if pred(unsafe { sort_key(entry(l)) }) {
            return l;
        }
        // SAFETY: as above.
        l = unsafe { flink(l) };
    }
    h
}

// ---- field access of the queue objects ----

fn head(q: *mut KDEVICE_QUEUE) -> *mut LIST_ENTRY {
    q.wrapping_byte_add(std::mem::offset_of!(KDEVICE_QUEUE, DeviceListHead))
        .cast()
}

fn lock_word(q: *mut KDEVICE_QUEUE) -> usize {
    q.wrapping_byte_add(std::mem::offset_of!(KDEVICE_QUEUE, Lock)) as usize
}

/// The list entry of a queue entry (its first field).
fn link(e: *mut KDEVICE_QUEUE_ENTRY) -> *mut LIST_ENTRY {
    e.cast()
}

/// The queue entry of a list entry (`CONTAINING_RECORD`; the link is the first field).
fn entry(l: *mut LIST_ENTRY) -> *mut KDEVICE_QUEUE_ENTRY {
    l.cast()
}

/// # Safety
/// `q` must be a live device queue.
unsafe fn busy(q: *mut KDEVICE_QUEUE) -> bool {
    // SAFETY: the caller guarantees `q` is live.
    unsafe { (*q).Busy != 0 }
}

/// # Safety
/// `q` must be a live device queue.
unsafe fn set_busy(q: *mut KDEVICE_QUEUE, b: bool) {
    // SAFETY: the caller guarantees `q` is live.
    unsafe { (*q).Busy = BOOLEAN::from(b) };
}

/// # Safety
/// `e` must be a live queue entry.
unsafe fn set_inserted(e: *mut KDEVICE_QUEUE_ENTRY, b: bool) {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Inserted = BOOLEAN::from(b) };
}

/// # Safety
/// `e` must be a live queue entry.
unsafe fn inserted(e: *mut KDEVICE_QUEUE_ENTRY) -> bool {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).Inserted != 0 }
}

/// # Safety
/// `e` must be a live queue entry.
unsafe fn sort_key(e: *mut KDEVICE_QUEUE_ENTRY) -> ULONG {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).SortKey }
}

/// # Safety
/// `e` must be a live queue entry.
unsafe fn set_sort_key(e: *mut KDEVICE_QUEUE_ENTRY, k: ULONG) {
    // SAFETY: the caller guarantees `e` is live.
    unsafe { (*e).SortKey = k };
}

// ---- the operations, under the queue lock, without IRQL checks (the StartIo machinery's) ----

/// Which entry a keyed remove takes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// KeRemoveByKeyDeviceQueue: WRK's tail test first (spec A.10, F-7).
    WrkQuirk,
    /// KeRemoveByKeyDeviceQueueIfBusy: a plain search.
    Plain,
}

/// KeInitializeDeviceQueue's work: empty, not busy.
///
/// # Safety
/// `q` must be valid for writes.
pub(crate) unsafe fn init(q: *mut KDEVICE_QUEUE) {
    let mut v = KDEVICE_QUEUE::zeroed();
    v.Type = i16::from(DeviceQueueObject);
    v.Size = size_of::<KDEVICE_QUEUE>() as i16;
    // SAFETY: the caller guarantees `q` is writable.
    unsafe { q.write(v) };
    let h = head(q);
    // SAFETY: `h` is the list head inside the object just written.
    unsafe { set_links(h, h, h) };
}

/// Runs `f` holding the queue's lock (the caller is at DISPATCH_LEVEL or above).
fn locked<R>(q: *mut KDEVICE_QUEUE, f: impl FnOnce() -> R) -> R {
    acquire_internal(lock_word(q));
    let r = f();
    release_internal(lock_word(q));
    r
}

/// Inserts `e` (at the tail, or by `key`); false if the queue was idle (it is then busy and
/// `e` is not linked: the caller starts it now).
///
/// # Safety
/// `q` must be an initialized queue, `e` a live entry not linked anywhere.
pub(crate) unsafe fn insert(
    q: *mut KDEVICE_QUEUE,
    e: *mut KDEVICE_QUEUE_ENTRY,
    key: Option<ULONG>,
) -> bool {
    locked(q, || {
        if let Some(k) = key {
            // SAFETY: `e` is live (caller).
            unsafe { set_sort_key(e, k) };
        }
        // SAFETY: `q` is initialized (caller) and its lock is held.
        if !unsafe { busy(q) } {
            // SAFETY: as above.
            unsafe { set_busy(q, true) };
            // SAFETY: `e` is live (caller).
            unsafe { set_inserted(e, false) };
            return false;
        }
        let h = head(q);
        let next = match key {
            // Ascending keys, FIFO among equal keys: before the first entry with a greater key,
            // at the tail if there is none.
            Some(k) => {
                // SAFETY: the list of an initialized queue is well formed; the lock is held.
                let first = unsafe { flink(h) };
                // SAFETY: as above.
                unsafe { find_key(h, first, |sk| sk > k) }
            }
            None => h,
        };
        // SAFETY: `next` is on the well-formed list; `e` is live and unlinked (caller).
        unsafe { insert_before(next, link(e)) };
        // SAFETY: `e` is live (caller).
        unsafe { set_inserted(e, true) };
        true
    })
}

/// Removes the head (or the entry `key` selects by `rule`); NULL and not busy when empty.
/// With `if_busy`, an idle queue gives NULL and stays idle.
///
/// # Safety
/// `q` must be an initialized queue.
pub(crate) unsafe fn remove(
    q: *mut KDEVICE_QUEUE,
    key: Option<(ULONG, KeyRule)>,
    if_busy: bool,
) -> *mut KDEVICE_QUEUE_ENTRY {
    locked(q, || {
        // SAFETY: `q` is initialized (caller) and its lock is held.
        if if_busy && !unsafe { busy(q) } {
            return std::ptr::null_mut();
        }
        let h = head(q);
        // SAFETY: the list of an initialized queue is well formed; the lock is held.
        let first = unsafe { flink(h) };
        if first == h {
            // SAFETY: as above.
            unsafe { set_busy(q, false) };
            return std::ptr::null_mut();
        }
        let chosen = match key {
            None => first,
            Some((k, rule)) => {
                // SAFETY: as above.
                let tail = unsafe { blink(h) };
                // SAFETY: the list is not empty, so `tail` is a live entry.
                let tail_key = unsafe { sort_key(entry(tail)) };
                if rule == KeyRule::WrkQuirk && tail_key <= k {
                    // spec A.10 / F-7: WRK tests the tail first; when its key is <= Key it
                    // takes the head, even if the tail's key equals Key.
                    first
                } else {
                    // The first entry with a key >= Key, wrapping to the head if none.
                    // SAFETY: as above.
                    let l = unsafe { find_key(h, first, |sk| sk >= k) };
                    if l == h { first } else { l }
                }
            }
        };
        // SAFETY: `chosen` is linked on the queue's well-formed list.
        unsafe { unlink(chosen) };
        let e = entry(chosen);
        // SAFETY: a linked entry is live.
        unsafe { set_inserted(e, false) };
        e
    })
}

/// Unlinks `e` if it is linked; whether it was. Busy does not change.
///
/// # Safety
/// `q` must be an initialized queue and `e` a live entry (linked on `q` or on none).
pub(crate) unsafe fn remove_entry(q: *mut KDEVICE_QUEUE, e: *mut KDEVICE_QUEUE_ENTRY) -> bool {
    locked(q, || {
        // SAFETY: `e` is live (caller); the queue lock is held.
        if !unsafe { inserted(e) } {
            return false;
        }
        // SAFETY: an inserted entry is linked on `q`'s well-formed list (caller).
        unsafe { unlink(link(e)) };
        // SAFETY: `e` is live.
        unsafe { set_inserted(e, false) };
        true
    })
}

// ---- the exported routines ----

/// Initializes a device queue: empty, not busy (`Type` DeviceQueueObject, `Size` 40).
///
/// IRQL: any.
///
/// # Safety
/// `q` must be valid for writes and not in use.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeDeviceQueue(q: *mut KDEVICE_QUEUE) {
    // SAFETY: forwarded caller contract.
    unsafe { init(q) };
}

/// Inserts `e` at the tail of `q` if the queue is busy and returns TRUE (1), with
/// `e.Inserted` TRUE. If the queue is idle it becomes busy, `e` is not inserted
/// (`Inserted` FALSE) and FALSE (0) is returned: the caller must start that entry itself.
///
/// IRQL: DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// `q` must be an initialized device queue; `e` a live entry not linked on any queue.
#[allow(non_snake_case)]
pub unsafe fn KeInsertDeviceQueue(q: *mut KDEVICE_QUEUE, e: *mut KDEVICE_QUEUE_ENTRY) -> BOOLEAN {
    Cx::get().check_irql_exactly("KeInsertDeviceQueue", DISPATCH_LEVEL);
    // SAFETY: forwarded caller contract.
    BOOLEAN::from(unsafe { insert(q, e, None) })
}

/// As [`KeInsertDeviceQueue`], but a queued entry goes after every entry whose key is <= `key`
/// (ascending keys, FIFO among equal ones). `e.SortKey` is set to `key` in both cases.
/// Returns TRUE (1) if inserted, FALSE (0) if the queue was idle (now busy).
///
/// IRQL: DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// As [`KeInsertDeviceQueue`].
#[allow(non_snake_case)]
pub unsafe fn KeInsertByKeyDeviceQueue(
    q: *mut KDEVICE_QUEUE,
    e: *mut KDEVICE_QUEUE_ENTRY,
    key: ULONG,
) -> BOOLEAN {
    Cx::get().check_irql_exactly("KeInsertByKeyDeviceQueue", DISPATCH_LEVEL);
    // SAFETY: forwarded caller contract.
    BOOLEAN::from(unsafe { insert(q, e, Some(key)) })
}

/// Removes the head entry of a busy queue and returns it with `Inserted` FALSE; if the queue
/// is empty it becomes idle (`Busy` FALSE) and NULL is returned.
///
/// IRQL: DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// `q` must be an initialized device queue.
#[allow(non_snake_case)]
pub unsafe fn KeRemoveDeviceQueue(q: *mut KDEVICE_QUEUE) -> *mut KDEVICE_QUEUE_ENTRY {
    Cx::get().check_irql_exactly("KeRemoveDeviceQueue", DISPATCH_LEVEL);
    // SAFETY: forwarded caller contract.
    unsafe { remove(q, None, false) }
}

/// Removes and returns the first entry whose key is >= `key`, wrapping to the head if there is
/// none; NULL (and the queue idle) if it is empty. WRK's quirk is kept (spec A.10, F-7): if the
/// *last* entry's key is <= `key`, the head is returned, so an entry with key == `key` at the
/// tail is not preferred over the head.
///
/// IRQL: DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// `q` must be an initialized device queue.
#[allow(non_snake_case)]
pub unsafe fn KeRemoveByKeyDeviceQueue(
    q: *mut KDEVICE_QUEUE,
    key: ULONG,
) -> *mut KDEVICE_QUEUE_ENTRY {
    Cx::get().check_irql_exactly("KeRemoveByKeyDeviceQueue", DISPATCH_LEVEL);
    // SAFETY: forwarded caller contract.
    unsafe { remove(q, Some((key, KeyRule::WrkQuirk)), false) }
}

/// As [`KeRemoveByKeyDeviceQueue`] without the tail quirk (the first entry with a key >= `key`,
/// else the head), and an idle queue gives NULL and stays idle.
///
/// IRQL: DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// `q` must be an initialized device queue.
#[allow(non_snake_case)]
pub unsafe fn KeRemoveByKeyDeviceQueueIfBusy(
    q: *mut KDEVICE_QUEUE,
    key: ULONG,
) -> *mut KDEVICE_QUEUE_ENTRY {
    Cx::get().check_irql_exactly("KeRemoveByKeyDeviceQueueIfBusy", DISPATCH_LEVEL);
    // SAFETY: forwarded caller contract.
    unsafe { remove(q, Some((key, KeyRule::Plain)), true) }
}

/// Removes `e` from `q` if it is inserted: TRUE (1) if it was (now `Inserted` FALSE), FALSE (0)
/// if it was not. `Busy` is not changed. Raises to DISPATCH_LEVEL itself for the queue lock.
///
/// IRQL: <= DISPATCH_LEVEL (rule C19 otherwise).
///
/// # Safety
/// `q` must be an initialized device queue and `e` a live entry, linked on `q` or on none.
#[allow(non_snake_case)]
pub unsafe fn KeRemoveEntryDeviceQueue(
    q: *mut KDEVICE_QUEUE,
    e: *mut KDEVICE_QUEUE_ENTRY,
) -> BOOLEAN {
    let cx = Cx::get();
    cx.check_irql_at_most("KeRemoveEntryDeviceQueue", DISPATCH_LEVEL);
    let old = cx.irql();
    if old < DISPATCH_LEVEL {
        cx.set_irql(DISPATCH_LEVEL);
    }
    // SAFETY: forwarded caller contract.
    let r = unsafe { remove_entry(q, e) };
    if old < DISPATCH_LEVEL {
        cx.set_irql(old);
    }
    BOOLEAN::from(r)
}
