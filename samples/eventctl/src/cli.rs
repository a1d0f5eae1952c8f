//! The command line: `run`, `compare`, `demo`, their exit statuses, and every error a user can
//! meet, as typed values (no panic reaches the user).
//!
//! The commands take their backends from a factory and write to the given streams, so tests drive
//! them exactly as `main` does, with a fake backend and byte buffers.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::backend::{Backend, BackendError, Device, RunResult};
use crate::compare::compare;
use crate::observation::{format_json, format_table};
use crate::script::{Script, ScriptError, parse};
use crate::timeline::{Lane, Timeline};

/// The demo's scenario (`scenarios/demo.evs`).
pub const DEMO_SCRIPT: &str = include_str!("../scenarios/demo.evs");

/// The widest timeline `demo` draws.
pub const MAX_WIDTH: usize = 100;

/// `eventctl`: drives the timer-event devices with scenario scripts.
#[derive(Debug, Parser)]
#[command(
    name = "eventctl",
    version,
    about = "Drives the timer-event devices with scenario scripts, on virtual time.",
    after_help = "Exit status: 0 clean; 1 compare found a difference; 2 script or usage error; \
                  3 the run finished with verifier violations or leaks; 4 the run could not be \
                  carried out (device unavailable, output not written)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario script on one device and prints what a user observes.
    Run {
        /// The scenario script (`at <ms> <verb> <args>` per line).
        script: PathBuf,
        /// startio, csq-serial, csq-concurrent, or on Windows a device path (\\.\StartIoEvent).
        #[arg(long, value_name = "DEVICE")]
        device: String,
        /// Prints JSON Lines (one observation per line, then the summary).
        #[arg(long)]
        json: bool,
        /// Runs this driver image (a cross-built .sys) in the embedded ntsim instead of the
        /// host-built driver: startio_event.sys for startio, csq_event.sys for csq-serial and
        /// csq-concurrent (target/windows/out/ after scripts/windows-build.sh).
        #[arg(long, value_name = "PATH")]
        image: Option<PathBuf>,
    },
    /// Runs a script on startio and csq-serial and shows them side by side; exits 1 on any
    /// difference.
    #[command(
        after_help = "Driver images: --images target/windows/out runs both cross-built \
                  images (startio_event.sys on startio, csq_event.sys on csq-serial); \
                  --image-startio and --image-csq replace one side only, e.g. to compare an \
                  image with the other host-built driver."
    )]
    Compare {
        /// The scenario script.
        script: PathBuf,
        /// Runs startio on this driver image (startio_event.sys) instead of the host-built
        /// driver.
        #[arg(long, value_name = "PATH", conflicts_with = "images")]
        image_startio: Option<PathBuf>,
        /// Runs csq-serial on this driver image (csq_event.sys) instead of the host-built
        /// driver.
        #[arg(long, value_name = "PATH", conflicts_with = "images")]
        image_csq: Option<PathBuf>,
        /// Runs both sides on the images of this folder: DIR/startio_event.sys and
        /// DIR/csq_event.sys (scripts/windows-build.sh writes them to target/windows/out).
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
    },
    /// Runs the built-in scenario on all three devices and draws the timeline.
    Demo {
        /// Also writes the timeline as an SVG file.
        #[arg(long, value_name = "PATH")]
        svg: Option<PathBuf>,
        /// Uses this scenario script instead of the built-in one.
        #[arg(long, value_name = "SCRIPT")]
        script: Option<PathBuf>,
    },
}

/// How `eventctl` exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: the run finished with no violation or leak (and compare found no difference).
    Clean,
    /// 1: compare found a difference.
    Differ,
    /// 2: a script (or usage) error.
    ScriptError,
    /// 3: the run finished with a verifier violation or a leak.
    Violations,
    /// 4: the run could not be carried out.
    Failure,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Differ => 1,
            Exit::ScriptError => 2,
            Exit::Violations => 3,
            Exit::Failure => 4,
        }
    }
}

/// Everything that stops a command before it has a result to show.
#[derive(Debug)]
pub enum CliError {
    /// The script file could not be read.
    Read {
        /// The script's path as given.
        file: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The script is not valid.
    Script {
        /// The script's path as given (`demo.evs` for the built-in one).
        file: PathBuf,
        /// The line and what is wrong.
        error: ScriptError,
    },
    /// No backend for a device, or the run failed.
    Backend(BackendError),
    /// The SVG could not be written.
    WriteSvg {
        /// The output path.
        file: PathBuf,
        /// Why.
        error: io::Error,
    },
}

impl CliError {
    /// The exit status this error leads to.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Read { .. } | CliError::Script { .. } => Exit::ScriptError,
            CliError::Backend(_) | CliError::WriteSvg { .. } => Exit::Failure,
        }
    }
}

impl fmt::Display for CliError {
    /// The message after `error: `; for a script error `<file>:<line>: <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Read { file, error } => {
                write!(f, "{}: cannot read the script: {error}", file.display())
            }
            CliError::Script { file, error } => {
                write!(f, "{}:{}: {}", file.display(), error.line, error.message)
            }
            CliError::Backend(error) => write!(f, "{error}"),
            CliError::WriteSvg { file, error } => {
                write!(f, "{}: cannot write the SVG: {error}", file.display())
            }
        }
    }
}

impl std::error::Error for CliError {}

impl From<BackendError> for CliError {
    fn from(error: BackendError) -> Self {
        CliError::Backend(error)
    }
}

/// The file names of the cross-built images in `--images DIR`.
pub const STARTIO_IMAGE: &str = "startio_event.sys";
/// See [`STARTIO_IMAGE`].
pub const CSQ_IMAGE: &str = "csq_event.sys";

/// Makes the backend for a `--device` value, running the driver image at the path when one is
/// given (`--image`); `devices::backend_with_image` in the binary.
pub type Factory<'a> = &'a dyn Fn(&str, Option<&Path>) -> Result<Box<dyn Backend>, BackendError>;

/// Where a command writes, and with which backends.
pub struct Context<'a> {
    /// Makes backends.
    pub backends: Factory<'a>,
    /// Standard output.
    pub out: &'a mut dyn Write,
    /// Standard error.
    pub err: &'a mut dyn Write,
    /// Terminal width for the timeline (at most [`MAX_WIDTH`] is used).
    pub width: usize,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

/// Runs `command` and returns the exit status; an error is printed as `error: ...` on `err`.
pub fn execute(command: &Command, cx: &mut Context<'_>) -> Exit {
    let result = match command {
        Command::Run {
            script,
            device,
            json,
            image,
        } => run(script, device, image.as_deref(), *json, cx),
        Command::Compare {
            script,
            image_startio,
            image_csq,
            images,
        } => {
            let (startio, csq) = match images {
                Some(dir) => (Some(dir.join(STARTIO_IMAGE)), Some(dir.join(CSQ_IMAGE))),
                None => (image_startio.clone(), image_csq.clone()),
            };
            compare_command(script, startio.as_deref(), csq.as_deref(), cx)
        }
        Command::Demo { svg, script } => demo(svg.as_deref(), script.as_deref(), cx),
    };
    match result {
        Ok(exit) => exit,
        Err(error) => {
            // Nothing more can be done if stderr is gone.
            let _ = writeln!(cx.err, "error: {error}");
            error.exit()
        }
    }
}

/// Reads and parses a script file.
///
/// # Errors
/// [`CliError::Read`] or [`CliError::Script`].
pub fn load_script(path: &Path) -> Result<Script, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| CliError::Read {
        file: path.to_owned(),
        error,
    })?;
    parse(&text).map_err(|error| CliError::Script {
        file: path.to_owned(),
        error,
    })
}

fn exit_for(results: &[&RunResult]) -> Exit {
    if results.iter().all(|r| r.violations == 0 && r.leaks == 0) {
        Exit::Clean
    } else {
        Exit::Violations
    }
}

fn run_on(
    device: &str,
    image: Option<&Path>,
    script: &Script,
    cx: &Context<'_>,
) -> Result<(String, RunResult), CliError> {
    let mut backend = (cx.backends)(device, image)?;
    let result = backend.run(script)?;
    Ok((backend.name().to_owned(), result))
}

// Writes to stdout ignore errors: a closed pipe (`eventctl ... | head`) is no failure of the run,
// and the exit status still tells the outcome.

fn run(
    path: &Path,
    device: &str,
    image: Option<&Path>,
    json: bool,
    cx: &mut Context<'_>,
) -> Result<Exit, CliError> {
    let script = load_script(path)?;
    let (name, result) = run_on(device, image, &script, cx)?;
    let summary = result.summary(&name);
    if json {
        let _ = cx
            .out
            .write_all(format_json(&result.observations, &summary).as_bytes());
        // The JSON stream stays exactly the contract's; the reports go to stderr.
        for report in &result.reports {
            let _ = writeln!(cx.err, "verifier: {report}");
        }
    } else {
        let table = format_table(&result.observations, &summary, &result.reports);
        let _ = cx.out.write_all(table.as_bytes());
    }
    Ok(exit_for(&[&result]))
}

fn compare_command(
    path: &Path,
    startio_image: Option<&Path>,
    csq_image: Option<&Path>,
    cx: &mut Context<'_>,
) -> Result<Exit, CliError> {
    let script = load_script(path)?;
    let (left_name, left) = run_on(Device::StartIo.name(), startio_image, &script, cx)?;
    let (right_name, right) = run_on(Device::CsqSerial.name(), csq_image, &script, cx)?;
    let comparison = compare(&left_name, &left, &right_name, &right);
    let _ = cx.out.write_all(comparison.text.as_bytes());
    if comparison.first_difference.is_some() {
        return Ok(Exit::Differ);
    }
    Ok(exit_for(&[&left, &right]))
}

fn demo(svg: Option<&Path>, script: Option<&Path>, cx: &mut Context<'_>) -> Result<Exit, CliError> {
    let (title, script) = match script {
        Some(path) => (path.display().to_string(), load_script(path)?),
        None => (
            "eventctl demo: scenarios/demo.evs".to_owned(),
            parse(DEMO_SCRIPT).map_err(|error| CliError::Script {
                file: PathBuf::from("demo.evs"),
                error,
            })?,
        ),
    };
    let mut runs = Vec::new();
    for device in Device::SIMULATED {
        runs.push(run_on(device.name(), None, &script, cx)?);
    }
    let lanes: Vec<Lane<'_>> = runs
        .iter()
        .map(|(device, result)| Lane { device, result })
        .collect();
    let timeline = Timeline::build(&title, &script, &lanes);
    let _ = cx
        .out
        .write_all(timeline.render_text(cx.width.min(MAX_WIDTH)).as_bytes());

    // The point of the two serialized devices: they must agree line for line.
    let (left_name, left) = &runs[0];
    let (right_name, right) = &runs[1];
    let comparison = compare(left_name, left, right_name, right);
    let verdict = comparison.text.lines().last().unwrap_or_default();
    let _ = writeln!(cx.out, "\n{verdict}");

    if let Some(path) = svg {
        std::fs::write(path, timeline.render_svg()).map_err(|error| CliError::WriteSvg {
            file: path.to_owned(),
            error,
        })?;
        let _ = writeln!(cx.out, "wrote {}", path.display());
    }
    let results: Vec<&RunResult> = runs.iter().map(|(_, r)| r).collect();
    Ok(exit_for(&results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Model;
    use crate::devices::backend_with_image;
    use crate::fake::FakeBackend;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A script file in the temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "eventctl-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// Fake devices: `startio` and `csq-serial` model S, `csq-concurrent` model C; `tweak`
    /// adjusts each before use.
    fn fakes(
        tweak: impl Fn(&mut FakeBackend),
    ) -> impl Fn(&str, Option<&Path>) -> Result<Box<dyn Backend>, BackendError> {
        move |device: &str, _image: Option<&Path>| {
            let model = Device::parse(device)?.model();
            let mut fake = FakeBackend::new(device, model);
            tweak(&mut fake);
            Ok(Box::new(fake) as Box<dyn Backend>)
        }
    }

    struct Outcome {
        exit: Exit,
        out: String,
        err: String,
    }

    fn exec(command: Command, backends: Factory<'_>) -> Outcome {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let exit = execute(
            &command,
            &mut Context {
                backends,
                out: &mut out,
                err: &mut err,
                width: 100,
            },
        );
        Outcome {
            exit,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    fn run_cmd(path: &Path, device: &str, json: bool) -> Command {
        Command::Run {
            script: path.to_owned(),
            device: device.to_owned(),
            json,
            image: None,
        }
    }

    fn compare_cmd(path: &Path) -> Command {
        Command::Compare {
            script: path.to_owned(),
            image_startio: None,
            image_csq: None,
            images: None,
        }
    }

    const BASIC: &str = "at 0 open h1\nat 0 irp r1 h1 due=1000\nat 0 irp r2 h1 due=1000\n\
                         at 0 event e1 h1 due=500\nat 300 cancel r2\nat 1500 end\n";

    #[test]
    fn run_json_prints_the_contract_lines() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(run_cmd(&file.0, "startio", true), &fakes(|_| {}));
        assert_eq!(o.exit, Exit::Clean);
        assert_eq!(o.err, "");
        let expected = concat!(
            r#"{"t":0,"req":"e1","status":"STATUS_SUCCESS","info":0,"pending":false}"#,
            "\n",
            r#"{"t":300,"req":"r2","status":"STATUS_CANCELLED","info":0,"pending":true}"#,
            "\n",
            r#"{"t":500,"event":"e1"}"#,
            "\n",
            r#"{"t":1000,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}"#,
            "\n",
            r#"{"summary":{"device":"startio","requests":3,"success":2,"cancelled":1,"failed":0,"violations":0,"leaks":0}}"#,
            "\n",
        );
        assert_eq!(o.out, expected);
    }

    #[test]
    fn run_without_json_prints_a_table() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(run_cmd(&file.0, "csq-serial", false), &fakes(|_| {}));
        assert_eq!(o.exit, Exit::Clean);
        assert!(
            o.out.starts_with("t (ms)  label  what       status"),
            "{}",
            o.out
        );
        assert!(
            o.out
                .contains("csq-serial: 3 requests (2 success, 1 cancelled, 0 failed)")
        );
    }

    #[test]
    fn run_exits_3_on_violations_or_leaks_with_reports_on_stderr() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(
            run_cmd(&file.0, "startio", true),
            &fakes(|f| f.violations = 1),
        );
        assert_eq!(o.exit, Exit::Violations);
        assert_eq!(Exit::Violations.code(), 3);
        assert!(
            o.out.ends_with("\"violations\":1,\"leaks\":0}}\n"),
            "{}",
            o.out
        );
        assert_eq!(o.err, "verifier: fake report 0\n");

        let o = exec(run_cmd(&file.0, "startio", false), &fakes(|f| f.leaks = 2));
        assert_eq!(o.exit, Exit::Violations);
        assert!(
            o.out
                .contains("verifier reports:\n  fake report 0\n  fake report 1\n")
        );
    }

    #[test]
    fn script_error_exits_2_naming_file_and_line() {
        let file = TempFile::new(
            "bad.evs",
            "at 0 open h1\n# fine\nat 5 irp r1 h2 due=1\nat 9 end\n",
        );
        let o = exec(run_cmd(&file.0, "startio", true), &fakes(|_| {}));
        assert_eq!(o.exit, Exit::ScriptError);
        assert_eq!(Exit::ScriptError.code(), 2);
        assert_eq!(o.out, "");
        assert_eq!(
            o.err,
            format!(
                "error: {}:3: unknown label `h2`: no action creates it\n",
                file.0.display()
            )
        );
    }

    #[test]
    fn unreadable_script_exits_2() {
        let o = exec(
            run_cmd(Path::new("/nonexistent/x.evs"), "startio", false),
            &fakes(|_| {}),
        );
        assert_eq!(o.exit, Exit::ScriptError);
        assert!(
            o.err
                .starts_with("error: /nonexistent/x.evs: cannot read the script:"),
            "{}",
            o.err
        );
    }

    #[test]
    fn the_real_devices_run_the_script() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(
            run_cmd(&file.0, "csq-concurrent", true),
            &backend_with_image,
        );
        assert_eq!(o.exit, Exit::Clean, "{}", o.err);
        assert_eq!(
            o.out,
            concat!(
                r#"{"t":0,"req":"e1","status":"STATUS_SUCCESS","info":0,"pending":false}"#,
                "\n",
                r#"{"t":300,"req":"r2","status":"STATUS_CANCELLED","info":0,"pending":true}"#,
                "\n",
                r#"{"t":500,"event":"e1"}"#,
                "\n",
                r#"{"t":1000,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}"#,
                "\n",
                r#"{"summary":{"device":"csq-concurrent","requests":3,"success":2,"cancelled":1,"failed":0,"violations":0,"leaks":0}}"#,
                "\n",
            )
        );
        let o = exec(run_cmd(&file.0, "floppy", true), &backend_with_image);
        assert_eq!(o.exit, Exit::Failure);
        assert!(o.err.starts_with("error: unknown device `floppy`"));
    }

    #[test]
    fn a_failing_backend_is_an_error_not_a_panic() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(
            run_cmd(&file.0, "startio", false),
            &fakes(|f| f.fail = Some("machine halted".into())),
        );
        assert_eq!(o.exit, Exit::Failure);
        assert_eq!(o.err, "error: startio: machine halted\n");
    }

    #[test]
    fn compare_of_identical_devices_exits_0() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(compare_cmd(&file.0), &fakes(|_| {}));
        assert_eq!(o.exit, Exit::Clean, "{}", o.out);
        assert!(o.out.starts_with("#  startio"), "{}", o.out);
        assert!(
            o.out
                .ends_with("startio and csq-serial: identical (5 lines)\n")
        );
    }

    /// A factory of clean fakes that records which image each device was asked to run.
    fn recording(
        seen: &std::sync::Mutex<Vec<(String, Option<PathBuf>)>>,
    ) -> impl Fn(&str, Option<&Path>) -> Result<Box<dyn Backend>, BackendError> + '_ {
        move |device: &str, image: Option<&Path>| {
            seen.lock()
                .unwrap()
                .push((device.to_owned(), image.map(Path::to_owned)));
            let model = Device::parse(device)?.model();
            Ok(Box::new(FakeBackend::new(device, model)) as Box<dyn Backend>)
        }
    }

    #[test]
    fn run_and_compare_hand_the_images_to_the_backends() {
        let file = TempFile::new("basic.evs", BASIC);
        let seen = std::sync::Mutex::new(Vec::new());
        let cli = |args: &[&str]| {
            let mut argv = vec!["eventctl"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).unwrap().command
        };
        let script = file.0.to_str().unwrap();
        for command in [
            cli(&["run", script, "--device", "csq-serial", "--image", "c.sys"]),
            cli(&["compare", script, "--images", "out"]),
            cli(&["compare", script, "--image-csq", "c.sys"]),
            cli(&[
                "compare",
                script,
                "--image-startio",
                "s.sys",
                "--image-csq",
                "c.sys",
            ]),
        ] {
            let o = exec(command, &recording(&seen));
            assert_eq!(o.exit, Exit::Clean, "{}", o.err);
        }
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            seen.into_inner().unwrap(),
            vec![
                ("csq-serial".into(), p("c.sys")),
                ("startio".into(), p("out/startio_event.sys")),
                ("csq-serial".into(), p("out/csq_event.sys")),
                ("startio".into(), None),
                ("csq-serial".into(), p("c.sys")),
                ("startio".into(), p("s.sys")),
                ("csq-serial".into(), p("c.sys")),
            ]
        );
        assert!(
            Cli::try_parse_from([
                "eventctl",
                "compare",
                "x",
                "--images",
                "d",
                "--image-csq",
                "c"
            ])
            .is_err()
        );
    }

    #[test]
    fn a_missing_or_refused_image_exits_4_naming_it() {
        let file = TempFile::new("basic.evs", BASIC);
        let image = |path: &Path| Command::Run {
            script: file.0.clone(),
            device: "startio".into(),
            json: true,
            image: Some(path.to_owned()),
        };
        let o = exec(
            image(Path::new("/nonexistent/startio_event.sys")),
            &backend_with_image,
        );
        assert_eq!(o.exit, Exit::Failure);
        assert!(
            o.err.starts_with(
                "error: startio: cannot load the driver image /nonexistent/startio_event.sys: \
                 cannot read /nonexistent/startio_event.sys:"
            ),
            "{}",
            o.err
        );
        assert_eq!(o.out, "");
        let not_pe = TempFile::new("not.sys", "MZ but not a driver");
        let o = exec(image(&not_pe.0), &backend_with_image);
        assert_eq!(o.exit, Exit::Failure);
        assert!(o.err.contains("not a valid PE32+ image"), "{}", o.err);
        let o = exec(
            Command::Compare {
                script: file.0.clone(),
                image_startio: None,
                image_csq: None,
                images: Some(PathBuf::from("/nonexistent")),
            },
            &backend_with_image,
        );
        assert_eq!(o.exit, Exit::Failure);
        assert!(
            o.err.contains("/nonexistent/startio_event.sys"),
            "{}",
            o.err
        );
    }

    #[test]
    fn compare_exits_1_and_names_the_first_differing_line() {
        // csq-serial made model C: the second request overtakes the first.
        let file = TempFile::new(
            "two.evs",
            "at 0 open h1\nat 0 irp r1 h1 due=300\nat 0 irp r2 h1 due=200\nat 1000 end\n",
        );
        let factory = |device: &str, _: Option<&Path>| -> Result<Box<dyn Backend>, BackendError> {
            let model = if device == "csq-serial" {
                Model::Concurrent
            } else {
                Model::Serialized
            };
            Ok(Box::new(FakeBackend::new(device, model)))
        };
        let o = exec(compare_cmd(&file.0), &factory);
        assert_eq!(o.exit, Exit::Differ);
        assert_eq!(Exit::Differ.code(), 1);
        assert!(
            o.out.contains(
                "first difference on line 1: startio `300 r1 STATUS_SUCCESS info=0 pending` vs \
                 csq-serial `200 r2 STATUS_SUCCESS info=0 pending`"
            ),
            "{}",
            o.out
        );
    }

    #[test]
    fn compare_without_difference_but_with_leaks_exits_3() {
        let file = TempFile::new("basic.evs", BASIC);
        let o = exec(compare_cmd(&file.0), &fakes(|f| f.leaks = 1));
        assert_eq!(o.exit, Exit::Violations);
    }

    #[test]
    fn compare_script_error_exits_2() {
        let file = TempFile::new("bad.evs", "at 0 open h1\n");
        let o = exec(compare_cmd(&file.0), &fakes(|_| {}));
        assert_eq!(o.exit, Exit::ScriptError);
        assert!(o.err.contains("bad.evs:1: missing `end`"), "{}", o.err);
    }

    #[test]
    fn demo_draws_three_lanes_and_writes_the_svg() {
        let dir = TempFile::new("unused", "");
        let svg = dir.0.with_file_name("demo.svg");
        let o = exec(
            Command::Demo {
                svg: Some(svg.clone()),
                script: None,
            },
            &fakes(|_| {}),
        );
        assert_eq!(o.exit, Exit::Clean, "{}", o.err);
        for lane in ["startio (", "csq-serial (", "csq-concurrent ("] {
            assert!(o.out.contains(lane), "{}", o.out);
        }
        assert!(o.out.contains("startio and csq-serial: identical"));
        assert!(o.out.contains(&format!("wrote {}", svg.display())));
        let written = std::fs::read_to_string(&svg).unwrap();
        assert!(written.starts_with("<svg ") && written.trim_end().ends_with("</svg>"));
        for line in o.out.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "too wide: {line}");
        }
    }

    #[test]
    fn demo_reports_an_unwritable_svg() {
        let o = exec(
            Command::Demo {
                svg: Some(PathBuf::from("/nonexistent/dir/t.svg")),
                script: None,
            },
            &fakes(|_| {}),
        );
        assert_eq!(o.exit, Exit::Failure);
        assert!(
            o.err
                .starts_with("error: /nonexistent/dir/t.svg: cannot write the SVG:")
        );
    }

    #[test]
    fn demo_runs_on_the_three_devices() {
        let o = exec(
            Command::Demo {
                svg: None,
                script: None,
            },
            &backend_with_image,
        );
        assert_eq!(o.exit, Exit::Clean, "{}", o.err);
        assert!(
            o.out.contains("startio and csq-serial: identical"),
            "{}",
            o.out
        );
    }

    #[test]
    fn the_demo_scenario_has_the_promised_shape() {
        use crate::script::{ActionKind, Due};
        let script = parse(DEMO_SCRIPT).unwrap();
        let irps: Vec<(u64, String, u64)> = script
            .actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Irp {
                    handle,
                    due: Due::Ms(ms),
                    ..
                } => Some((a.at_ms, handle.to_string(), *ms)),
                _ => None,
            })
            .collect();
        let dues: Vec<u64> = irps.iter().map(|i| i.2).collect();
        assert_eq!(dues, [1000, 1000, 500]);
        let mut handles: Vec<&str> = irps.iter().map(|i| i.1.as_str()).collect();
        handles.dedup();
        assert!(handles.len() >= 2);
        let lines: Vec<String> = script
            .actions
            .iter()
            .map(|a| format!("at {} {}", a.at_ms, a.kind))
            .collect();
        assert!(lines.contains(&"at 300 cancel r2".to_owned()));
        assert!(lines.contains(&"at 250 event e1 h2 due=700".to_owned()));
        assert!(lines.iter().any(|l| l.contains(" close ")));
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "evs") {
                load_script(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen >= 5);
    }

    #[test]
    fn the_command_line_parses() {
        let cli =
            Cli::try_parse_from(["eventctl", "run", "x.evs", "--device", "startio", "--json"])
                .unwrap();
        assert!(matches!(cli.command, Command::Run { json: true, .. }));
        let cli = Cli::try_parse_from(["eventctl", "demo", "--svg", "t.svg"]).unwrap();
        assert!(matches!(cli.command, Command::Demo { svg: Some(_), .. }));
        assert!(Cli::try_parse_from(["eventctl", "run", "x.evs"]).is_err());
        assert!(Cli::try_parse_from(["eventctl", "compare"]).is_err());
    }
}
