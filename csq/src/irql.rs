//! IRQL in the types: a proof token for code that runs at DISPATCH_LEVEL.

use core::marker::PhantomData;

use crate::sys;

/// Proof that the current CPU runs at DISPATCH_LEVEL for the lifetime `'a`: held by a spin-lock
/// guard, given to DPC and timer callbacks. Functions that need DISPATCH_LEVEL
/// (`SpinLock::lock_at_dpc_level`) take it; it is neither `Send` nor `Sync`, because IRQL is a
/// property of the CPU the code runs on.
#[derive(Clone, Copy, Debug)]
pub struct DispatchLevel<'a> {
    _cpu: PhantomData<&'a *mut ()>,
}

impl DispatchLevel<'_> {
    /// The token, for code the kernel calls at DISPATCH_LEVEL (DPC routines).
    ///
    /// # Safety
    /// The caller runs at DISPATCH_LEVEL and stays there for the token's lifetime.
    pub(crate) unsafe fn assume() -> Self {
        debug_assert_eq!(sys::current_irql(), sys::DISPATCH_LEVEL);
        DispatchLevel { _cpu: PhantomData }
    }
}

/// The current IRQL (`KeGetCurrentIrql`): 0 PASSIVE_LEVEL, 1 APC_LEVEL, 2 DISPATCH_LEVEL.
///
/// IRQL: any.
#[must_use]
pub fn current_irql() -> u8 {
    sys::current_irql()
}
