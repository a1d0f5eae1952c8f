//! `DbgPrint`, `DbgPrintEx` and the breakpoint routines: what a driver prints is captured as
//! its log ([`super::LoadedImage::debug_log`]); set `NTSIM_DBGPRINT=1` to echo it to stderr.
//!
//! The Windows x64 convention passes variadic arguments exactly like fixed ones (the first four
//! in RCX, RDX, R8, R9, the rest in the caller's outgoing stack slots), so a `win64` entry point
//! with the format and a run of 64-bit slots reads the first arguments. Floating-point
//! conversions are not supported (kernel code does not print floats).

use crate::ntdef::{NTSTATUS, STATUS_SUCCESS, ULONG};

use super::registry;

/// Longest string a `%s`-like conversion reads (a guard against a missing terminator).
const MAX_STRING: usize = 64 * 1024;

/// Argument slots after the format that the entry points can read.
const SLOTS: usize = 12;

fn record(text: String) {
    if std::env::var_os("NTSIM_DBGPRINT").is_some() {
        eprint!("{text}");
    }
    match registry::current() {
        Some(image) => image
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text),
        None => eprint!("DbgPrint outside any driver image: {text}"),
    }
}

/// `DbgPrint(Format, ...)`: captures the formatted text. Returns STATUS_SUCCESS.
///
/// IRQL: any (DIRQL included, as on Windows).
///
/// # Safety
/// `format` must be a NUL-terminated string whose conversions match the arguments passed.
#[allow(clippy::too_many_arguments)]
pub unsafe extern "win64" fn DbgPrint(
    format: *const u8,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    a6: u64,
    a7: u64,
    a8: u64,
    a9: u64,
    a10: u64,
    a11: u64,
    a12: u64,
) -> NTSTATUS {
    let args: [u64; SLOTS] = [a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12];
    // SAFETY: the caller's format describes its arguments.
    record(unsafe { format_dbgprint(format, &args) });
    STATUS_SUCCESS
}

/// `DbgPrintEx(ComponentId, Level, Format, ...)`: captures the text whatever the component
/// and level (the filter masks of a real debugger are not modelled). Returns STATUS_SUCCESS.
///
/// IRQL: any.
///
/// # Safety
/// As [`DbgPrint`].
#[allow(clippy::too_many_arguments)]
pub unsafe extern "win64" fn DbgPrintEx(
    _component: ULONG,
    _level: ULONG,
    format: *const u8,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    a6: u64,
    a7: u64,
    a8: u64,
    a9: u64,
    a10: u64,
) -> NTSTATUS {
    let args = [a1, a2, a3, a4, a5, a6, a7, a8, a9, a10];
    // SAFETY: the caller's format describes its arguments.
    record(unsafe { format_dbgprint(format, &args) });
    STATUS_SUCCESS
}

fn note_breakpoint() {
    if let Some(image) = registry::current() {
        *image.breakpoints.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

/// `DbgBreakPoint`: a no-op (no debugger is attached); counted per image.
///
/// IRQL: any.
pub fn DbgBreakPoint() {
    note_breakpoint();
}

/// `DbgBreakPointWithStatus`: as [`DbgBreakPoint`].
///
/// IRQL: any.
pub fn DbgBreakPointWithStatus(_status: ULONG) {
    note_breakpoint();
}

/// One parsed conversion specification.
#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    /// Integer size in bits (32 unless a length modifier says otherwise).
    bits: u32,
    /// `l`/`w` (wide characters and strings) or `h` (narrow).
    wide: Option<bool>,
}

/// Formats a `DbgPrint` format string with its arguments, one 64-bit slot per argument.
///
/// Supported: flags `- + space # 0`, width and precision (digits or `*`), length modifiers
/// `h hh l ll w z I I32 I64`, conversions `d i u x X o c C s S Z p %` — so `%s %d %u %x %X %p
/// %c %ld %lu %lx %llx %I64x %wZ %ws %S %%` and their widths (`%08x`, `%-10s`, `%.*s`). `%p`
/// prints 16 upper-case hex digits as Windows does; NULL strings print `(null)`. Missing
/// arguments read as 0; an unknown conversion is copied as written.
///
/// # Safety
/// `format` must be NULL or a NUL-terminated string; each string conversion's argument must
/// be NULL or point to a string of its kind (`%wZ`/`%Z` to a UNICODE_STRING/ANSI_STRING).
pub unsafe fn format_dbgprint(format: *const u8, args: &[u64]) -> String {
    if format.is_null() {
        return String::new();
    }
    // SAFETY: the caller guarantees a NUL-terminated format.
    let fmt = unsafe { narrow(format, None) };
    let mut args = args.iter().copied();
    let mut next = move || args.next().unwrap_or(0);
    let mut out: Vec<u8> = Vec::with_capacity(fmt.len());
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        let mut s = Spec {
            bits: 32,
            ..Spec::default()
        };
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => s.left = true,
                b'+' => s.plus = true,
                b' ' => s.space = true,
                b'#' => s.alt = true,
                b'0' => s.zero = true,
                _ => break,
            }
            i += 1;
        }
        if fmt.get(i) == Some(&b'*') {
            i += 1;
            let w = next() as i32;
            s.left |= w < 0;
            s.width = w.unsigned_abs() as usize;
        } else {
            s.width = digits(&fmt, &mut i);
        }
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            s.precision = Some(if fmt.get(i) == Some(&b'*') {
                i += 1;
                (next() as i32).max(0) as usize
            } else {
                digits(&fmt, &mut i)
            });
        }
        let rest = &fmt[i..];
        let (bits, wide, skip) = match rest {
            [b'I', b'6', b'4', ..] => (64, None, 3),
            [b'I', b'3', b'2', ..] => (32, None, 3),
            [b'h', b'h', ..] => (8, Some(false), 2),
            [b'l', b'l', ..] => (64, None, 2),
            [b'I', ..] | [b'z', ..] => (64, None, 1),
            [b'h', ..] => (16, Some(false), 1),
            [b'l', ..] | [b'w', ..] => (32, Some(true), 1),
            _ => (32, None, 0),
        };
        s.bits = bits;
        s.wide = wide;
        i += skip;
        let Some(&conv) = fmt.get(i) else {
            out.extend_from_slice(&fmt[start..]);
            break;
        };
        i += 1;
        let text: Vec<u8> = match conv {
            b'%' => b"%".to_vec(),
            b'd' | b'i' => {
                let v = sign_extend(next(), s.bits);
                integer(&s, v < 0, v.unsigned_abs(), 10, false, "")
            }
            b'u' => integer(&s, false, truncate(next(), s.bits), 10, false, ""),
            b'x' => integer(&s, false, truncate(next(), s.bits), 16, false, "0x"),
            b'X' => integer(&s, false, truncate(next(), s.bits), 16, true, "0X"),
            b'o' => integer(&s, false, truncate(next(), s.bits), 8, false, "0"),
            b'p' => {
                let digits = format!("{:016X}", next());
                pad(&s, digits.into_bytes())
            }
            b'c' | b'C' => {
                let wide = s.wide.unwrap_or(conv == b'C');
                let v = next();
                let ch = if wide {
                    String::from_utf16_lossy(&[v as u16])
                } else {
                    String::from_utf8_lossy(&[v as u8]).into_owned()
                };
                pad(&s, ch.into_bytes())
            }
            b's' | b'S' => {
                let wide = s.wide.unwrap_or(conv == b'S');
                let p = next() as usize;
                let text = if p == 0 {
                    b"(null)".to_vec()
                } else if wide {
                    // SAFETY: the caller guarantees a NUL-terminated wide string.
                    let units = unsafe { wide_units(p as *const u16, s.precision) };
                    String::from_utf16_lossy(&units).into_bytes()
                } else {
                    // SAFETY: the caller guarantees a NUL-terminated string.
                    unsafe { narrow(p as *const u8, s.precision) }
                };
                pad(&s, text)
            }
            b'Z' => {
                let p = next() as usize;
                // SAFETY: the caller guarantees a counted string of the kind the modifier says.
                let text = unsafe { counted(p, s.wide == Some(true)) };
                let text = match s.precision {
                    Some(n) if n < text.len() => text[..n].to_vec(),
                    _ => text,
                };
                pad(&s, text)
            }
            _ => fmt[start..i].to_vec(),
        };
        out.extend_from_slice(&text);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn digits(fmt: &[u8], i: &mut usize) -> usize {
    let mut n = 0usize;
    while let Some(d) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
        *i += 1;
    }
    n
}

fn truncate(v: u64, bits: u32) -> u64 {
    if bits >= 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    }
}

/// An integer conversion: digits (at least `precision` of them), sign or `#` prefix, padding.
fn integer(
    s: &Spec,
    negative: bool,
    magnitude: u64,
    radix: u32,
    upper: bool,
    alt: &str,
) -> Vec<u8> {
    let mut digits = match radix {
        16 if upper => format!("{magnitude:X}"),
        16 => format!("{magnitude:x}"),
        8 => format!("{magnitude:o}"),
        _ => magnitude.to_string(),
    };
    if let Some(p) = s.precision {
        if p == 0 && magnitude == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = if negative {
        "-"
    } else if radix == 10 && s.plus {
        "+"
    } else if radix == 10 && s.space {
        " "
    } else if s.alt && magnitude != 0 {
        alt
    } else {
        ""
    };
    if s.zero && !s.left && s.precision.is_none() {
        while prefix.len() + digits.len() < s.width {
            digits.insert(0, '0');
        }
    }
    pad(s, format!("{prefix}{digits}").into_bytes())
}

/// Pads to the field width with spaces, on the left unless `-` was given.
fn pad(s: &Spec, mut text: Vec<u8>) -> Vec<u8> {
    let len = String::from_utf8_lossy(&text).chars().count();
    if len < s.width {
        let fill = vec![b' '; s.width - len];
        if s.left {
            text.extend_from_slice(&fill);
        } else {
            text.splice(0..0, fill);
        }
    }
    text
}

/// The bytes of a NUL-terminated string, at most `max` of them.
///
/// # Safety
/// `p` must point to a NUL-terminated string (or to at least `max` readable bytes).
unsafe fn narrow(p: *const u8, max: Option<usize>) -> Vec<u8> {
    let limit = max.unwrap_or(MAX_STRING).min(MAX_STRING);
    let mut v = Vec::new();
    while v.len() < limit {
        // SAFETY: the caller guarantees the bytes up to the terminator (or the limit).
        let b = unsafe { p.wrapping_add(v.len()).read() };
        if b == 0 {
            break;
        }
        v.push(b);
    }
    v
}

/// The units of a NUL-terminated UTF-16 string, at most `max` of them.
///
/// # Safety
/// As [`narrow`], for UTF-16.
unsafe fn wide_units(p: *const u16, max: Option<usize>) -> Vec<u16> {
    let limit = max.unwrap_or(MAX_STRING).min(MAX_STRING);
    let mut v = Vec::new();
    while v.len() < limit {
        // SAFETY: the caller guarantees the units up to the terminator (or the limit).
        let u = unsafe { p.wrapping_add(v.len()).read_unaligned() };
        if u == 0 {
            break;
        }
        v.push(u);
    }
    v
}

/// A counted string: UNICODE_STRING (`wide`) or ANSI_STRING, both `{ USHORT Length; USHORT
/// MaximumLength; PVOID Buffer; }` with the buffer at offset 8 and `Length` in bytes.
///
/// # Safety
/// `p` must be 0 or point to such a string whose buffer holds `Length` bytes.
unsafe fn counted(p: usize, wide: bool) -> Vec<u8> {
    if p == 0 {
        return b"(null)".to_vec();
    }
    // SAFETY: the caller guarantees a counted string at `p`.
    let len = unsafe { (p as *const u16).read_unaligned() } as usize;
    // SAFETY: as above; the buffer pointer is at offset 8.
    let buf = unsafe { ((p + 8) as *const usize).read_unaligned() };
    if buf == 0 {
        return b"(null)".to_vec();
    }
    if wide {
        // SAFETY: the buffer holds `len` bytes of UTF-16.
        let units = unsafe { std::slice::from_raw_parts(buf as *const u16, len / 2) };
        String::from_utf16_lossy(units).into_bytes()
    } else {
        // SAFETY: the buffer holds `len` bytes.
        unsafe { std::slice::from_raw_parts(buf as *const u8, len) }.to_vec()
    }
}
