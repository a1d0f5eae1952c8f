//! Link settings for the Windows kernel image (`.sys`): the workspace's shared WDM driver
//! build script (see `docs/windows-build.md`).

include!("../../build-support/wdm-driver-build.rs");
