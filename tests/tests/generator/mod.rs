//! The random scripts of the equivalence property, shared by `equivalence.rs` (host-built
//! drivers) and `images.rs` (the cross-built images): opens, IRP-based registrations with random
//! due times, event registrations, resets, cancels, closes, and bad inputs (short `raw`, bad
//! type, other IOCTL codes, `badevent`). Times and due times come from small sets so that
//! completions, expiries and actions often fall on the same millisecond.

use std::fmt::Write as _;

use proptest::prelude::*;

/// A random script's text (always valid: `eventctl::script::parse` accepts it).
pub fn scripts() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((delta(), step()), 1..30),
        prop::sample::select(vec![0u64, 10, 100, 300]),
    )
        .prop_map(|(steps, tail)| script_text(&steps, tail))
}

/// One random step, before it is resolved against the script's state.
#[derive(Clone, Debug)]
pub enum Step {
    Open,
    Irp { h: u8, due: Due },
    Event { e: u8, h: u8, due_ms: u64 },
    BadEvent { h: u8, invalid: bool },
    ShortRaw { h: u8, len: u32 },
    BadType { h: u8, ty: u32 },
    OtherIoctl { h: u8, code: u32, len: Option<u32> },
    Cancel { r: u8 },
    Close { h: u8 },
    Reset { e: u8 },
}

#[derive(Clone, Debug)]
pub enum Due {
    Ms(u64),
    Raw(i64),
}

fn due() -> impl Strategy<Value = Due> {
    prop_oneof![
        4 => prop::sample::select(vec![0u64, 10, 20, 50, 100, 200]).prop_map(Due::Ms),
        1 => prop::sample::select(vec![0i64, 1, 5_000, 100_000, -100_000, 1_000_000, -1_999_999])
            .prop_map(Due::Raw),
    ]
}

fn other_code() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![0x0022_2004u32, 0x0022_2003, 0x0022_0000, 0x0022_200C]),
        // Any code with METHOD_BUFFERED or METHOD_NEITHER (ntsim fails the direct methods in
        // the I/O manager, before any driver sees them).
        (any::<u32>(), prop::bool::ANY)
            .prop_map(|(c, neither)| (c & !3) | if neither { 3 } else { 0 }),
    ]
    .prop_filter("not IOCTL_REGISTER_EVENT", |c| *c != 0x0022_2000)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Open),
        10 => (any::<u8>(), due()).prop_map(|(h, due)| Step::Irp { h, due }),
        3 => (any::<u8>(), any::<u8>(), prop::sample::select(vec![0u64, 10, 50, 100, 150]))
            .prop_map(|(e, h, due_ms)| Step::Event { e, h, due_ms }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(h, invalid)| Step::BadEvent { h, invalid }),
        1 => (any::<u8>(), 0u32..24).prop_map(|(h, len)| Step::ShortRaw { h, len }),
        1 => (any::<u8>(), 2u32..).prop_map(|(h, ty)| Step::BadType { h, ty }),
        1 => (any::<u8>(), other_code(), prop::option::of(0u32..40))
            .prop_map(|(h, code, len)| Step::OtherIoctl { h, code, len }),
        5 => any::<u8>().prop_map(|r| Step::Cancel { r }),
        2 => any::<u8>().prop_map(|h| Step::Close { h }),
        1 => any::<u8>().prop_map(|e| Step::Reset { e }),
    ]
}

fn delta() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![0u64, 0, 0, 5, 10, 10, 20, 50, 100])
}

/// Resolves the steps against the script's state (open handles, requests, events) into a
/// valid script; steps that name nothing valid are dropped.
pub fn script_text(steps: &[(u64, Step)], tail: u64) -> String {
    let mut text = String::from("at 0 open h1\n");
    let mut t = 0;
    let mut handles = 1;
    let mut open: Vec<u32> = vec![1];
    let mut requests = 0;
    let mut events: Vec<u8> = Vec::new();
    let pick = |open: &[u32], i: u8| open.get(usize::from(i) % open.len().max(1)).copied();
    for (d, s) in steps {
        t += d;
        let mut req = || {
            requests += 1;
            format!("r{requests}")
        };
        let line = match s {
            Step::Open if handles < 4 => {
                handles += 1;
                open.push(handles);
                format!("open h{handles}")
            }
            Step::Open => continue,
            Step::Irp { h, due } => {
                let Some(h) = pick(&open, *h) else { continue };
                match due {
                    Due::Ms(ms) => format!("irp {} h{h} due={ms}", req()),
                    Due::Raw(n) => format!("irp {} h{h} due100ns={n}", req()),
                }
            }
            Step::Event { e, h, due_ms } => {
                let Some(h) = pick(&open, *h) else { continue };
                let e = e % 3 + 1;
                if !events.contains(&e) {
                    events.push(e);
                }
                format!("event e{e} h{h} due={due_ms}")
            }
            Step::BadEvent { h, invalid } => {
                let Some(h) = pick(&open, *h) else { continue };
                let which = if *invalid { "invalid" } else { "not-event" };
                format!("badevent {} h{h} handle={which}", req())
            }
            Step::ShortRaw { h, len } => {
                let Some(h) = pick(&open, *h) else { continue };
                format!("raw {} h{h} len={len} due=10", req())
            }
            Step::BadType { h, ty } => {
                let Some(h) = pick(&open, *h) else { continue };
                format!("raw {} h{h} len=24 type={ty} due=10", req())
            }
            Step::OtherIoctl { h, code, len } => {
                let Some(h) = pick(&open, *h) else { continue };
                let mut line = format!("ioctl {} h{h} code={code:#x}", req());
                if let Some(len) = len {
                    let _ = write!(line, " len={len}");
                }
                line
            }
            Step::Cancel { r } if requests > 0 => {
                format!("cancel r{}", u32::from(*r) % requests + 1)
            }
            Step::Cancel { .. } => continue,
            Step::Close { h } => {
                let Some(i) = (!open.is_empty()).then(|| usize::from(*h) % open.len()) else {
                    continue;
                };
                format!("close h{}", open.remove(i))
            }
            Step::Reset { e } => {
                let Some(e) = events.get(usize::from(*e) % events.len().max(1)) else {
                    continue;
                };
                format!("reset e{e}")
            }
        };
        let _ = writeln!(text, "at {t} {line}");
    }
    let _ = writeln!(text, "at {} end", t + tail);
    text
}
