//! The cross-built driver images (issue 6): `startio_event.sys` and `csq_event.sys`, built by
//! `scripts/windows-build.sh` and loaded into ntsim through `eventctl`'s `--image`, run every
//! script of the suite ([`acceptance::suite`], the list `scenarios.rs` runs) on every device
//! they serve, and must print byte for byte what the host-built drivers print — and so the
//! expected outputs — with zero verifier violations and zero leaks. Then the equivalence
//! property's random scripts on the two model-S images (each also against its host-built
//! driver), and the refusals (`eventctl` exits 4).
//!
//! The images come from `$NTSIM_TEST_IMAGES` (e.g. `target/windows/out`; CI sets it right after
//! the Windows build, in `.ci/windows`). Unset, every test prints a notice and passes.
//! `IMAGE_PROPTEST_CASES` sets the number of random scripts (default [`DEFAULT_CASES`]).
#![cfg(not(windows))]

mod generator;

use std::path::{Path, PathBuf};

use acceptance::{DEVICE_PLACEHOLDER, DEVICES, run_json, run_json_on, suite, without_device};
use eventctl::cli::{CSQ_IMAGE, Command, Context, Exit, STARTIO_IMAGE, execute};
use eventctl::devices::backend_with_image;
use eventctl::script::parse;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Random scripts per run when `IMAGE_PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 300;

/// The images' folder, or `None` after a notice when `NTSIM_TEST_IMAGES` is unset. A missing
/// image with the variable set fails the test: CI sets it right after building them.
fn images() -> Option<PathBuf> {
    let Some(dir) = acceptance::test_images_dir() else {
        eprintln!(
            "skipped: NTSIM_TEST_IMAGES is not set (run scripts/windows-build.sh, then set it to target/windows/out)"
        );
        return None;
    };
    for file in [STARTIO_IMAGE, CSQ_IMAGE] {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "{} is missing (NTSIM_TEST_IMAGES={})",
            path.display(),
            dir.display()
        );
    }
    Some(dir)
}

/// The image that serves `device`.
fn image_for(dir: &Path, device: &str) -> PathBuf {
    dir.join(if device == "startio" {
        STARTIO_IMAGE
    } else {
        CSQ_IMAGE
    })
}

/// Every script of the suite on every device `devices` names, on its image and on the
/// host-built driver; returns one message per difference, violation or leak.
fn check_suite(dir: &Path, devices: &[&str]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut runs = 0;
    for s in suite() {
        for &device in devices {
            runs += 1;
            let image = image_for(dir, device);
            let (on_image, r) = run_json_on(device, Some(&image), &s.script);
            let (on_host, _) = run_json(device, &s.script);
            if on_image != on_host {
                failures.push(format!(
                    "== {}.evs on {device}: the image and the host-built driver differ\n\
                     -- host-built\n{on_host}-- {}\n{on_image}",
                    s.name,
                    image.display()
                ));
            }
            if let Some((_, expected)) = s.expected.iter().find(|(d, _)| *d == device) {
                let expected = expected.replace(DEVICE_PLACEHOLDER, device);
                if on_image != expected {
                    failures.push(format!(
                        "== {}.evs on {device} (image): not the expected output\n\
                         -- expected\n{expected}-- image\n{on_image}",
                        s.name
                    ));
                }
            }
            if r.violations != 0 || r.leaks != 0 {
                failures.push(format!(
                    "== {}.evs on {device} (image): {} violations, {} leaks\n{}",
                    s.name,
                    r.violations,
                    r.leaks,
                    r.reports.join("\n")
                ));
            }
        }
    }
    (runs, failures)
}

fn assert_suite(devices: &[&str]) {
    let Some(dir) = images() else { return };
    let (runs, failures) = check_suite(&dir, devices);
    assert!(runs > 0, "the suite is empty");
    assert!(
        failures.is_empty(),
        "{} problem(s) in {runs} runs on the images:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn startio_image_prints_what_the_host_built_driver_prints_on_every_script() {
    assert_suite(&DEVICES[..1]);
}

#[test]
fn csq_image_prints_what_the_host_built_driver_prints_on_every_script_and_device() {
    assert_suite(&DEVICES[1..]);
}

fn cases() -> u32 {
    std::env::var("IMAGE_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The equivalence property on the images: random scripts give the same output on the
/// `startio` image and the `csq-serial` image, with zero violations and zero leaks; each image
/// (and the csq image's model-C device) prints what its host-built driver prints.
#[test]
fn the_model_s_images_agree_on_random_scripts() {
    let Some(dir) = images() else { return };
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        // The script is printed by the failure; no regression file in the source tree.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&generator::scripts(), |text| {
        let script = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut outputs = Vec::new();
        for device in DEVICES {
            let (on_image, r) = run_json_on(device, Some(&image_for(&dir, device)), &script);
            if r.violations != 0 || r.leaks != 0 {
                return Err(TestCaseError::fail(format!(
                    "the {device} image on this script: {} violations, {} leaks\n{}\n{text}",
                    r.violations,
                    r.leaks,
                    r.reports.join("\n")
                )));
            }
            let (on_host, _) = run_json(device, &script);
            if on_image != on_host {
                return Err(TestCaseError::fail(format!(
                    "{device}: the image and the host-built driver differ on this script:\n\
                     {text}-- host-built\n{on_host}-- image\n{on_image}"
                )));
            }
            outputs.push(without_device(&on_image, device));
        }
        if outputs[0] != outputs[1] {
            return Err(TestCaseError::fail(format!(
                "the startio and csq-serial images differ on this script:\n{text}\
                 -- startio\n{}-- csq-serial\n{}",
                outputs[0], outputs[1]
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// `eventctl run --image` exactly as the binary runs it: the exit status and stderr.
fn eventctl_run(script: &Path, device: &str, image: &Path) -> (Exit, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = execute(
        &Command::Run {
            script: script.to_owned(),
            device: device.to_owned(),
            json: true,
            image: Some(image.to_owned()),
        },
        &mut Context {
            backends: &backend_with_image,
            out: &mut out,
            err: &mut err,
            width: 100,
        },
    );
    (
        exit,
        String::from_utf8(out).expect("UTF-8"),
        String::from_utf8(err).expect("UTF-8"),
    )
}

/// An image that imports a routine ntsim lacks (the real `startio_event.sys` with one import
/// renamed) and a missing file: `eventctl run --image` exits 4 and names the import, the file.
/// The unchanged image runs clean through the same path.
#[test]
fn eventctl_refuses_a_missing_file_and_an_image_with_an_unknown_import() {
    let Some(dir) = images() else { return };
    let script = acceptance::scenario_dir().join("d01-irp-1s.evs");
    let good = dir.join(STARTIO_IMAGE);
    let (exit, out, err) = eventctl_run(&script, "startio", &good);
    assert_eq!(exit, Exit::Clean, "{err}");
    assert!(out.ends_with("\"violations\":0,\"leaks\":0}}\n"), "{out}");

    let tmp = std::env::temp_dir().join(format!("acceptance-images-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("a temp dir");
    let mut bytes = std::fs::read(&good).expect("the image");
    // The hint/name entry `IoCreateDevice\0` becomes `IoCreateDevicX\0`: same length, so the
    // import directory stays valid and only the name is unknown.
    let (from, to) = (b"IoCreateDevice\0", b"IoCreateDevicX\0");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("startio_event.sys imports IoCreateDevice");
    bytes[at..at + to.len()].copy_from_slice(to);
    let bad = tmp.join("renamed_import.sys");
    std::fs::write(&bad, &bytes).expect("write the image");
    let (exit, out, err) = eventctl_run(&script, "startio", &bad);
    assert_eq!(exit, Exit::Failure, "{err}");
    assert_eq!(Exit::Failure.code(), 4);
    assert_eq!(out, "");
    assert!(
        err.contains("ntoskrnl.exe!IoCreateDevicX, which ntsim does not provide"),
        "{err}"
    );
    assert!(err.contains(&bad.display().to_string()), "{err}");

    let missing = tmp.join("no_such.sys");
    let (exit, _, err) = eventctl_run(&script, "csq-serial", &missing);
    assert_eq!(exit, Exit::Failure, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: csq-serial: cannot load the driver image {}: cannot read",
            missing.display()
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
