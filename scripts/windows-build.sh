#!/bin/sh
# Build the real Windows files on a Linux (Debian 12) host, then check them:
#   target/windows/out/csq_event.sys      WDM driver (driver/)
#   target/windows/out/startio_event.sys  WDM driver (samples/startio-event/)
#   target/windows/out/eventctl.exe       user-mode client (samples/eventctl/)
#   target/windows/out/ntsim_probe.sys    test fixture for ntsim's image loader (samples/ntsim-probe/)
#
# Usage: scripts/windows-build.sh [--no-install] [--no-clippy] [--no-check]
#   WINDOWS_PROFILE=release|dev   cargo profile of the images (default: release)
#
# Idempotent and non-interactive (CI-safe). What it does, in order:
#   1. installs the Debian packages it needs (apt-get; skipped when all are installed);
#   2. prepares target/windows-prep/ (skipped while its stamp is current):
#      - a copy of wdk-build 0.6.0 from the cargo registry, edited to build on a Linux host
#        (nothing of wdk-build is committed; cargo uses it through `patch.crates-io`);
#      - a fake WDK content root: mingw-w64's DDK headers laid out like a WDK, and ntoskrnl.lib,
#        hal.lib, wmilib.lib import libraries made by llvm-dlltool from mingw-w64's export lists;
#   3. builds wdm-csq and both drivers for x86_64-pc-windows-msvc (wdk-sys, build-std core+alloc)
#      and eventctl for x86_64-pc-windows-gnu (build-std std+panic_abort, mingw-w64 gcc);
#   4. copies the images to target/windows/out/ and checks them (scripts/check-windows-images.py);
#   5. runs clippy for the Windows target on wdm-csq and both drivers with -D warnings.
# target/windows (cargo's cache) and target/windows-prep are kept between runs.
# The recipe behind this: shared/design/windows-cross-build.md; user docs: docs/windows-build.md.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

PREP="$ROOT/target/windows-prep"
OUT="$ROOT/target/windows/out"
PROFILE="${WINDOWS_PROFILE:-release}"
MSVC=x86_64-pc-windows-msvc
GNU=x86_64-pc-windows-gnu
WDK_BUILD_VERSION=0.6.0      # the edits below are written against this exact version
SDK_VERSION=10.0.22621.0     # any 10.x.y.z works; only the folder layout matters
LLVM=22

INSTALL=1 CLIPPY=1 CHECK=1
for arg in "$@"; do
    case "$arg" in
        --no-install) INSTALL=0 ;;
        --no-clippy) CLIPPY=0 ;;
        --no-check) CHECK=0 ;;
        -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "windows-build: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
case "$PROFILE" in
    release) PROFILE_DIR=release ;;
    dev) PROFILE_DIR=debug ;;
    *) echo "windows-build: WINDOWS_PROFILE must be release or dev, not '$PROFILE'" >&2; exit 2 ;;
esac

step() { printf '\n==> windows: %s\n' "$*"; }
die() { echo "windows-build: error: $*" >&2; exit 1; }
now() { date +%s; }
T0=$(now)

# ---------------------------------------------------------------------------------------------
step "packages"
PACKAGES="rustc-web cargo-web rust-web-src rust-web-clippy lld-$LLVM llvm-$LLVM libclang-$LLVM-dev \
mingw-w64-x86-64-dev gcc-mingw-w64-x86-64 python3"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    [ "$INSTALL" = 1 ] || die "missing Debian packages:$missing (run without --no-install)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install:$missing"
        SUDO="sudo -n"
    fi
    echo "installing:$missing"
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
else
    echo "all present: $PACKAGES"
fi
PY=/usr/bin/python3
for tool in /usr/bin/rustc /usr/bin/cargo /usr/bin/cargo-clippy "lld-link-$LLVM" "llvm-dlltool-$LLVM" \
    "llvm-nm-$LLVM" "llvm-ar-$LLVM" x86_64-w64-mingw32-gcc "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found after installing the packages"
done
[ -d /usr/lib/rustlib/src/rust/library ] || die "rust-web-src's library sources are missing"
/usr/bin/rustc --version

# The Debian toolchain for every cargo call below (rustup's rustc has no rust-src here).
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
CARGO=/usr/bin/cargo

# ---------------------------------------------------------------------------------------------
step "prepare target/windows-prep (patched wdk-build, fake WDK)"
mkdir -p "$PREP"
# The lock file the Windows builds use: a copy of the repository's, so that the path patch of
# wdk-build never rewrites the committed Cargo.lock.
if ! cmp -s Cargo.lock "$PREP/Cargo.lock.src" 2>/dev/null; then
    cp Cargo.lock "$PREP/Cargo.lock.src"
    cp Cargo.lock "$PREP/Cargo.lock"
fi
grep -A1 '^name = "wdk-build"$' Cargo.lock | grep -q "^version = \"$WDK_BUILD_VERSION\"\$" \
    || die "Cargo.lock must pin wdk-build $WDK_BUILD_VERSION (the version the edits are written for)"

STAMP_KEY=$( {
    cat "$0"
    dpkg-query -W "mingw-w64-x86-64-dev" "llvm-$LLVM" "libclang-$LLVM-dev" "rustc-web"
} | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PREP/stamp" 2>/dev/null || true)" = "$STAMP_KEY" ] \
    && [ -f "$PREP/wdk-build/Cargo.toml" ] && [ -f "$PREP/wdk/Lib/$SDK_VERSION/km/x64/ntoskrnl.lib" ]; then
    echo "up to date (stamp $PREP/stamp)"
else
    rm -f "$PREP/stamp"

    # wdk-build 0.6.0's .crate, verified by cargo against the lock file's checksum.
    nice -n 10 "$CARGO" fetch --locked --target "$MSVC" >/dev/null
    CRATE=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"wdk-build-$WDK_BUILD_VERSION.crate" | head -n1)
    [ -f "$CRATE" ] || die "cargo fetch did not bring wdk-build-$WDK_BUILD_VERSION.crate"
    rm -rf "$PREP/wdk-build" "$PREP/wdk-build-$WDK_BUILD_VERSION"
    tar -xzf "$CRATE" -C "$PREP"
    mv "$PREP/wdk-build-$WDK_BUILD_VERSION" "$PREP/wdk-build"

    # Edits that let wdk-build run on a Linux host; each must apply exactly as counted.
    "$PY" - "$PREP/wdk-build" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
def edit(rel, old, new, count):
    path = root / rel
    text = path.read_text()
    found = text.count(old)
    if found != count:
        sys.exit(f"patch wdk-build: {rel}: expected {count} x {old!r}, found {found}")
    path.write_text(text.replace(old, new))
# The `windows` crate does not compile on Linux: only depend on it on Windows hosts.
edit("Cargo.toml", "\n[dependencies.windows]\n",
     "\n[target.'cfg(windows)'.dependencies.windows]\n", 1)
edit("Cargo.toml", "\n[dev-dependencies.windows]\n",
     "\n[target.'cfg(windows)'.dev-dependencies.windows]\n", 1)
# Registry look-ups for the WDK root: Windows only (WDKContentRoot is set here).
edit("src/utils.rs", "\nuse windows::{", "\n#[cfg(windows)]\nuse windows::{", 1)
edit("src/utils.rs", "\nuse std::{", "\n#![cfg_attr(not(windows), allow(unused_imports))]\nuse std::{", 1)
edit("src/utils.rs", "\nfn read_registry_key_string_value(",
     "\n#[cfg(windows)]\nfn read_registry_key_string_value(", 1)
edit("src/utils.rs", "\n    if let Some(path) = read_registry_key_string_value(",
     "\n    #[cfg(windows)]\n    if let Some(path) = read_registry_key_string_value(", 2)
# set_var/remove_var refuse to compile on non-Windows hosts by design: fail at run time instead
# (the wdk-sys build never calls them).
edit("src/utils.rs", "compile_error!(", "panic!(", 2)
# The cargo-make helper symlinks with the Windows call: use the Unix one on Unix.
edit("src/cargo_make.rs", "std::os::windows::fs::symlink_file(", "symlink_file(", 2)
path = root / "src/cargo_make.rs"
path.write_text(path.read_text() + """
#[cfg(windows)]
use std::os::windows::fs::symlink_file;
#[cfg(unix)]
use std::os::unix::fs::symlink as symlink_file;
""")
EOF

    # A WDK content root: Include/<v>/{km,km/crt,shared} and Lib/<v>/km/x64/*.lib.
    WDK="$PREP/wdk"
    rm -rf "$WDK"
    INC="$WDK/Include/$SDK_VERSION"
    LIB="$WDK/Lib/$SDK_VERSION/km/x64"
    mkdir -p "$INC" "$LIB"
    cp -R /usr/share/mingw-w64/include/ddk "$INC/km"      # kernel headers (ntddk.h, wdm.h, ...)
    mkdir -p "$INC/km/crt"                                  # searched first: keep it empty
    ln -s /usr/share/mingw-w64/include "$INC/shared"        # ntdef.h, basetsd.h, ...
    # What mingw-w64 10 lacks and wdk-sys needs (declared by the real WDK's wdm.h).
    cat >"$WDK/wdk-compat.h" <<'EOF'
#include <wdm.h>
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_USE_QUOTA 0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED 0x0000000000000002ULL
#define POOL_FLAG_CACHE_ALIGNED 0x0000000000000008ULL
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED 0x0000000000000100ULL
NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
EOF
    # Import libraries from mingw-w64's export lists (+ what the compat header adds).
    implib() { # implib <mingw lib> <dll name> <out name> [extra exports...]
        src=/usr/x86_64-w64-mingw32/lib/$1 dll=$2 out=$3
        shift 3
        {
            echo "LIBRARY $dll"
            echo "EXPORTS"
            { "llvm-nm-$LLVM" "$src" 2>/dev/null | sed -n 's/^.* I __imp_\(.*\)$/\1/p'
              for extra in "$@"; do echo "$extra"; done; } | sort -u
        } >"$PREP/$out.def"
        [ "$(wc -l <"$PREP/$out.def")" -gt 2 ] || die "no exports found in $src"
        "llvm-dlltool-$LLVM" -m i386:x86-64 -d "$PREP/$out.def" -l "$LIB/$out.lib"
    }
    # ExAllocatePool2: see wdk-compat.h. __chkstk: exported by the real ntoskrnl.exe (x64) and
    # needed by any function with a frame over 4 KiB; mingw-w64's list lacks it.
    implib libntoskrnl.a ntoskrnl.exe ntoskrnl ExAllocatePool2 __chkstk
    implib libhal.a HAL.dll hal
    implib libwmilib.a WMILIB.SYS wmilib
    "llvm-ar-$LLVM" rc "$LIB/BufferOverflowFastFailK.lib"   # empty: nothing from it is used
    echo "$STAMP_KEY" >"$PREP/stamp"
    echo "prepared: $PREP"
fi

# ---------------------------------------------------------------------------------------------
# Everything wdk-sys's build script (bindgen through libclang) needs on a Linux host.
export WDKContentRoot="$PREP/wdk"
export LIBCLANG_PATH="/usr/lib/llvm-$LLVM/lib"
AMX_GUARDS=""
for h in /usr/lib/llvm-$LLVM/lib/clang/$LLVM/include/amx*.h; do
    # clang's AMX headers declare a packed and aligned type that rustc rejects: skip them.
    g=$(sed -n 's/^#define \(__AMX[A-Z0-9_]*_H\)$/\1/p' "$h" | head -n1)
    [ -n "$g" ] && AMX_GUARDS="$AMX_GUARDS -D$g"
done
BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_msvc="--target=x86_64-w64-windows-gnu \
-fno-ms-compatibility -fno-ms-extensions -resource-dir=/usr/lib/llvm-$LLVM/lib/clang/$LLVM \
$AMX_GUARDS -include $PREP/wdk/wdk-compat.h"
export BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_msvc

# Arguments shared by every Windows cargo call: the patched wdk-build and the lock file copy.
set -- --config "patch.crates-io.wdk-build.path=\"$PREP/wdk-build\"" \
    -Zlockfile-path --config "resolver.lockfile-path=\"$PREP/Cargo.lock\""
PROFILE_ARG="--profile=$PROFILE"

echo "note: cargo warns that the wdk-build patch \"was not used in the crate graph\": that is"
echo "      build-std's own resolve of the standard library; the workspace build uses it."

step "build wdm-csq, csq-event, startio-event, ntsim-probe for $MSVC ($PROFILE)"
T1=$(now)
nice -n 10 "$CARGO" build --config .cargo/windows.toml "$@" $PROFILE_ARG -p wdm-csq -p ntsim-probe
# The product drivers are plain `rlib`s in Cargo.toml (the host links them into tests and
# eventctl); the kernel image is asked for here, as a cdylib, only for the Windows target.
for pkg in csq-event startio-event; do
    nice -n 10 "$CARGO" rustc --config .cargo/windows.toml "$@" $PROFILE_ARG -p "$pkg" \
        --lib --crate-type cdylib
done
echo "($(($(now) - T1)) s)"

step "build eventctl for $GNU ($PROFILE)"
T1=$(now)
nice -n 10 "$CARGO" build --config .cargo/windows-gnu.toml "$@" $PROFILE_ARG -p eventctl
echo "($(($(now) - T1)) s)"

step "collect images in target/windows/out"
mkdir -p "$OUT"
copy() { # copy <built file> <out name>
    [ -f "$1" ] || die "expected build output $1 is missing"
    cp "$1" "$OUT/$2"
    pdb="${1%.*}.pdb"
    [ ! -f "$pdb" ] || cp "$pdb" "$OUT/${2%.*}.pdb"
    echo "$OUT/$2"
}
copy "target/windows/$MSVC/$PROFILE_DIR/csq_event.dll" csq_event.sys
copy "target/windows/$MSVC/$PROFILE_DIR/startio_event.dll" startio_event.sys
copy "target/windows/$MSVC/$PROFILE_DIR/ntsim_probe.dll" ntsim_probe.sys
copy "target/windows/$GNU/$PROFILE_DIR/eventctl.exe" eventctl.exe

if [ "$CHECK" = 1 ]; then
    step "check images"
    "$PY" scripts/check-windows-images.py --driver "$OUT/csq_event.sys" \
        --driver "$OUT/startio_event.sys" --driver "$OUT/ntsim_probe.sys" \
        --console-exe "$OUT/eventctl.exe"
fi

if [ "$CLIPPY" = 1 ]; then
    step "clippy for $MSVC (wdm-csq, csq-event, startio-event, ntsim-probe)"
    T1=$(now)
    # /usr/bin first: Debian's cargo-clippy and clippy-driver match /usr/bin/rustc.
    # Same profile as the build: wdk-sys's bindings (its build script run) are reused.
    PATH="/usr/bin:$PATH" nice -n 10 "$CARGO" clippy --config .cargo/windows.toml "$@" $PROFILE_ARG \
        -p wdm-csq -p csq-event -p startio-event -p ntsim-probe -- -D warnings
    echo "($(($(now) - T1)) s)"
fi

step "done in $(($(now) - T0)) s: $OUT"
ls -l "$OUT"
