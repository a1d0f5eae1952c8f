//! The C run-time routines that `ntoskrnl.exe` exports and images may import instead of
//! carrying their own: `mem*`, `strlen`/`wcslen`, the `Rtl*Memory` family and `__chkstk`.

/// `memset`.
///
/// # Safety
/// `dest` must be valid for `count` bytes of writes.
pub unsafe fn memset(dest: *mut u8, value: i32, count: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the destination range.
    unsafe { dest.write_bytes(value as u8, count) };
    dest
}

/// `memcpy` (overlap tolerated, as `memmove`).
///
/// # Safety
/// `src` must be valid for `count` bytes of reads and `dest` for `count` bytes of writes.
pub unsafe fn memcpy(dest: *mut u8, src: *const u8, count: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges.
    unsafe { std::ptr::copy(src, dest, count) };
    dest
}

/// `memmove`.
///
/// # Safety
/// As [`memcpy`].
pub unsafe fn memmove(dest: *mut u8, src: *const u8, count: usize) -> *mut u8 {
    // SAFETY: forwarded caller contract.
    unsafe { memcpy(dest, src, count) }
}

/// `memcmp`: the sign of the first differing byte pair (as unsigned bytes).
///
/// # Safety
/// Both must be valid for `count` bytes of reads.
pub unsafe fn memcmp(a: *const u8, b: *const u8, count: usize) -> i32 {
    // SAFETY: the caller guarantees `a`'s range.
    let x = unsafe { std::slice::from_raw_parts(a, count) };
    // SAFETY: the caller guarantees `b`'s range.
    let y = unsafe { std::slice::from_raw_parts(b, count) };
    x.iter()
        .zip(y)
        .find(|(p, q)| p != q)
        .map_or(0, |(p, q)| i32::from(*p) - i32::from(*q))
}

/// `strlen`.
///
/// # Safety
/// `s` must be a NUL-terminated string.
pub unsafe fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a terminator, so every byte up to it is readable.
    while unsafe { s.wrapping_add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// `wcslen`.
///
/// # Safety
/// `s` must be a NUL-terminated UTF-16 string.
pub unsafe fn wcslen(s: *const u16) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a terminator.
    while unsafe { s.wrapping_add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// `RtlCopyMemory` / `RtlMoveMemory` (overlap tolerated).
///
/// # Safety
/// As [`memcpy`].
pub unsafe fn RtlCopyMemory(dest: *mut u8, src: *const u8, length: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { memcpy(dest, src, length) };
}

/// `RtlZeroMemory`.
///
/// # Safety
/// `dest` must be valid for `length` bytes of writes.
pub unsafe fn RtlZeroMemory(dest: *mut u8, length: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { dest.write_bytes(0, length) };
}

/// `RtlFillMemory`.
///
/// # Safety
/// `dest` must be valid for `length` bytes of writes.
pub unsafe fn RtlFillMemory(dest: *mut u8, length: usize, fill: u8) {
    // SAFETY: forwarded caller contract.
    unsafe { dest.write_bytes(fill, length) };
}

/// `RtlCompareMemory`: how many leading bytes are equal.
///
/// # Safety
/// Both must be valid for `length` bytes of reads.
pub unsafe fn RtlCompareMemory(a: *const u8, b: *const u8, length: usize) -> usize {
    // SAFETY: the caller guarantees `a`'s range.
    let x = unsafe { std::slice::from_raw_parts(a, length) };
    // SAFETY: the caller guarantees `b`'s range.
    let y = unsafe { std::slice::from_raw_parts(b, length) };
    x.iter().zip(y).take_while(|(p, q)| p == q).count()
}

// `__chkstk` is called with the frame size in RAX and must preserve every register but R10 and
// R11; on x64 it only probes the pages (the caller moves RSP itself). Emulated threads run on
// host thread stacks that are mapped in full, so there is nothing to probe: it returns.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.ntsim_image_chkstk,\"ax\",@progbits",
    ".globl ntsim_image_chkstk",
    ".p2align 4",
    "ntsim_image_chkstk:",
    "ret",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// The assembly stack probe above (not callable from Rust: its convention is its own).
    fn ntsim_image_chkstk();
}

/// The address of the `__chkstk` entry point.
pub(crate) fn chkstk_address() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        ntsim_image_chkstk as *const () as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}
