//! The scenario scripts of `tests/scenarios/` on every device they have an expected output for,
//! compared byte for byte (spec D 1–30, 33, 34, 36 where a script can express them; the list is
//! in `tests/README.md`). A failure lists every script that differs, with both outputs.
#![cfg(not(windows))]

use acceptance::{
    DEVICE_PLACEHOLDER, DEVICES, run_json, scenario_dir, scenarios, suite, without_device,
};

/// Runs every scenario that has an expected output for `device`; panics with all differences.
fn check_device(device: &str) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for s in scenarios(&scenario_dir()) {
        for (d, expected) in &s.expected {
            if *d != device {
                continue;
            }
            checked += 1;
            let (json, _) = run_json(device, &s.script);
            let expected = expected.replace(DEVICE_PLACEHOLDER, device);
            if json != expected {
                failures.push(format!(
                    "== {}.evs on {device}\n-- expected\n{expected}-- actual\n{json}",
                    s.name
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no scenario has an expected output for {device}"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} scenarios differ on {device}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn startio_gives_the_expected_output_of_every_scenario() {
    check_device("startio");
}

#[test]
fn csq_serial_gives_the_expected_output_of_every_scenario() {
    check_device("csq-serial");
}

#[test]
fn csq_concurrent_gives_the_expected_output_of_every_scenario() {
    check_device("csq-concurrent");
}

/// Every script says what it expects of both models.
#[test]
fn every_scenario_has_expected_outputs_for_all_three_devices() {
    for s in scenarios(&scenario_dir()) {
        let devices: Vec<&str> = s.expected.iter().map(|(d, _)| *d).collect();
        for device in DEVICES {
            assert!(
                devices.contains(&device),
                "{}.evs has no expected output for {device}",
                s.name
            );
        }
    }
}

/// `eventctl compare` on every script of the suite and of `samples/eventctl/scenarios/`: the
/// two model-S devices print the same lines (but for the device name), with no violation and
/// no leak, and model C is clean too.
#[test]
fn the_model_s_devices_agree_on_every_script_and_every_run_is_clean() {
    let mut failures = Vec::new();
    for s in suite() {
        let (startio, a) = run_json("startio", &s.script);
        let (serial, b) = run_json("csq-serial", &s.script);
        let (_, c) = run_json("csq-concurrent", &s.script);
        if without_device(&startio, "startio") != without_device(&serial, "csq-serial") {
            failures.push(format!(
                "== {}.evs: startio and csq-serial differ\n{}\n-- startio\n{startio}-- csq-serial\n{serial}",
                s.name, s.text
            ));
        }
        for (device, r) in [("startio", &a), ("csq-serial", &b), ("csq-concurrent", &c)] {
            if r.violations != 0 || r.leaks != 0 {
                failures.push(format!(
                    "== {}.evs on {device}: {} violations, {} leaks\n{}",
                    s.name,
                    r.violations,
                    r.leaks,
                    r.reports.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The FIFO scheduler makes runs reproducible: the same script gives the same output every time,
/// also many times in one process, where freed memory (IRPs, records) is reused at the same
/// addresses and a driver that mistakes a new object for an old one shows up.
#[test]
fn repeated_runs_are_identical() {
    let all = scenarios(&scenario_dir());
    for name in [
        "cancel-in-service-chain",
        "many-handles-mixed",
        "order-2-close-then-next",
    ] {
        let s = all
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}.evs"));
        for device in DEVICES {
            let (first, _) = run_json(device, &s.script);
            for i in 1..40 {
                let (again, _) = run_json(device, &s.script);
                assert_eq!(again, first, "{name}.evs on {device}: run {i} differs");
            }
        }
    }
}
