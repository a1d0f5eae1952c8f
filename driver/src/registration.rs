//! Validation of an `IOCTL_REGISTER_EVENT` request (spec B.1 "Dispatch", decisions E5): every
//! error here is returned synchronously, before anything is queued or allocated.

use csq::{Interval, IrpView, NtStatus};

use crate::interface::{
    DUE_TIME_OFFSET, EVENT_BASED, EVENT_OFFSET, IOCTL_REGISTER_EVENT, IRP_BASED,
    REGISTER_EVENT_SIZE, TYPE_OFFSET,
};

/// What the client asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// Keep the IOCTL pending until the due time.
    IrpBased,
    /// Complete the IOCTL at once and signal the event behind this handle at the due time.
    EventBased { handle: usize },
}

/// A valid registration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Registration {
    pub(crate) kind: Kind,
    /// The relative due time.
    pub(crate) due: Interval,
}

/// Checks a device-control request: the control code, then the input's length and type.
///
/// # Errors
/// `STATUS_NOT_IMPLEMENTED` for another control code; `STATUS_INVALID_PARAMETER` for an input
/// shorter than `REGISTER_EVENT` or an unknown type. A longer input is accepted, its extra bytes
/// ignored.
pub(crate) fn parse(irp: &IrpView) -> Result<Registration, NtStatus> {
    if irp.ioctl_code() != Some(IOCTL_REGISTER_EVENT) {
        return Err(NtStatus::NOT_IMPLEMENTED);
    }
    let input = irp.buffered_input();
    if input.len() < REGISTER_EVENT_SIZE {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    let kind = match u32_at(input, TYPE_OFFSET) {
        IRP_BASED => Kind::IrpBased,
        EVENT_BASED => Kind::EventBased {
            handle: u64_at(input, EVENT_OFFSET) as usize,
        },
        _ => return Err(NtStatus::INVALID_PARAMETER),
    };
    let due = due_interval(u64_at(input, DUE_TIME_OFFSET) as i64);
    Ok(Registration { kind, due })
}

/// The relative wait a `DueTime` stands for: a negative value is relative already; a positive
/// one is negated, so it is relative too (the sample's rule, spec B.1 step 2: not an absolute
/// date); 0 expires at once.
pub(crate) fn due_interval(due_time: i64) -> Interval {
    Interval::from_100ns(due_time.unsigned_abs())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_due_times_are_negated_and_zero_is_at_once() {
        assert_eq!(due_interval(-10_000_000), Interval::from_100ns(10_000_000));
        assert_eq!(due_interval(10_000_000), Interval::from_100ns(10_000_000));
        assert_eq!(due_interval(0), Interval::ZERO);
        assert_eq!(due_interval(i64::MIN), Interval::from_100ns(1 << 63));
    }
}
