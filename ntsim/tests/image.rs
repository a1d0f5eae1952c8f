//! The driver-image loader: the PE32+ parser, import resolution and its errors, the DbgPrint
//! formatter (host-only, no image needed); in-memory images run through the `win64` entry
//! points (x86_64 Unix hosts); and the cross-built images of `scripts/windows-build.sh`, read
//! from `$NTSIM_TEST_IMAGES` (e.g. `target/windows/out`), skipped with a notice when unset.

mod image_support;

use image_support::*;
use ntsim::image::{self, ImportName, LoadError, PeFile};

// ---- the parser ------------------------------------------------------------------------------

/// A minimal PE32+ built in memory: every header field the loader uses, the section, the
/// relocation and the imports (by name and by ordinal) come back as written.
#[test]
fn parser_reads_headers_section_relocation_and_imports() {
    let mut pe = Pe::importing(&["KeSetEvent", "DbgPrint"]);
    pe.imports.push(("HAL.dll".into(), Imp::Ordinal(7)));
    pe.pointer(0x10, 0x40);
    let bytes = pe.build();
    let f = PeFile::parse(&bytes).expect("parses");
    assert_eq!(f.image_base, BASE);
    assert_eq!(f.size_of_image, 0x2000);
    assert_eq!(f.size_of_headers, 0x200);
    assert_eq!(f.entry_point, CODE);
    assert_eq!(f.subsystem, 1);
    assert_eq!(f.sections.len(), 1);
    let s = &f.sections[0];
    assert_eq!(
        (
            s.name.as_str(),
            s.virtual_address,
            s.mapped_size(),
            s.raw_offset
        ),
        (".text", 0x1000, 0x1000, 0x200)
    );
    assert_eq!(f.relocations, vec![DATA + 0x10]);
    let imports: Vec<(String, ImportName, u32)> = f
        .imports
        .iter()
        .map(|i| (i.dll.clone(), i.name.clone(), i.iat_rva))
        .collect();
    assert_eq!(
        imports,
        vec![
            (
                "ntoskrnl.exe".into(),
                ImportName::Name("KeSetEvent".into()),
                pe.iat("KeSetEvent")
            ),
            (
                "ntoskrnl.exe".into(),
                ImportName::Name("DbgPrint".into()),
                pe.iat("DbgPrint")
            ),
            (
                "HAL.dll".into(),
                ImportName::Ordinal(7),
                pe.iat("DbgPrint") + 16
            ),
        ]
    );
    assert_eq!(
        f.rva_to_offset(DATA + 0x10),
        Some((DATA + 0x10 - 0x1000 + 0x200) as usize)
    );
}

#[test]
fn parser_refuses_what_is_not_an_x64_pe_image() {
    assert!(matches!(
        PeFile::parse(b"not a PE"),
        Err(LoadError::Malformed(_))
    ));
    let mut bytes = Pe::default().build();
    bytes.truncate(0x90);
    assert!(matches!(
        PeFile::parse(&bytes),
        Err(LoadError::Malformed(_))
    ));
    let arm = Pe {
        machine: 0xAA64,
        ..Pe::default()
    };
    assert_eq!(
        PeFile::parse(&arm.build()),
        Err(LoadError::UnsupportedMachine(0xAA64))
    );
    let mut highlow = Pe::default();
    highlow.put_data(0x20, &[0; 8]);
    highlow.relocs.push((DATA + 0x20, 3));
    assert_eq!(
        PeFile::parse(&highlow.build()),
        Err(LoadError::UnsupportedRelocation {
            rva: DATA + 0x20,
            kind: 3
        })
    );
    assert!(
        LoadError::UnsupportedRelocation { rva: 0, kind: 3 }
            .to_string()
            .contains("only DIR64")
    );
}

// ---- import resolution -----------------------------------------------------------------------

/// An image that imports routines ntsim lacks is refused, and the error names every one of
/// them (by name, by ordinal, from an unknown module), not only the first.
#[test]
fn image_importing_a_routine_ntsim_lacks_is_refused_naming_it() {
    let mut pe = Pe::importing(&["KeSetEvent", "ZwFrobnicate", "DbgPrint"]);
    pe.imports
        .push(("HAL.dll".into(), Imp::Name("HalMakeBeep".into())));
    pe.imports.push(("ntoskrnl.exe".into(), Imp::Ordinal(42)));
    pe.imports
        .push(("FLTMGR.SYS".into(), Imp::Name("FltRegisterFilter".into())));
    let err = image::load_image_bytes("bad.sys", &pe.build()).expect_err("refused");
    let LoadError::MissingImports(lines) = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(
        lines,
        &vec![
            "image imports ntoskrnl.exe!ZwFrobnicate, which ntsim does not provide".to_string(),
            "image imports ntoskrnl.exe!#42 by ordinal; ntsim binds imports by name only".into(),
            "image imports HAL.dll!HalMakeBeep, which ntsim does not provide".into(),
            "image imports FLTMGR.SYS!FltRegisterFilter, but ntsim provides only ntoskrnl.exe and HAL.dll"
                .into(),
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("4 unresolved import(s):"), "{text}");
    assert!(text.contains("ntoskrnl.exe!ZwFrobnicate, which ntsim does not provide"));
}

/// Module names match case-insensitively; a routine is only found in the module that exports
/// it.
#[test]
fn imports_resolve_by_module_and_name() {
    let mut pe = Pe::importing(&[]);
    pe.imports
        .push(("NTOSKRNL.EXE".into(), Imp::Name("KeSetEvent".into())));
    pe.imports.push((
        "hal.dll".into(),
        Imp::Name("KeQueryPerformanceCounter".into()),
    ));
    pe.imports
        .push(("HAL.dll".into(), Imp::Name("KeSetEvent".into())));
    let err = image::load_image_bytes("x.sys", &pe.build()).expect_err("refused");
    assert_eq!(
        err,
        LoadError::MissingImports(vec![
            "image imports HAL.dll!KeSetEvent, which ntsim provides only from ntoskrnl.exe".into()
        ])
    );
}

#[test]
fn export_table_has_the_routines_and_variables_drivers_import() {
    let names = image::exported_names();
    for (module, name, data) in [
        ("ntoskrnl.exe", "KeBugCheckEx", false),
        ("ntoskrnl.exe", "DbgPrint", false),
        ("ntoskrnl.exe", "DbgPrintEx", false),
        ("ntoskrnl.exe", "DbgBreakPoint", false),
        ("ntoskrnl.exe", "ExAllocatePool2", false),
        ("ntoskrnl.exe", "ExAllocatePoolWithQuotaTag", false),
        ("ntoskrnl.exe", "ExFreePoolWithTag", false),
        ("ntoskrnl.exe", "IoCsqInsertIrpEx", false),
        ("ntoskrnl.exe", "IofCompleteRequest", false),
        ("ntoskrnl.exe", "__chkstk", false),
        ("ntoskrnl.exe", "memcpy", false),
        ("HAL.dll", "KeQueryPerformanceCounter", false),
        ("ntoskrnl.exe", "ExEventObjectType", true),
        ("ntoskrnl.exe", "IoFileObjectType", true),
        ("ntoskrnl.exe", "PsThreadType", true),
        ("ntoskrnl.exe", "PsProcessType", true),
    ] {
        assert!(
            names.contains(&(module, name, data)),
            "{module}!{name} missing"
        );
    }
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "an export is listed twice");
    // Inline routines of the WDK are not exports of the real kernel.
    for inline in [
        "IoGetCurrentIrpStackLocation",
        "IoSetCancelRoutine",
        "KeInitializeSpinLock",
    ] {
        assert!(
            !names.iter().any(|e| e.1 == inline),
            "{inline} is inline, not an export"
        );
    }
}

// ---- DbgPrint's formatter --------------------------------------------------------------------

fn fmt(format: &str, args: &[u64]) -> String {
    let f = std::ffi::CString::new(format).expect("no NUL");
    // SAFETY: a NUL-terminated format; string arguments point to live NUL-terminated strings.
    unsafe { image::format_dbgprint(f.as_ptr().cast(), args) }
}

#[test]
fn dbgprint_formats_integers_with_widths_and_lengths() {
    assert_eq!(
        fmt("%d %d %u", &[42, (-7i64) as u64, 0xFFFF_FFFF]),
        "42 -7 4294967295"
    );
    // Without a length modifier an int is 32 bits: the upper half of the slot is ignored.
    assert_eq!(fmt("%d", &[0x1_0000_0005]), "5");
    assert_eq!(fmt("%x %X %#x", &[0xBEEF, 0xBEEF, 0x10]), "beef BEEF 0x10");
    assert_eq!(
        fmt("%08x|%-6d|%6d|%+d", &[0xABC, 12, 12, 3]),
        "00000abc|12    |    12|+3"
    );
    assert_eq!(
        fmt("%ld %lu %lx", &[(-1i64) as u64, 7, 0x1_0000_00FF]),
        "-1 7 ff"
    );
    assert_eq!(
        fmt(
            "%llx %I64x %I64d %zu",
            &[0x1234_5678_9ABC, 0xFFFF_0000_0000, (-2i64) as u64, 9]
        ),
        "123456789abc ffff00000000 -2 9"
    );
    assert_eq!(fmt("%hd %hhu", &[0x1_FFFF, 0x1FF]), "-1 255");
    assert_eq!(fmt("%*d|%.3d|%o", &[5, 42, 7, 8]), "   42|007|10");
    assert_eq!(fmt("%p", &[0xFFFF_F800_1234_5678]), "FFFFF80012345678");
    assert_eq!(
        fmt("100%% %c%c", &[u64::from(b'o'), u64::from(b'k')]),
        "100% ok"
    );
    assert_eq!(fmt("%d %d", &[1]), "1 0", "a missing argument reads as 0");
    assert_eq!(
        fmt("%q and %", &[]),
        "%q and %",
        "unknown conversions are copied"
    );
}

#[test]
fn dbgprint_formats_narrow_wide_and_counted_strings() {
    let narrow = std::ffi::CString::new("csq").expect("no NUL");
    let wide: Vec<u16> = "événement\0".encode_utf16().collect();
    let s = narrow.as_ptr() as u64;
    let w = wide.as_ptr() as u64;
    assert_eq!(
        fmt("[%s] [%ws] [%S] [%ls]", &[s, w, w, w]),
        "[csq] [événement] [événement] [événement]"
    );
    assert_eq!(
        fmt("[%5s] [%-5s] [%.2s] [%.*s]", &[s, s, s, 1, s]),
        "[  csq] [csq  ] [cs] [c]"
    );
    assert_eq!(fmt("%s %ws", &[0, 0]), "(null) (null)");
    assert_eq!(
        fmt("%hs %C %wc", &[s, u64::from('é'), u64::from('x')]),
        "csq é x"
    );
    // UNICODE_STRING: Length (bytes) 0, MaximumLength 2, Buffer 8; not NUL-terminated.
    let buf: Vec<u16> = "DeviceXYZ".encode_utf16().collect();
    let mut us = [0u8; 16];
    us[0..2].copy_from_slice(&12u16.to_le_bytes());
    us[2..4].copy_from_slice(&18u16.to_le_bytes());
    us[8..16].copy_from_slice(&(buf.as_ptr() as u64).to_le_bytes());
    let ansi_buf = b"ansi-string";
    let mut ansi = [0u8; 16];
    ansi[0..2].copy_from_slice(&4u16.to_le_bytes());
    ansi[8..16].copy_from_slice(&(ansi_buf.as_ptr() as u64).to_le_bytes());
    assert_eq!(
        fmt("%wZ|%Z|%wZ", &[us.as_ptr() as u64, ansi.as_ptr() as u64, 0]),
        "Device|ansi|(null)"
    );
}

// ---- running in-memory images (x86_64 Unix hosts) --------------------------------------------

#[cfg(all(target_arch = "x86_64", unix))]
mod run {
    use super::*;
    use ntsim::iomgr::{LeakReport, UnloadOutcome, unload_driver};
    use ntsim::ntdef::*;
    use ntsim::{Config, Kernel, Rule};

    const FORMAT: usize = 0x40;
    const ARG: usize = 0x80;
    const UNLOAD_FORMAT: usize = 0xC0;

    /// DriverEntry: `DbgPrint("hello from %s %d\n", "image", 42)` through two relocated
    /// pointers; returns STATUS_SUCCESS.
    fn hello_image() -> Pe {
        let mut pe = Pe::importing(&["DbgPrint"]);
        pe.put_data(FORMAT, b"hello from %s %d\n\0");
        pe.put_data(ARG, b"image\0");
        pe.pointer(0x00, FORMAT as u32);
        pe.pointer(0x08, ARG as u32);
        let mut a = Asm::at(0);
        a.enter()
            .load_rcx(DATA)
            .load_rdx(DATA + 8)
            .mov_r8d(42)
            .call_import(pe.iat("DbgPrint"))
            .mov_eax(0)
            .leave();
        pe.code = code(&[&a]);
        pe
    }

    #[test]
    fn in_memory_image_is_relocated_and_its_driver_entry_prints() {
        let pe = hello_image();
        let img = image::load_image_bytes("hello.sys", &pe.build()).expect("loads");
        assert_ne!(
            img.base() as u64,
            BASE,
            "mapped elsewhere than its preferred base"
        );
        // SAFETY: DATA lies inside the mapped image; the slot was relocated.
        let slot = unsafe { ((img.base() + DATA as usize) as *const u64).read() };
        assert_eq!(slot, (img.base() + DATA as usize + FORMAT) as u64);
        assert_eq!(img.entry_point(), img.base() + CODE as usize);
        let i = img.clone();
        let out = Kernel::new(Config::default()).run(move || {
            image::load_image_driver(&i, "Hello").expect("DriverEntry succeeds");
            assert_eq!(
                image::load_image_driver(&i, "Hello2"),
                Err(image::STATUS_IMAGE_ALREADY_LOADED)
            );
        });
        out.expect_clean();
        assert_eq!(img.debug_log(), vec!["hello from image 42\n".to_string()]);
    }

    /// A data import's IAT slot holds the address of storage that holds the POBJECT_TYPE, as a
    /// variable export of ntoskrnl does.
    #[test]
    fn data_imports_point_to_storage_holding_the_object_type() {
        let pe = Pe::importing(&["PsThreadType", "ExEventObjectType", "KeSetEvent"]);
        let img = image::load_image_bytes("data.sys", &pe.build()).expect("loads");
        let read = |rva: u32| {
            // SAFETY: the IAT slot lies inside the mapped image.
            unsafe { ((img.base() + rva as usize) as *const usize).read() }
        };
        // SAFETY: a bound data import points to a pointer-sized variable.
        let var = |rva: u32| unsafe { (read(rva) as *const usize).read() };
        assert_eq!(
            var(pe.iat("PsThreadType")),
            ntsim::object::PsThreadType() as usize
        );
        assert_eq!(
            var(pe.iat("ExEventObjectType")),
            ntsim::object::ExEventObjectType() as usize
        );
        let thunk = read(pe.iat("KeSetEvent"));
        assert!(
            thunk != 0 && !img.contains(thunk),
            "a function binds to ntsim's entry point"
        );
    }

    /// KeBugCheckEx from an image halts the machine with a fatal BUGCHECK report carrying the
    /// code and the four parameters (the fourth passed on the stack, win64 style).
    #[test]
    fn image_that_bugchecks_stops_the_machine_with_its_code() {
        let mut pe = Pe::importing(&["KeBugCheckEx"]);
        let mut a = Asm::at(0);
        a.enter()
            .mov_ecx(0xE2)
            .mov_edx(0x11)
            .mov_r8d(0x22)
            .mov_r9d(0x33)
            .mov_stack(0x20, 0x44)
            .call_import(pe.iat("KeBugCheckEx"))
            .mov_eax(0)
            .leave();
        pe.code = code(&[&a]);
        let img = image::load_image_bytes("crash.sys", &pe.build()).expect("loads");
        let out = Kernel::new(Config::default()).run(move || {
            let _ = image::load_image_driver(&img, "Crash");
            unreachable!("DriverEntry bugchecked");
        });
        assert!(out.value.is_none());
        let stop = out.stop.expect("stopped");
        assert_eq!(stop.rule, Rule::BugCheck);
        assert_eq!(
            stop.message,
            "KeBugCheckEx(0x000000E2, 0x11, 0x22, 0x33, 0x44)"
        );
        assert_eq!(
            stop.message,
            image::bugcheck_message(0xE2, [0x11, 0x22, 0x33, 0x44])
        );
        assert!(
            stop.parties.iter().any(|p| p == "driver image crash.sys"),
            "{:?}",
            stop.parties
        );
    }

    /// DriverEntry stores its DriverUnload; unloading calls it with the win64 convention (its
    /// driver object arrives in RCX, which it prints).
    fn unloadable(alloc: Option<bool>) -> Pe {
        let mut pe = Pe::importing(&["DbgPrint", "ExAllocatePool2", "ExFreePoolWithTag"]);
        pe.put_data(UNLOAD_FORMAT, b"unload %p\n\0");
        let unload_at = 0x100;
        let mut entry = Asm::at(0);
        entry
            .enter()
            .lea_rax(CODE + unload_at)
            .store_rax_at_rcx(0x68);
        if let Some(free) = alloc {
            // ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, 'Leak'), then maybe ExFreePoolWithTag.
            entry
                .mov_ecx(0x40)
                .mov_edx(64)
                .mov_r8d(u32::from_le_bytes(*b"Leak"))
                .call_import(pe.iat("ExAllocatePool2"));
            if free {
                entry
                    .mov_rcx_rax()
                    .mov_edx(u32::from_le_bytes(*b"Leak"))
                    .call_import(pe.iat("ExFreePoolWithTag"));
            }
        }
        entry.mov_eax(0).leave();
        let mut unload = Asm::at(unload_at);
        unload
            .enter()
            .mov_rdx_rcx()
            .lea_rcx(DATA + UNLOAD_FORMAT as u32)
            .call_import(pe.iat("DbgPrint"))
            .leave();
        pe.code = code(&[&entry, &unload]);
        pe
    }

    #[test]
    fn image_callbacks_are_called_with_the_win64_convention() {
        let img = image::load_image_bytes("unload.sys", &unloadable(None).build()).expect("loads");
        let i = img.clone();
        let out = Kernel::new(Config::default()).run(move || {
            let drv = image::load_image_driver(&i, "Unloadable").expect("loads");
            // SAFETY: a loaded driver object.
            assert_eq!(unsafe { (*drv).DriverStart } as usize, i.base());
            assert!(image::driver_image(drv).is_some_and(|d| d.base() == i.base()));
            let r = unload_driver(drv).expect("unloads");
            assert_eq!(r, UnloadOutcome::Unloaded(LeakReport::default()));
            drv as usize
        });
        let drv = out.expect_clean();
        assert_eq!(img.debug_log(), vec![format!("unload {drv:016X}\n")]);
    }

    /// Pool an image allocates and never frees is reported at unload; freed pool is not.
    #[test]
    fn pool_an_image_leaks_is_reported_at_unload() {
        let img =
            image::load_image_bytes("leak.sys", &unloadable(Some(false)).build()).expect("loads");
        let out = Kernel::new(Config::default()).run(move || {
            let drv = image::load_image_driver(&img, "Leaky").expect("loads");
            unload_driver(drv).expect("unloads")
        });
        let leaks = out.reports_of(Rule::Leak);
        assert_eq!(leaks.len(), 1, "{:?}", out.reports);
        let Some(UnloadOutcome::Unloaded(report)) = out.value else {
            panic!("not unloaded");
        };
        assert_eq!(report.pool_blocks.len(), 1);
        assert_eq!(report.pool_blocks[0].size, 64);
    }

    #[test]
    fn pool_an_image_frees_is_not_a_leak() {
        let img =
            image::load_image_bytes("tidy.sys", &unloadable(Some(true)).build()).expect("loads");
        let out = Kernel::new(Config::default()).run(move || {
            let drv = image::load_image_driver(&img, "Tidy").expect("loads");
            unload_driver(drv).expect("unloads")
        });
        assert_eq!(
            out.expect_clean(),
            UnloadOutcome::Unloaded(LeakReport::default())
        );
    }

    /// A DriverEntry that fails: load_image_driver returns its status and no driver remains.
    #[test]
    fn failing_driver_entry_returns_its_status() {
        let mut pe = Pe::default();
        let mut a = Asm::at(0);
        a.mov_eax(STATUS_INSUFFICIENT_RESOURCES as u32).raw_ret();
        pe.code = code(&[&a]);
        let img = image::load_image_bytes("fail.sys", &pe.build()).expect("loads");
        let out = Kernel::new(Config::default())
            .run(move || image::load_image_driver(&img, "Fails").map(|d| d as usize));
        assert_eq!(out.expect_clean(), Err(STATUS_INSUFFICIENT_RESOURCES));
    }
}

// ---- the cross-built images (NTSIM_TEST_IMAGES) ----------------------------------------------

#[cfg(all(target_arch = "x86_64", unix))]
mod cross_built {
    use std::path::PathBuf;

    use ntsim::image::{self, LoadedImage};
    use ntsim::iomgr::*;
    use ntsim::ntdef::*;
    use ntsim::{Config, Kernel, Rule};

    // The probe's IOCTLs (samples/ntsim-probe/src/lib.rs).
    const IOCTL_PING: u32 = 0x8000_2000;
    const IOCTL_TIMER: u32 = 0x8000_2004;
    const IOCTL_BUGCHECK: u32 = 0x8000_2008;
    const IOCTL_BREAK: u32 = 0x8000_200C;
    const PROBE: &str = "\\\\.\\NtsimProbe";

    /// `$NTSIM_TEST_IMAGES/<file>` (a relative directory is taken from the workspace root), or
    /// `None` with a notice when the variable is unset. A missing file with the variable set
    /// fails: CI sets it right after building the images.
    fn image(file: &str) -> Option<LoadedImage> {
        let Some(dir) = std::env::var_os("NTSIM_TEST_IMAGES") else {
            eprintln!(
                "skipped: NTSIM_TEST_IMAGES is not set (run scripts/windows-build.sh, then set it to target/windows/out)"
            );
            return None;
        };
        let mut path = PathBuf::from(dir);
        if path.is_relative() {
            path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(path);
        }
        let path = path.join(file);
        let img = image::load_image(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let imports: Vec<String> = img.imports().iter().map(|i| i.display_name()).collect();
        eprintln!("{file}: imports {}", imports.join(", "));
        Some(img)
    }

    fn probe_log_of_driver_entry() -> Vec<String> {
        vec![
            "probe: DriverEntry \\Registry\\Machine\\System\\CurrentControlSet\\Services\\NtsimProbe\n".into(),
            "probe: str -5 7 beef BEEF k\n".into(),
            "probe: -6 8 abc 1122334455667788 ffff00000000 0000001f|3   |\n".into(),
            "probe: wide WIDE 0000000000001234 %\n".into(),
            "probe: DbgPrintEx 77\n".into(),
            format!("probe: pool {}\n", 0x5A * 128),
            "probe: event 1\n".into(),
            "probe: ready\n".into(),
        ]
    }

    /// The probe image end to end: DriverEntry (DbgPrint formats, pool, event, device and
    /// link), its dispatch routines through the I/O manager, a timer whose DPC signals the
    /// waiting dispatch routine, DbgBreakPoint, and DriverUnload with nothing left behind.
    #[test]
    fn probe_image_runs_driver_entry_dispatch_timer_dpc_and_unload() {
        let Some(img) = image("ntsim_probe.sys") else {
            return;
        };
        let i = img.clone();
        let out = Kernel::new(Config::default()).run(move || {
            let drv = image::load_image_driver(&i, "NtsimProbe").expect("DriverEntry");
            let p = Process::create("probe-client");
            p.spawn_thread("client", || {
                let h = create_file(PROBE, OpenMode::Synchronous).expect("open");
                let r = device_io_control(h, IOCTL_PING, &[], 4)
                    .expect("ping")
                    .wait();
                assert_eq!(
                    (r.status, r.output.as_slice()),
                    (STATUS_SUCCESS, &b"pong"[..])
                );
                let before = interrupt_time();
                let r = device_io_control(h, IOCTL_TIMER, &[], 0)
                    .expect("timer")
                    .wait();
                assert_eq!(r.status, STATUS_SUCCESS);
                assert!(
                    interrupt_time() - before >= 100_000,
                    "the 10 ms timer expired first"
                );
                let r = device_io_control(h, IOCTL_BREAK, &[], 0)
                    .expect("break")
                    .wait();
                assert_eq!(r.status, STATUS_SUCCESS);
                let r = device_io_control(h, 0x8000_2FFC, &[], 0)
                    .expect("unknown")
                    .wait();
                assert_eq!(r.status, STATUS_INVALID_DEVICE_REQUEST);
                assert_eq!(close_handle(h), STATUS_SUCCESS);
            })
            .join();
            unload_driver(drv).expect("unload")
        });
        let outcome = out.expect_clean();
        assert_eq!(outcome, UnloadOutcome::Unloaded(LeakReport::default()));
        let mut expected = probe_log_of_driver_entry();
        expected.extend(["probe: dpc\n".into(), "probe: timer done\n".into()]);
        expected.push("probe: unload\n".into());
        assert_eq!(img.debug_log(), expected);
        assert_eq!(img.breakpoints(), 1);
    }

    /// The probe's bugcheck IOCTL stops the machine with a BUGCHECK report naming the code and
    /// parameters; the run still returns its reports (the client never gets an answer).
    #[test]
    fn probe_image_that_bugchecks_is_reported_with_its_code() {
        let Some(img) = image("ntsim_probe.sys") else {
            return;
        };
        let out = Kernel::new(Config::default()).run(move || {
            image::load_image_driver(&img, "NtsimProbe").expect("DriverEntry");
            let p = Process::create("probe-client");
            p.spawn_thread("client", || {
                let h = create_file(PROBE, OpenMode::Synchronous).expect("open");
                let _ = device_io_control(h, IOCTL_BUGCHECK, &[], 0);
                unreachable!("the machine stopped");
            })
            .join();
        });
        assert!(out.value.is_none());
        assert_eq!(out.reports_of(Rule::BugCheck).len(), 1);
        let stop = out.stop.expect("bugchecked");
        assert_eq!(stop.rule, Rule::BugCheck);
        assert_eq!(
            stop.message,
            "KeBugCheckEx(0x000000E2, 0xdead, 0x1, 0x2, 0x3)"
        );
        assert!(
            stop.parties
                .iter()
                .any(|p| p == "driver image ntsim_probe.sys")
        );
    }

    /// The two product images load and their DriverEntry succeeds.
    #[test]
    fn cross_built_driver_images_load_and_enter() {
        for (file, service) in [
            ("csq_event.sys", "CsqEvent"),
            ("startio_event.sys", "StartIoEvent"),
        ] {
            let Some(img) = image(file) else {
                return;
            };
            let out = Kernel::new(Config::default())
                .run(move || image::load_image_driver(&img, service).map(|d| d as usize));
            assert!(out.expect_clean().is_ok(), "{file}: DriverEntry failed");
        }
    }
}
