//! Cross-crate acceptance tests (issue 4): the scenario scripts of `tests/scenarios/` with their
//! expected outputs on every device, the equivalence of the two model-S drivers on random
//! scripts, and the agreement of the three copies of the interface. See `tests/README.md`.
//!
//! This library holds what the test files share: running a script on a device through
//! `eventctl`'s backends, and finding the scenarios with their expected outputs.
#![cfg(not(windows))]

use std::path::{Path, PathBuf};

use eventctl::backend::RunResult;
use eventctl::devices::backend_with_image;
use eventctl::observation::format_json;
use eventctl::script::{Script, parse};

/// The three simulated devices.
pub const DEVICES: [&str; 3] = ["startio", "csq-serial", "csq-concurrent"];

/// The placeholder for the device name in a `.serial.out` file, which both model-S devices
/// share: the summary line is the only one that names the device.
pub const DEVICE_PLACEHOLDER: &str = "$DEVICE";

/// `eventctl run <script> --device <device> --json`'s output and the run itself.
///
/// # Panics
/// If the device has no backend or the run cannot be carried out.
pub fn run_json(device: &str, script: &Script) -> (String, RunResult) {
    run_json_on(device, None, script)
}

/// [`run_json`] with `--image`: the device runs the driver image at `image` (a cross-built
/// `.sys`) when one is given, else the host-built driver.
///
/// # Panics
/// If the device has no backend or the run cannot be carried out (e.g. the image is refused).
pub fn run_json_on(device: &str, image: Option<&Path>, script: &Script) -> (String, RunResult) {
    let mut backend = backend_with_image(device, image).unwrap_or_else(|e| panic!("{e}"));
    let result = backend.run(script).unwrap_or_else(|e| panic!("{e}"));
    let json = format_json(&result.observations, &result.summary(device));
    (json, result)
}

/// `json` with the summary's device name replaced by [`DEVICE_PLACEHOLDER`].
pub fn without_device(json: &str, device: &str) -> String {
    json.replace(
        &format!(r#""device":"{device}""#),
        &format!(r#""device":"{DEVICE_PLACEHOLDER}""#),
    )
}

/// One scenario script and the expected outputs that exist for it.
#[derive(Debug)]
pub struct Scenario {
    /// The file name without `.evs`.
    pub name: String,
    /// The script's text.
    pub text: String,
    /// The parsed script.
    pub script: Script,
    /// `(device, expected output)` for every device the script has an expected output for.
    pub expected: Vec<(&'static str, String)>,
}

/// The directory of the scenario scripts.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The directory of eventctl's shipped scenarios (`samples/eventctl/scenarios`): no expected
/// outputs, but the model-S devices must agree on them and every run must be clean.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/eventctl/scenarios")
}

/// Every script the suite runs: [`scenario_dir`]'s (with expected outputs), then
/// [`sample_dir`]'s. `tests/scenarios.rs` and `tests/images.rs` both take their scripts here.
pub fn suite() -> Vec<Scenario> {
    let mut all = scenarios(&scenario_dir());
    all.extend(scenarios(&sample_dir()));
    all
}

/// The cross-built images' folder from `$NTSIM_TEST_IMAGES` (a relative path is taken from the
/// workspace root, e.g. `target/windows/out`), or `None` when the variable is unset.
pub fn test_images_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("NTSIM_TEST_IMAGES")?);
    Some(if dir.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
    } else {
        dir
    })
}

/// Every `*.evs` of `dir`, sorted by name, with its expected outputs: `NAME.serial.out`
/// (`startio` and `csq-serial`, device name [`DEVICE_PLACEHOLDER`]), `NAME.startio.out`,
/// `NAME.csq-serial.out`, `NAME.concurrent.out` (`csq-concurrent`).
///
/// # Panics
/// If the directory or a file cannot be read, or a script does not parse.
pub fn scenarios(dir: &Path) -> Vec<Scenario> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter_map(|name| name.to_str()?.strip_suffix(".evs").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.evs")))
                .unwrap_or_else(|e| panic!("{name}.evs: {e}"));
            let script = parse(&text).unwrap_or_else(|e| panic!("{name}.evs:{e}"));
            let read = |suffix: &str| std::fs::read_to_string(dir.join(format!("{name}.{suffix}")));
            let mut expected = Vec::new();
            if let Ok(serial) = read("serial.out") {
                expected.push(("startio", serial.clone()));
                expected.push(("csq-serial", serial));
            }
            for (suffix, device) in [
                ("startio.out", "startio"),
                ("csq-serial.out", "csq-serial"),
                ("concurrent.out", "csq-concurrent"),
            ] {
                if let Ok(out) = read(suffix) {
                    expected.push((device, out));
                }
            }
            Scenario {
                name,
                text,
                script,
                expected,
            }
        })
        .collect()
}
