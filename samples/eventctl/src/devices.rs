//! The one place that turns a `--device` value into a [`Backend`].
//!
//! The ntsim backends (`startio`, `csq-serial`, `csq-concurrent`: the drivers loaded into the
//! embedded ntsim, on virtual time) and the Windows backend (a device path, through
//! `DeviceIoControl` in real time) plug in here; nothing else in `eventctl` names a backend type.

use crate::backend::{Backend, BackendError, Device};

/// The backend for `device` (a `--device` value).
///
/// # Errors
/// [`BackendError::UnknownDevice`] for a name that is neither a simulated device nor a device
/// path; [`BackendError::NeedsWindows`] for a device path elsewhere than on Windows;
/// [`BackendError::NotBuilt`] for every known device until the drivers and the ntsim backend land.
pub fn backend_for(device: &str) -> Result<Box<dyn Backend>, BackendError> {
    let device = Device::parse(device)?;
    match device {
        Device::Path(path) if !cfg!(windows) => Err(BackendError::NeedsWindows { device: path }),
        // TODO(issue 4): the ntsim backend for the three simulated devices, the Windows backend
        // for a path.
        other => Err(BackendError::NotBuilt {
            device: other.name().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_reports_that_backends_are_not_built_yet() {
        for name in ["startio", "csq-serial", "csq-concurrent"] {
            let error = backend_for(name).err().unwrap();
            assert_eq!(
                error.to_string(),
                format!("{name}: device backends are not built yet")
            );
        }
    }

    #[test]
    fn unknown_devices_and_foreign_paths_are_errors() {
        assert!(matches!(
            backend_for("nope"),
            Err(BackendError::UnknownDevice(_))
        ));
        if !cfg!(windows) {
            assert!(matches!(
                backend_for(r"\\.\StartIoEvent"),
                Err(BackendError::NeedsWindows { .. })
            ));
        }
    }
}
