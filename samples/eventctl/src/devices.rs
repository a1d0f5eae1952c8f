//! The one place that turns a `--device` value into a [`Backend`].
//!
//! The ntsim backends (`startio`, `csq-serial`, `csq-concurrent`: the drivers loaded into the
//! embedded ntsim, on virtual time) and the Windows backend (a device path, through
//! `DeviceIoControl` in real time) plug in here; nothing else in `eventctl` names a backend type.
//! A simulated device can run a cross-built driver image instead of the host-built driver
//! ([`backend_with_image`]).

use std::path::Path;

use crate::backend::{Backend, BackendError, Device};

/// The backend for `device` (a `--device` value).
///
/// # Errors
/// [`BackendError::UnknownDevice`] for a name that is neither a simulated device nor a device
/// path; [`BackendError::NeedsWindows`] for a device path elsewhere than on Windows;
/// [`BackendError::NotBuilt`] for a simulated device in the Windows build (eventctl.exe talks to
/// installed drivers only).
pub fn backend_for(device: &str) -> Result<Box<dyn Backend>, BackendError> {
    backend_with_image(device, None)
}

/// The backend for `device`, running the driver image (`.sys`) at `image` instead of the
/// host-built driver when one is given (`--image`): service `StartIoEvent` for `startio`,
/// `CsqEvent` for `csq-serial` and `csq-concurrent`. The file is read when a run starts.
///
/// # Errors
/// As [`backend_for`]; [`BackendError::ImageNeedsSimulation`] for an image with a device path,
/// or in the Windows build.
pub fn backend_with_image(
    device: &str,
    image: Option<&Path>,
) -> Result<Box<dyn Backend>, BackendError> {
    let device = Device::parse(device)?;
    if image.is_some() && (cfg!(windows) || matches!(device, Device::Path(_))) {
        return Err(BackendError::ImageNeedsSimulation {
            device: device.name().to_owned(),
        });
    }
    match device {
        #[cfg(windows)]
        Device::Path(path) => Ok(Box::new(crate::windows_backend::WindowsBackend::new(&path))),
        #[cfg(not(windows))]
        Device::Path(path) => Err(BackendError::NeedsWindows { device: path }),
        #[cfg(not(windows))]
        simulated => match simulated::image_for(&simulated) {
            Some(driver) => {
                let backend = crate::ntsim_backend::NtsimBackend::new(simulated.name(), driver);
                Ok(Box::new(match image {
                    Some(path) => backend.with_image_file(path),
                    None => backend,
                }))
            }
            None => Err(BackendError::NotBuilt {
                device: simulated.name().to_owned(),
            }),
        },
        #[cfg(windows)]
        simulated => Err(BackendError::NotBuilt {
            device: simulated.name().to_owned(),
        }),
    }
}

#[cfg(not(windows))]
mod simulated {
    use crate::backend::Device;
    use crate::interface::{CSQ_CONCURRENT_PATH, CSQ_SERIAL_PATH, STARTIO_PATH};
    use crate::ntsim_backend::DriverImage;

    /// The driver and device behind a simulated device.
    pub(super) fn image_for(device: &Device) -> Option<DriverImage> {
        let (service, entry, device_path) = match device {
            Device::StartIo => ("StartIoEvent", STARTIO_ENTRY, STARTIO_PATH),
            Device::CsqSerial => ("CsqEvent", CSQ_ENTRY, CSQ_SERIAL_PATH),
            Device::CsqConcurrent => ("CsqEvent", CSQ_ENTRY, CSQ_CONCURRENT_PATH),
            Device::Path(_) => return None,
        };
        Some(DriverImage {
            service,
            entry,
            device_path,
        })
    }

    type Entry = ntsim::ntdef::PDRIVER_INITIALIZE;

    /// samples/startio-event: one device, `\\.\StartIoEvent`.
    const STARTIO_ENTRY: Entry = Some(startio_event::driver_entry);
    /// driver/: two devices, `\\.\CsqEventSerial` (model S) and `\\.\CsqEvent` (model C).
    const CSQ_ENTRY: Entry = Some(csq_event::driver_entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_device_has_a_backend_named_after_it() {
        for name in ["startio", "csq-serial", "csq-concurrent"] {
            let backend = backend_for(name).expect("a backend");
            assert_eq!(backend.name(), name);
            let backend = backend_with_image(name, Some(Path::new("x.sys"))).expect("a backend");
            assert_eq!(backend.name(), name);
        }
    }

    #[test]
    fn an_image_needs_a_simulated_device() {
        assert_eq!(
            backend_with_image(r"\\.\StartIoEvent", Some(Path::new("x.sys"))).err(),
            Some(BackendError::ImageNeedsSimulation {
                device: r"\\.\StartIoEvent".to_owned()
            })
        );
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
