//! Why an image could not be loaded.

use std::fmt;

/// Why [`load_image`](super::load_image) refused an image. Every message names the image's
/// problem precisely enough to act on it; [`LoadError::MissingImports`] names every import ntsim
/// lacks, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The host cannot run x64 Windows code (it is not an x86_64 Unix host).
    UnsupportedHost,
    /// The file could not be read.
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        error: String,
    },
    /// Not a well-formed PE32+ image.
    Malformed(String),
    /// A machine type other than AMD64.
    UnsupportedMachine(u16),
    /// A base relocation of a type other than DIR64 (or the ABSOLUTE padding).
    UnsupportedRelocation {
        /// Where it applies.
        rva: u32,
        /// Its `IMAGE_REL_BASED_*` type.
        kind: u16,
    },
    /// Imports ntsim cannot satisfy, each described in one line.
    MissingImports(Vec<String>),
    /// The image has no entry point (DriverEntry).
    NoEntryPoint,
    /// The host refused the executable mapping.
    Map(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::UnsupportedHost => write!(
                f,
                "unsupported host: ntsim runs x64 driver images only on x86_64 Unix hosts"
            ),
            LoadError::Io { path, error } => write!(f, "cannot read {path}: {error}"),
            LoadError::Malformed(what) => write!(f, "not a valid PE32+ image: {what}"),
            LoadError::UnsupportedMachine(m) => {
                write!(f, "image machine type {m:#06x} is not AMD64 (0x8664)")
            }
            LoadError::UnsupportedRelocation { rva, kind } => write!(
                f,
                "image has a base relocation of type {kind} at RVA {rva:#x}; ntsim applies only DIR64 (10)"
            ),
            LoadError::MissingImports(lines) => {
                write!(f, "{} unresolved import(s):", lines.len())?;
                for l in lines {
                    write!(f, "\n  {l}")?;
                }
                Ok(())
            }
            LoadError::NoEntryPoint => write!(f, "image has no entry point (DriverEntry)"),
            LoadError::Map(e) => write!(f, "cannot map the image: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}
