//! The seam between the front end and a device: a [`Backend`] runs a parsed [`Script`] against
//! one device and reports what the user observed, in the order it happened.
//!
//! Everything above this trait (parsing, printing, compare, timeline) is device-independent; the
//! embedded-ntsim backends and the Windows backend plug in through `devices::backend_for`.

use std::fmt;

use crate::observation::{Observation, Summary};
use crate::script::Script;

/// Runs scenario scripts against one device.
pub trait Backend {
    /// Runs `script` from virtual time 0 to its `end` (the actions arrive already sorted and
    /// checked: every label is created before use, the last action is `end`). At `end` the
    /// backend closes the remaining handles, unloads the driver and counts leaks.
    ///
    /// The result's observations are in the order they happened; ties in virtual time keep that
    /// order when printed.
    ///
    /// # Errors
    /// [`BackendError::Failed`] when the run cannot be carried out (the device cannot be opened,
    /// the simulated machine stopped on a fatal verifier rule, ...). A run that finishes with
    /// violations or leaks is *not* an error: it returns them in the [`RunResult`].
    fn run(&mut self, script: &Script) -> Result<RunResult, BackendError>;

    /// The device's name as the summary prints it: `startio`, `csq-serial`, `csq-concurrent`, or
    /// the device path.
    fn name(&self) -> &str;
}

/// What one run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// Completions and signals in the order they happened.
    pub observations: Vec<Observation>,
    /// Verifier reports during the run (0 on a real device, which has no verifier to ask).
    pub violations: u64,
    /// IRPs, timers, DPCs, threads, records or object references left after unload.
    pub leaks: u64,
    /// The verifier's reports as text, one per violation or leak, for people; may be empty even
    /// when the counts are not (a backend that only counts).
    pub reports: Vec<String>,
}

impl RunResult {
    /// The summary line's counts for `device`.
    pub fn summary(&self, device: &str) -> Summary {
        Summary::new(device, &self.observations, self.violations, self.leaks)
    }
}

/// The devices `eventctl` knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// `StartIoEvent` (samples/startio-event): model S on IoStartPacket/StartIo.
    StartIo,
    /// `CsqEventSerial` (driver/): model S on csq's `SerialWorker`.
    CsqSerial,
    /// `CsqEvent` (driver/): model C on the cancel-safe queue.
    CsqConcurrent,
    /// A Windows device path (`\\.\StartIoEvent`): the installed driver, in real time.
    Path(String),
}

/// Which semantics a device follows (spec B.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Model S: one IRP-based request in service at a time, FIFO across all handles.
    Serialized,
    /// Model C: every registration has its own deadline.
    Concurrent,
}

impl Device {
    /// The simulated devices, in the order `demo` shows them.
    pub const SIMULATED: [Device; 3] = [Device::StartIo, Device::CsqSerial, Device::CsqConcurrent];

    /// Parses a `--device` value: `startio`, `csq-serial`, `csq-concurrent`, or a path that
    /// starts with `\\` (`\\.\StartIoEvent`).
    ///
    /// # Errors
    /// [`BackendError::UnknownDevice`] for anything else.
    pub fn parse(text: &str) -> Result<Device, BackendError> {
        match text {
            "startio" => Ok(Device::StartIo),
            "csq-serial" => Ok(Device::CsqSerial),
            "csq-concurrent" => Ok(Device::CsqConcurrent),
            path if path.starts_with(r"\\") && path.len() > 2 => Ok(Device::Path(path.to_owned())),
            other => Err(BackendError::UnknownDevice(other.to_owned())),
        }
    }

    /// The name the summary prints.
    pub fn name(&self) -> &str {
        match self {
            Device::StartIo => "startio",
            Device::CsqSerial => "csq-serial",
            Device::CsqConcurrent => "csq-concurrent",
            Device::Path(path) => path,
        }
    }

    /// The model the device follows; a device path is assumed serialized (both installed
    /// drivers' default devices are).
    pub fn model(&self) -> Model {
        match self {
            Device::CsqConcurrent => Model::Concurrent,
            _ => Model::Serialized,
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a backend could not run a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// `--device` named no known device.
    UnknownDevice(String),
    /// The device is known but its backend is not in this build (a simulated device in the
    /// Windows build).
    NotBuilt {
        /// The device's name.
        device: String,
    },
    /// A device path was given on a system other than Windows.
    NeedsWindows {
        /// The device path.
        device: String,
    },
    /// `--image` was given for a device that does not run on the embedded ntsim (a device path,
    /// or any device in the Windows build).
    ImageNeedsSimulation {
        /// The device's name.
        device: String,
    },
    /// The run could not be carried out.
    Failed {
        /// The device's name.
        device: String,
        /// What went wrong, for a person.
        message: String,
    },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::UnknownDevice(name) => write!(
                f,
                "unknown device `{name}` (expected startio, csq-serial, csq-concurrent, or a \
                 Windows device path such as \\\\.\\StartIoEvent)"
            ),
            BackendError::NotBuilt { device } => {
                write!(
                    f,
                    "{device}: not in this build (eventctl.exe talks to installed drivers: give a \
                     device path such as \\\\.\\StartIoEvent)"
                )
            }
            BackendError::NeedsWindows { device } => {
                write!(
                    f,
                    "{device}: device paths need Windows and an installed driver"
                )
            }
            BackendError::ImageNeedsSimulation { device } => write!(
                f,
                "{device}: --image runs a driver image in the embedded ntsim, which needs a \
                 simulated device (startio, csq-serial, csq-concurrent) and a non-Windows build"
            ),
            BackendError::Failed { device, message } => write!(f, "{device}: {message}"),
        }
    }
}

impl std::error::Error for BackendError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_simulated_devices_and_paths() {
        for device in Device::SIMULATED {
            assert_eq!(Device::parse(device.name()), Ok(device.clone()));
        }
        assert_eq!(
            Device::parse(r"\\.\StartIoEvent"),
            Ok(Device::Path(r"\\.\StartIoEvent".to_owned()))
        );
        assert_eq!(
            Device::parse("csq"),
            Err(BackendError::UnknownDevice("csq".to_owned()))
        );
        assert!(Device::parse(r"\\").is_err());
    }

    #[test]
    fn only_csq_concurrent_is_model_c() {
        assert_eq!(Device::StartIo.model(), Model::Serialized);
        assert_eq!(Device::CsqSerial.model(), Model::Serialized);
        assert_eq!(Device::CsqConcurrent.model(), Model::Concurrent);
    }
}
