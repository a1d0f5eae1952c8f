#!/usr/bin/env python3
"""Check the Windows images built by scripts/windows-build.sh (standard library only).

Usage: check-windows-images.py [--driver FILE.sys]... [--console-exe FILE.exe]...

A kernel driver (--driver) must be:
  - PE32+ for AMD64, subsystem NATIVE (1), an executable image;
  - entered at DriverEntry: the entry point RVA equals DriverEntry's RVA (from the export table,
    or from a linker map FILE.map beside the image when it exports nothing);
  - importing only from ntoskrnl.exe and HAL.dll;
  - carrying a PE checksum equal to the one computed over the file (drivers are loaded only
    with a correct checksum);
  - NX-compatible, relocatable (DYNAMIC_BASE), FORCE_INTEGRITY, with no section both writable
    and executable (what HVCI requires).
A user-mode program (--console-exe) must be PE32+ for AMD64 with subsystem WINDOWS_CUI (3).

Prints one summary per image (imports included) and one line per failed property, naming the
image; exits 1 if any property fails, 2 on bad usage.
"""

import argparse
import os
import struct
import sys

MACHINE_AMD64 = 0x8664
PE32_PLUS = 0x20B
SUBSYSTEM_NATIVE = 1
SUBSYSTEM_WINDOWS_CUI = 3
SUBSYSTEMS = {1: "NATIVE", 2: "WINDOWS_GUI", 3: "WINDOWS_CUI"}
FILE_DLL = 0x2000
FILE_EXECUTABLE_IMAGE = 0x0002
DLLCHAR = {"DYNAMIC_BASE": 0x0040, "FORCE_INTEGRITY": 0x0080, "NX_COMPAT": 0x0100}
SCN_MEM_EXECUTE = 0x20000000
SCN_MEM_WRITE = 0x80000000
DRIVER_IMPORTS_ALLOWED = {"ntoskrnl.exe", "hal.dll"}


class BadImage(Exception):
    """The file is not a PE image this script can read."""


class Pe:
    """The few parts of a PE32+ image that the checks read."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if len(d) < 0x40 or d[:2] != b"MZ":
            raise BadImage("no MZ header")
        pe = struct.unpack_from("<I", d, 0x3C)[0]
        if d[pe : pe + 4] != b"PE\0\0":
            raise BadImage("no PE signature")
        (self.machine, nsections, _, _, _, opt_size, self.characteristics) = struct.unpack_from(
            "<HHIIIHH", d, pe + 4
        )
        opt = pe + 24
        self.magic = struct.unpack_from("<H", d, opt)[0]
        if self.magic != PE32_PLUS:
            raise BadImage(f"optional header magic 0x{self.magic:x}, expected 0x20b (PE32+)")
        self.entry_rva = struct.unpack_from("<I", d, opt + 16)[0]
        self.checksum_offset = opt + 64
        self.checksum = struct.unpack_from("<I", d, self.checksum_offset)[0]
        self.subsystem, self.dll_characteristics = struct.unpack_from("<HH", d, opt + 68)
        ndirs = struct.unpack_from("<I", d, opt + 108)[0]
        self.dirs = [struct.unpack_from("<II", d, opt + 112 + 8 * i) for i in range(min(ndirs, 16))]
        self.sections = []
        for i in range(nsections):
            s = opt + opt_size + 40 * i
            name = d[s : s + 8].rstrip(b"\0").decode("ascii", "replace")
            vsize, va, rawsize, rawptr = struct.unpack_from("<IIII", d, s + 8)
            flags = struct.unpack_from("<I", d, s + 36)[0]
            self.sections.append((name, va, max(vsize, rawsize), rawptr, rawsize, flags))

    def offset(self, rva):
        for _, va, size, rawptr, rawsize, _ in self.sections:
            if va <= rva < va + size:
                if rva - va >= rawsize:
                    raise BadImage(f"RVA 0x{rva:x} lies in uninitialized data")
                return rawptr + rva - va
        raise BadImage(f"RVA 0x{rva:x} is in no section")

    def cstr(self, rva):
        o = self.offset(rva)
        return self.data[o : self.data.index(b"\0", o)].decode("ascii", "replace")

    def imports(self):
        """{dll name: [function names]} from the import directory."""
        result = {}
        rva, size = self.dirs[1] if len(self.dirs) > 1 else (0, 0)
        if not rva or not size:
            return result
        o = self.offset(rva)
        while True:
            oft, _, _, name_rva, ft = struct.unpack_from("<IIIII", self.data, o)
            if not (oft or name_rva or ft):
                break
            names = []
            t = self.offset(oft or ft)
            while True:
                thunk = struct.unpack_from("<Q", self.data, t)[0]
                if thunk == 0:
                    break
                if thunk >> 63:
                    names.append(f"#{thunk & 0xFFFF}")
                else:
                    names.append(self.cstr((thunk & 0x7FFFFFFF) + 2))
                t += 8
            result[self.cstr(name_rva)] = names
            o += 20
        return result

    def exports(self):
        """{name: RVA} from the export directory."""
        rva, size = self.dirs[0] if self.dirs else (0, 0)
        if not rva or not size:
            return {}
        o = self.offset(rva)
        (_, _, _, _, _, _, nfuncs, nnames, funcs, names, ordinals) = struct.unpack_from(
            "<IIHHIIIIIII", self.data, o
        )
        result = {}
        for i in range(nnames):
            name = self.cstr(struct.unpack_from("<I", self.data, self.offset(names) + 4 * i)[0])
            ordinal = struct.unpack_from("<H", self.data, self.offset(ordinals) + 2 * i)[0]
            if ordinal < nfuncs:
                result[name] = struct.unpack_from("<I", self.data, self.offset(funcs) + 4 * ordinal)[0]
        return result

    def computed_checksum(self):
        """The PE checksum: 16-bit one's-complement sum with carries, plus the file length."""
        buf = bytearray(self.data)
        buf[self.checksum_offset : self.checksum_offset + 4] = b"\0\0\0\0"
        if len(buf) % 2:
            buf += b"\0"
        total = sum(struct.unpack_from(f"<{len(buf) // 2}H", buf))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return (total + len(self.data)) & 0xFFFFFFFF


def map_file_rva(image_path, symbol):
    """RVA of `symbol` from an lld-link/link.exe map file beside the image, if there is one."""
    for map_path in (os.path.splitext(image_path)[0] + ".map", image_path + ".map"):
        if not os.path.exists(map_path):
            continue
        with open(map_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                # lld-link: "Address Size Align Out In Symbol" rows: VA first, symbol last.
                if parts and parts[-1] == symbol:
                    try:
                        return int(parts[0], 16)
                    except ValueError:
                        continue
    return None


def subsystem_name(value):
    return f"{value} ({SUBSYSTEMS.get(value, 'other')})"


def check_common(pe, name, fail):
    if pe.machine != MACHINE_AMD64:
        fail(f"machine is 0x{pe.machine:04x}, expected 0x8664 (AMD64)")


def check_driver(path):
    name = os.path.basename(path)
    failures = []

    def fail(msg):
        failures.append(f"FAIL {name}: {msg}")

    try:
        pe = Pe(path)
    except (OSError, BadImage, struct.error, ValueError) as e:
        return [f"FAIL {name}: not a readable PE32+ image: {e}"]

    check_common(pe, name, fail)
    if pe.subsystem != SUBSYSTEM_NATIVE:
        fail(f"subsystem is {subsystem_name(pe.subsystem)}, expected 1 (NATIVE)")
    # A cdylib driver (as windows-drivers-rs builds them) keeps IMAGE_FILE_DLL; the loader does
    # not mind. A `[[bin]]` with `#![no_main]` gives MSVC's exact 0x22. Not checked.
    if not pe.characteristics & FILE_EXECUTABLE_IMAGE:
        fail("characteristics lacks IMAGE_FILE_EXECUTABLE_IMAGE")
    for flag, bit in DLLCHAR.items():
        if not pe.dll_characteristics & bit:
            fail(f"DllCharacteristics 0x{pe.dll_characteristics:04x} lacks {flag}")
    for sname, _, _, _, _, flags in pe.sections:
        if flags & SCN_MEM_EXECUTE and flags & SCN_MEM_WRITE:
            fail(f"section {sname} is both writable and executable")

    exports = pe.exports()
    entry = exports.get("DriverEntry")
    source = "export table"
    if entry is None:
        entry, source = map_file_rva(path, "DriverEntry"), "map file"
    if entry is None:
        source = "not found"
        fail("DriverEntry not found (neither exported nor in a .map file beside the image)")
    elif pe.entry_rva != entry:
        fail(f"entry point RVA is 0x{pe.entry_rva:x}, but DriverEntry is at 0x{entry:x} ({source})")

    imports = pe.imports()
    for dll in imports:
        if dll.lower() not in DRIVER_IMPORTS_ALLOWED:
            fail(f"imports from {dll} ({', '.join(imports[dll][:5])}...); only ntoskrnl.exe and HAL.dll are allowed")

    computed = pe.computed_checksum()
    if pe.checksum == 0:
        fail(f"PE checksum is 0 (link with /RELEASE); computed 0x{computed:08x}")
    elif pe.checksum != computed:
        fail(f"PE checksum is 0x{pe.checksum:08x}, computed 0x{computed:08x}")

    print(
        f"{name}: AMD64, subsystem {subsystem_name(pe.subsystem)}, entry 0x{pe.entry_rva:x}"
        f" (DriverEntry: {source}), characteristics 0x{pe.characteristics:04x},"
        f" checksum 0x{pe.checksum:08x}, {len(pe.data)} bytes"
    )
    print(f"  exports: {', '.join(sorted(exports)) or '(none)'}")
    if not imports:
        print("  imports: (none)")
    for dll, names in imports.items():
        print(f"  imports from {dll} ({len(names)}): {', '.join(sorted(names))}")
    return failures


def check_console_exe(path):
    name = os.path.basename(path)
    failures = []

    def fail(msg):
        failures.append(f"FAIL {name}: {msg}")

    try:
        pe = Pe(path)
    except (OSError, BadImage, struct.error, ValueError) as e:
        return [f"FAIL {name}: not a readable PE32+ image: {e}"]
    check_common(pe, name, fail)
    if pe.subsystem != SUBSYSTEM_WINDOWS_CUI:
        fail(f"subsystem is {subsystem_name(pe.subsystem)}, expected 3 (WINDOWS_CUI, console)")
    if pe.characteristics & FILE_DLL:
        fail("characteristics has IMAGE_FILE_DLL set")
    imports = pe.imports()
    print(
        f"{name}: PE32+ AMD64, subsystem {subsystem_name(pe.subsystem)}, {len(pe.data)} bytes,"
        f" imports from {', '.join(sorted(imports)) or '(none)'}"
    )
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", action="append", default=[], metavar="FILE.sys")
    parser.add_argument("--console-exe", action="append", default=[], metavar="FILE.exe")
    args = parser.parse_args()
    if not args.driver and not args.console_exe:
        parser.error("nothing to check")
    failures = []
    for path in args.driver:
        failures += check_driver(path)
    for path in args.console_exe:
        failures += check_console_exe(path)
    for line in failures:
        print(line, file=sys.stderr)
    checked = len(args.driver) + len(args.console_exe)
    if failures:
        print(f"check-windows-images: {len(failures)} failed properties in {checked} images", file=sys.stderr)
        return 1
    print(f"check-windows-images: {checked} images OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
