//! The equivalence property (contract: "both model-S drivers must produce identical
//! observations"): random scripts — opens, IRP-based registrations with random due times,
//! event registrations, resets, cancels, closes, and bad inputs (short `raw`, bad type, other
//! IOCTL codes, `badevent`) — give the same output on `startio` and `csq-serial`, with zero
//! verifier violations and zero leaks; the same scripts on `csq-concurrent` (model C) are clean
//! too.
//!
//! Times and due times come from small sets so that completions, expiries and actions often
//! fall on the same millisecond: the order of one instant is where the two drivers could
//! differ. `PROPTEST_CASES` sets the number of scripts (default [`DEFAULT_CASES`]); a failure
//! prints the (shrunk) script.
#![cfg(not(windows))]

mod generator;

use acceptance::{run_json, without_device};
use eventctl::script::parse;
use generator::{Due, Step, script_text, scripts};
use proptest::prelude::*;

/// Scripts per run when `PROPTEST_CASES` is not set: about 25 s on 2 cores.
const DEFAULT_CASES: u32 = 3000;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // The script is printed by the assertion; no regression file in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn startio_and_csq_serial_agree_on_random_scripts(text in scripts()) {
        let script = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let (startio, a) = run_json("startio", &script);
        let (serial, b) = run_json("csq-serial", &script);
        prop_assert_eq!(
            without_device(&startio, "startio"),
            without_device(&serial, "csq-serial"),
            "startio and csq-serial differ on this script:\n{}", text
        );
        for (device, r) in [("startio", &a), ("csq-serial", &b)] {
            prop_assert!(
                r.violations == 0 && r.leaks == 0,
                "{} on this script: {} violations, {} leaks\n{}\n{}",
                device, r.violations, r.leaks, r.reports.join("\n"), text
            );
        }
        let (_, c) = run_json("csq-concurrent", &script);
        prop_assert!(
            c.violations == 0 && c.leaks == 0,
            "csq-concurrent on this script: {} violations, {} leaks\n{}\n{}",
            c.violations, c.leaks, c.reports.join("\n"), text
        );
    }
}

#[test]
fn the_generator_writes_valid_scripts_with_every_verb() {
    let steps = vec![
        (0, Step::Open),
        (
            0,
            Step::Irp {
                h: 0,
                due: Due::Ms(10),
            },
        ),
        (
            5,
            Step::Irp {
                h: 1,
                due: Due::Raw(-100_000),
            },
        ),
        (
            0,
            Step::Event {
                e: 0,
                h: 0,
                due_ms: 50,
            },
        ),
        (
            0,
            Step::BadEvent {
                h: 0,
                invalid: true,
            },
        ),
        (0, Step::ShortRaw { h: 0, len: 16 }),
        (0, Step::BadType { h: 0, ty: 9 }),
        (
            0,
            Step::OtherIoctl {
                h: 0,
                code: 0x22_2004,
                len: Some(4),
            },
        ),
        (10, Step::Cancel { r: 0 }),
        (10, Step::Reset { e: 0 }),
        (10, Step::Close { h: 0 }),
        (10, Step::Close { h: 0 }),
        (
            10,
            Step::Irp {
                h: 0,
                due: Due::Ms(0),
            },
        ),
    ];
    let text = script_text(&steps, 100);
    assert_eq!(
        text,
        "at 0 open h1\nat 0 open h2\nat 0 irp r1 h1 due=10\nat 5 irp r2 h2 due100ns=-100000\n\
         at 5 event e1 h1 due=50\nat 5 badevent r3 h1 handle=invalid\n\
         at 5 raw r4 h1 len=16 due=10\nat 5 raw r5 h1 len=24 type=9 due=10\n\
         at 5 ioctl r6 h1 code=0x222004 len=4\nat 15 cancel r1\nat 25 reset e1\n\
         at 35 close h1\nat 45 close h2\nat 155 end\n"
    );
    parse(&text).expect("valid");
}
