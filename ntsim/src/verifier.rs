//! The verifier: the rules of spec C, and the reports a run produces.
//!
//! Each check sits where the kernel routine that can detect it runs (IoCompleteRequest checks
//! C1–C5, KeReleaseSpinLock checks C17, …) and calls `World::report`. A fatal report is what
//! would bugcheck Windows: the machine halts, every actor stays parked, and `Kernel::run`
//! returns it as the run's stop. Other reports are recorded and the run goes on.
//!
//! `World::report`: crate::machine::World::report
//! `Kernel::run`: crate::Kernel::run

use std::fmt;

/// How bad a report is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Legal but suspicious or unportable.
    Warning,
    /// A driver bug that Windows may survive this time, or that Driver Verifier reports.
    Violation,
    /// A bug that bugchecks Windows: the machine halts.
    Fatal,
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $name:ident = $number:literal, $severity:ident, $title:literal; )*) => {
        /// A verifier rule: spec C's numbered rules, plus the machine's own stops.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Rule {
            $( $(#[$doc])* $name, )*
        }

        impl Rule {
            /// Every rule, in spec order.
            pub const ALL: &'static [Rule] = &[$(Rule::$name),*];

            /// The rule's number in spec C ("C17"), or its tag for the machine's own stops.
            pub fn number(self) -> &'static str {
                match self { $(Rule::$name => $number,)* }
            }

            /// One line saying what the rule forbids.
            pub fn title(self) -> &'static str {
                match self { $(Rule::$name => $title,)* }
            }

            /// The severity of a report of this rule unless the check says otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $(Rule::$name => Severity::$severity,)* }
            }
        }
    };
}

rules! {
    /// IoCompleteRequest on an IRP that was already completed (0x44).
    MultipleCompletion = "C1", Fatal, "IRP completed twice (MULTIPLE_IRP_COMPLETE_REQUESTS)";
    /// IoCompleteRequest with a cancel routine still set (0xC9/0x07).
    CompleteWithCancelRoutine = "C2", Fatal, "IRP completed with its cancel routine still set";
    /// IoCompleteRequest with STATUS_PENDING or 0xFFFFFFFF (0xC9/0x06).
    CompletePendingStatus = "C3", Fatal, "IRP completed with STATUS_PENDING or an invalid status";
    /// IoCompleteRequest above DISPATCH_LEVEL (fatal) or while holding a spin lock.
    CompleteIrql = "C4", Fatal, "IRP completed above DISPATCH_LEVEL or while holding a spin lock";
    /// Completion by a party that did not own the IRP.
    CompleteWithoutOwnership = "C5", Violation, "IRP completed by a party that does not own it";
    /// An IRP touched after completion or hand-off.
    UseAfterHandoff = "C6", Violation, "IRP used after it was completed or handed off";
    /// The dispatch return-value rules of A.6.
    DispatchReturn = "C7", Violation, "dispatch routine broke the pending/return-status rules";
    /// IoMarkIrpPending after the IRP became visible to other completers.
    MarkPendingLate = "C8", Violation, "IRP marked pending after other parties could complete it";
    /// IoCancelIrp on an IRP the caller neither allocated nor routes.
    CancelNotOwned = "C9", Warning, "IoCancelIrp by a party that neither allocated nor routes the IRP";
    /// Cancel spin lock misuse by a cancel routine.
    CancelSpinLock = "C10", Violation, "cancel routine misused the cancel spin lock";
    /// A driver lock taken under the cancel spin lock in a cancel routine.
    CancelLockOrder = "C11", Violation, "driver lock acquired while holding the cancel spin lock";
    /// A cancel routine set without checking Irp->Cancel.
    CancelFlagUnchecked = "C12", Violation, "cancel routine set without checking Irp->Cancel";
    /// `DriverContext[3]` written while the IRP is in a cancel-safe queue.
    CsqDriverContext = "C13", Violation, "`DriverContext[3]` written while the IRP is in a cancel-safe queue";
    /// IRPs still pending at unload or after close.
    IrpLeak = "C14", Violation, "IRP still pending or owned by the driver when it must be gone";
    /// An IRP not completed within the bound after IoCancelIrp.
    CancelNotHonoured = "C15", Violation, "cancelled IRP not completed in time";
    /// An illegal wait (IRQL or spin lock held).
    IllegalWait = "C16", Fatal, "wait at DISPATCH_LEVEL or above, or while holding a spin lock";
    /// Spin lock misuse: bad release IRQL, not held, wrong order, re-acquire.
    SpinLockMisuse = "C17", Fatal, "spin lock misused";
    /// AtDpcLevel/FromDpcLevel variants below DISPATCH_LEVEL.
    DpcLevelVariant = "C18", Violation, "AtDpcLevel/FromDpcLevel spin lock routine used below DISPATCH_LEVEL";
    /// A kernel routine called at an IRQL it does not allow.
    ApiIrql = "C19", Violation, "kernel routine called at an IRQL it does not allow";
    /// Wait = TRUE not followed by a wait.
    WaitNext = "C20", Violation, "Wait = TRUE not immediately followed by a wait";
    /// IRQL on return from a driver routine differs from entry.
    IrqlChanged = "C21", Fatal, "driver routine returned at a different IRQL than it was called at";
    /// Unbalanced critical regions.
    CriticalRegion = "C22", Fatal, "KeEnterCriticalRegion/KeLeaveCriticalRegion unbalanced";
    /// PsTerminateSystemThread from a non-system thread.
    TerminateNonSystem = "C23", Warning, "PsTerminateSystemThread called by a non-system thread";
    /// Memory with an inserted timer or queued/running DPC freed (0xC7).
    FreeActiveTimer = "C24", Fatal, "memory freed with an active timer or DPC in it (TIMER_OR_DPC_INVALID)";
    /// Unload with pending operations (0xCE).
    UnloadPending = "C25", Fatal, "driver unloaded without cancelling pending operations";
    /// The same KDPC used by KeSetTimer and KeInsertQueueDpc.
    DpcTimerAndQueue = "C26", Warning, "a KDPC passed both to KeSetTimer and to KeInsertQueueDpc";
    /// StartIo recursion.
    StartIoRecursion = "C27", Warning, "StartIo recursion without DeferredStartIo";
    /// IoSetStartIoAttributes(NonCancelable = FALSE) before any cancel routine is registered.
    StartIoCancel = "C27b", Warning, "IoSetStartIoAttributes(NonCancelable = FALSE) before a cancel routine was registered";
    /// IoStartPacket/IoStartNextPacket without DriverStartIo.
    NoStartIo = "C28", Fatal, "IoStartPacket or IoStartNextPacket on a driver without StartIo";
    /// KeReleaseSemaphore beyond the limit.
    SemaphoreLimit = "C29", Fatal, "semaphore released beyond its limit (STATUS_SEMAPHORE_LIMIT_EXCEEDED)";
    /// CsqInsertIrpEx returned an NT_SUCCESS code other than STATUS_SUCCESS.
    CsqInsertStatus = "C30", Warning, "CsqInsertIrpEx returned a success code other than STATUS_SUCCESS";
    /// IoCsqInsertIrp on an Ex queue whose callback refused the IRP.
    CsqNonExInsert = "C30a", Violation, "IoCsqInsertIrp on an IoCsqInitializeEx queue refused the IRP silently";
    /// A CSQ callback re-entering IoCsq* on the same queue.
    CsqReentry = "C31", Fatal, "cancel-safe queue callback re-entered IoCsq* on its own queue";
    /// CsqPeekNextIrp returned an IRP not in the queue or not after its argument.
    CsqPeek = "C32", Violation, "CsqPeekNextIrp returned an IRP that is not queued after its argument";
    /// An IO_CSQ_IRP_CONTEXT reused or freed too early.
    CsqContext = "C33", Violation, "IO_CSQ_IRP_CONTEXT freed or reused while its IRP is queued";
    /// Remove lock misuse.
    RemoveLock = "C34", Violation, "remove lock misused";
    /// Every thread waits and nothing is scheduled.
    Deadlock = "DEADLOCK", Fatal, "the machine is deadlocked";
    /// A Rust panic inside an emulated thread.
    Panic = "PANIC", Fatal, "an emulated thread panicked";
    /// Memory or objects left behind.
    Leak = "LEAK", Violation, "memory or objects left behind";
    /// ExFreePool of something that is not a live pool block (BAD_POOL_CALLER).
    BadPool = "POOL", Fatal, "pool block freed twice or never allocated (BAD_POOL_CALLER)";
    /// KeBugCheckEx called.
    BugCheck = "BUGCHECK", Fatal, "KeBugCheckEx was called";
    /// The end of a run (not an error; parks what is left).
    EndOfRun = "END", Warning, "the run ended";
    /// A framework's IRP ownership value dropped without completing or handing off the IRP.
    IrpDropped = "F1", Violation, "IRP ownership dropped without completing or handing off the IRP";
    /// A framework's cancel-safe-queue context ticket dropped without giving it back.
    TicketDropped = "F2", Violation, "tracked-IRP ticket dropped without giving it back to its queue";
}

/// One finding of the verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The rule.
    pub rule: Rule,
    /// How bad it is.
    pub severity: Severity,
    /// What happened, with the objects involved.
    pub message: String,
    /// The threads and routines involved: who did it, who raced with it.
    pub parties: Vec<String>,
    /// When (interrupt time, 100 ns).
    pub time: u64,
}

impl Report {
    pub(crate) fn new(rule: Rule, message: String, parties: Vec<String>, time: u64) -> Report {
        Report {
            rule,
            severity: rule.default_severity(),
            message,
            parties,
            time,
        }
    }

    pub(crate) fn end_of_run(time: u64) -> Report {
        Report::new(Rule::EndOfRun, "end of run".into(), Vec::new(), time)
    }

    /// Whether the report halts the machine.
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Fatal
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Violation => "violation",
            Severity::Fatal => "FATAL",
        };
        write!(
            f,
            "verifier {} {} ({}) at {} ms: {}",
            self.rule.number(),
            sev,
            self.rule.title(),
            self.time / crate::clock::TICKS_PER_MS,
            self.message
        )?;
        if !self.parties.is_empty() {
            write!(f, " [parties: {}]", self.parties.join("; "))?;
        }
        Ok(())
    }
}

/// The verifier's state: whether it is on, and what it found.
#[derive(Debug)]
pub(crate) struct Verifier {
    enabled: bool,
    reports: Vec<Report>,
}

impl Verifier {
    pub(crate) fn new(enabled: bool) -> Self {
        Verifier {
            enabled,
            reports: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, r: Report) {
        if self.enabled || r.is_fatal() {
            self.reports.push(r);
        }
    }

    pub(crate) fn reports(&self) -> &[Report] {
        &self.reports
    }
}

impl crate::machine::World {
    /// Records a report with an explicit severity (for rules with a fatal and a non-fatal form).
    pub(crate) fn report_as(
        &mut self,
        rule: Rule,
        severity: Severity,
        message: String,
        parties: Vec<String>,
    ) {
        let mut r = Report::new(rule, message, parties, self.clock.now());
        r.severity = severity;
        let fatal = r.is_fatal();
        self.verifier.push(r.clone());
        if fatal && self.halted.is_none() {
            self.halted = Some(r);
        }
    }
}
