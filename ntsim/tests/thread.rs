//! System threads and thread objects: spec A.16, rules C19 (PsCreateSystemThread), C22, C23.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::object::*;
use ntsim::thread::*;
use ntsim::{Rule, Severity};
use support::*;

/// What a start routine saw: its IRQL, its context, and its own thread object.
#[derive(Debug, Default)]
struct Seen {
    irql: AtomicU32,
    context_ok: AtomicU32,
    thread: std::sync::Mutex<usize>,
}

unsafe extern "system" fn start(ctx: PVOID) {
    let seen = ctx as *const Seen;
    // SAFETY: the context is a leaked Seen.
    let seen = unsafe { &*seen };
    seen.irql
        .store(u32::from(KeGetCurrentIrql()), Ordering::SeqCst);
    seen.context_ok.store(1, Ordering::SeqCst);
    *seen.thread.lock().unwrap() = PsGetCurrentThread() as usize;
    sleep(5 * MS);
}

fn create(start: PKSTART_ROUTINE, ctx: PVOID) -> (NTSTATUS, HANDLE) {
    let mut h: HANDLE = std::ptr::null_mut();
    // SAFETY: `h` is writable; the start routine may run on another thread with `ctx`.
    let s = unsafe {
        PsCreateSystemThread(
            &mut h,
            0x001F_FFFF,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            start,
            ctx,
        )
    };
    (s, h)
}

fn reference_thread(h: HANDLE) -> (NTSTATUS, PVOID) {
    let mut obj: PVOID = std::ptr::null_mut();
    // SAFETY: `obj` is writable.
    let s = unsafe {
        ObReferenceObjectByHandle(
            h,
            SYNCHRONIZE,
            PsThreadType(),
            KernelMode,
            &mut obj,
            std::ptr::null_mut(),
        )
    };
    (s, obj)
}

#[test]
fn create_reference_close_wait_and_dereference_a_system_thread() {
    let out = run(|| {
        let seen = leak(Seen::default());
        let (s, h) = create(Some(start), seen.pv());
        assert_eq!(s, STATUS_SUCCESS);
        let (s, thread) = reference_thread(h);
        assert_eq!(s, STATUS_SUCCESS);
        assert_eq!(ZwClose(h), STATUS_SUCCESS);
        assert_eq!(wait(P::from_pv(thread), None), STATUS_SUCCESS);
        // SAFETY: the thread object is referenced; it begins with its dispatcher header.
        let header = unsafe { *thread.cast::<DISPATCHER_HEADER>() };
        assert_eq!(header.Type, ThreadObject);
        // SAFETY: leaked Seen.
        let seen = unsafe { &*seen.get() };
        assert_eq!(seen.irql.load(Ordering::SeqCst), u32::from(PASSIVE_LEVEL));
        assert_eq!(seen.context_ok.load(Ordering::SeqCst), 1);
        assert_eq!(
            *seen.thread.lock().unwrap(),
            thread as usize,
            "PsGetCurrentThread"
        );
        assert_eq!(object_reference_count(thread), Some(1), "only ours is left");
        // SAFETY: we hold the reference ObReferenceObjectByHandle gave us.
        unsafe { ObDereferenceObject(thread) };
        assert_eq!(
            object_reference_count(thread),
            None,
            "deleted with its last reference"
        );
    });
    assert_eq!(out.time, 5 * MS);
    out.expect_clean();
}

#[test]
fn thread_handle_with_the_wrong_object_type_is_refused() {
    let out = run(|| {
        let seen = leak(Seen::default());
        let (_, h) = create(Some(start), seen.pv());
        let mut obj: PVOID = std::ptr::null_mut();
        // SAFETY: `obj` is writable.
        let s = unsafe {
            ObReferenceObjectByHandle(
                h,
                0,
                ExEventObjectType(),
                KernelMode,
                &mut obj,
                std::ptr::null_mut(),
            )
        };
        let (_, thread) = reference_thread(h);
        ZwClose(h);
        wait(P::from_pv(thread), None);
        // SAFETY: referenced above.
        unsafe { ObDereferenceObject(thread) };
        s
    });
    assert_eq!(out.expect_clean(), STATUS_OBJECT_TYPE_MISMATCH);
}

unsafe extern "system" fn terminate_early(ctx: PVOID) {
    let after = ctx as *const AtomicU32;
    PsTerminateSystemThread(STATUS_SUCCESS);
    // SAFETY: the context is a leaked counter.
    unsafe { &*after }.store(1, Ordering::SeqCst);
}

#[test]
fn terminate_system_thread_ends_the_thread_and_signals_its_object() {
    let out = run(|| {
        let after = leak(AtomicU32::new(0));
        let (_, h) = create(Some(terminate_early), after.pv());
        let (_, thread) = reference_thread(h);
        ZwClose(h);
        assert_eq!(wait(P::from_pv(thread), None), STATUS_SUCCESS);
        // SAFETY: referenced.
        unsafe { ObDereferenceObject(thread) };
        // SAFETY: leaked counter.
        unsafe { &*after.get() }.load(Ordering::SeqCst)
    });
    assert_eq!(
        out.expect_clean(),
        0,
        "nothing runs after PsTerminateSystemThread"
    );
}

#[test]
fn terminate_system_thread_from_a_user_thread_fails_and_is_logged() {
    let out = run(|| {
        let status = leak(AtomicU32::new(0));
        let t = SystemThread::spawn_user(7, "client", move || {
            let s = PsTerminateSystemThread(STATUS_SUCCESS);
            // SAFETY: leaked slot.
            unsafe { &*status.get() }.store(s as u32, Ordering::SeqCst);
        });
        t.join();
        // SAFETY: leaked slot.
        unsafe { &*status.get() }.load(Ordering::SeqCst) as NTSTATUS
    });
    let r = out.reports_of(Rule::TerminateNonSystem);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Warning);
    assert!(out.stop.is_none());
    assert_eq!(out.value, Some(STATUS_INVALID_PARAMETER));
}

#[test]
fn returning_from_the_start_routine_ends_the_thread() {
    let out = run(|| {
        let t = SystemThread::spawn("short", || {});
        assert!(!t.is_finished());
        t.join();
    });
    out.expect_clean();
}

#[test]
fn create_system_thread_above_passive_is_a_violation() {
    let out = run(|| {
        let seen = leak(Seen::default());
        let old = KfRaiseIrql(APC_LEVEL);
        let (s, _) = create(Some(start), seen.pv());
        KeLowerIrql(old);
        s
    });
    assert_eq!(out.reports_of(Rule::ApiIrql).len(), 1);
    assert_eq!(out.value, Some(STATUS_INVALID_PARAMETER));
}

// Rule C22: critical regions balance per thread.

#[test]
fn thread_ending_inside_a_critical_region_is_fatal() {
    let out = run(|| {
        let t = SystemThread::spawn("unbalanced", KeEnterCriticalRegion);
        t.join();
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::CriticalRegion);
}

#[test]
fn leaving_a_critical_region_never_entered_is_reported() {
    let out = run(KeLeaveCriticalRegion);
    assert_eq!(out.reports_of(Rule::CriticalRegion).len(), 1);
}

#[test]
fn balanced_critical_regions_are_clean() {
    let out = run(|| {
        let t = SystemThread::spawn("balanced", || {
            KeEnterCriticalRegion();
            KeEnterCriticalRegion();
            sleep(MS);
            KeLeaveCriticalRegion();
            KeLeaveCriticalRegion();
        });
        t.join();
    });
    out.expect_clean();
}

#[test]
fn threads_are_spread_over_the_cpus() {
    let out = run(|| {
        // Two threads at DISPATCH_LEVEL at once: only possible on two CPUs.
        let bp = ntsim::breakpoint::Breakpoint::set(
            ntsim::breakpoint::Point::Named("inside"),
            ntsim::breakpoint::Filter::Any,
        );
        let t = SystemThread::spawn("holder", move || {
            let old = KfRaiseIrql(DISPATCH_LEVEL);
            ntsim::breakpoint::named_point("inside");
            KeLowerIrql(old);
        });
        bp.wait_hit();
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        KeLowerIrql(old);
        bp.clear();
        t.join();
    });
    out.expect_clean();
}

#[test]
fn spawn_on_places_a_thread_on_the_chosen_cpu() {
    let out = run(|| {
        let bp = ntsim::breakpoint::Breakpoint::set(
            ntsim::breakpoint::Point::Named("inside"),
            ntsim::breakpoint::Filter::Any,
        );
        // On our own CPU (0) a parked thread at DISPATCH_LEVEL would keep us from running.
        let t = SystemThread::spawn_on(1, "on-cpu1", move || {
            let old = KfRaiseIrql(DISPATCH_LEVEL);
            ntsim::breakpoint::named_point("inside");
            KeLowerIrql(old);
        });
        bp.wait_hit();
        bp.clear();
        t.join();
    });
    out.expect_clean();
}
