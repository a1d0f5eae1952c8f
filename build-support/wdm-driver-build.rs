// Link settings for a WDM driver's Windows kernel image (`.sys`), shared by every driver crate
// of the workspace: each crate's `build.rs` is one `include!` of this file. See
// `docs/windows-build.md`.
//
// Does nothing unless the target OS is Windows, so host builds and tests are unaffected. The WDK
// import libraries (`ntoskrnl.lib`, `hal.lib`, ...) are looked up under
// `%WDKContentRoot%\Lib\<version>\km\<arch>` (an eWDK prompt and `scripts/windows-build.sh` set
// `WDKContentRoot`; otherwise the default WDK install folder is tried).

use std::{env, path::PathBuf};

/// `link.exe`/`lld-link` arguments of a WDM driver. `/RELEASE` writes the PE checksum.
const DRIVER_LINK_ARGS: &[&str] = &[
    "/DRIVER",
    "/SUBSYSTEM:NATIVE",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/NXCOMPAT",
    "/DYNAMICBASE",
    "/INTEGRITYCHECK",
    "/RELEASE",
    "/OPT:REF,ICF",
    "/MANIFEST:NO",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // This file is `include!`d: cargo must watch it as well as the including build.rs.
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    if let Some(shared) = manifest
        .ancestors()
        .map(|dir| dir.join("build-support/wdm-driver-build.rs"))
        .find(|path| path.exists())
    {
        println!("cargo::rerun-if-changed={}", shared.display());
    }
    println!("cargo::rerun-if-env-changed=WDKContentRoot");
    println!("cargo::rerun-if-env-changed=Version_Number");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    for arg in DRIVER_LINK_ARGS {
        // Every linked target of the crate: on Windows that is only the kernel image (the
        // drivers' tests and tools run on the host).
        println!("cargo::rustc-link-arg={arg}");
    }
    match km_library_dir() {
        Some(dir) => println!("cargo::rustc-link-search=native={}", dir.display()),
        None => println!(
            "cargo::warning=no WDK found (set WDKContentRoot); ntoskrnl.lib may not be found"
        ),
    }
}

/// `<WDKContentRoot>/Lib/<version>/km/<arch>`, with the newest `10.*` version unless
/// `Version_Number` names one.
fn km_library_dir() -> Option<PathBuf> {
    let root = env::var_os("WDKContentRoot")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\Program Files (x86)\Windows Kits\10"));
    let lib = root.join("Lib");
    let version = match env::var("Version_Number") {
        Ok(version) => version,
        Err(_) => std::fs::read_dir(&lib)
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("10.") && lib.join(name).join("km").is_dir())
            .max()?,
    };
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").ok()?.as_str() {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        _ => return None,
    };
    let dir = lib.join(version).join("km").join(arch);
    dir.is_dir().then_some(dir)
}
