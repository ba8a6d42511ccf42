#!/usr/bin/env python3
"""Check that a built kubectl-vmmem is a program for the platform it is released for:

    scripts/check-binary.py PLATFORM BINARY      (PLATFORM: linux_amd64, darwin_arm64, ...)

Prints what `file` says and fails unless it names the right format and CPU (linux: a static ELF
so it runs on any distribution; windows: a PE32+ console program; darwin: a Mach-O executable).
For Mach-O it also reads the load commands itself: every library it loads must be one that every
macOS has (/usr/lib, /System/Library), and the code signature (which Apple silicon requires, ad
hoc is enough) must be present on arm64, and wherever present each page's hash must match the
file, so a strip after signing cannot slip through. Exits 1 with the reason on the first failure.
"""
import hashlib
import re
import struct
import subprocess
import sys

FILE_SAYS = {
    "linux_amd64": r"ELF 64-bit LSB .*x86-64.*static(-pie)?(ally)? linked",
    "linux_arm64": r"ELF 64-bit LSB .*ARM aarch64.*static(-pie)?(ally)? linked",
    "darwin_amd64": r"Mach-O 64-bit x86_64 executable",
    "darwin_arm64": r"Mach-O 64-bit arm64 executable",
    "windows_amd64": r"PE32\+ executable.*console.*x86-64",
}
CPU = {"darwin_amd64": 0x01000007, "darwin_arm64": 0x0100000C}
LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB = 0xC, 0x80000018, 0x8000001F
LC_CODE_SIGNATURE = 0x1D
CSMAGIC_EMBEDDED_SIGNATURE, CSMAGIC_CODEDIRECTORY = 0xFADE0CC0, 0xFADE0C02
HASHES = {1: hashlib.sha1, 2: hashlib.sha256}


def fail(msg):
    print(f"check-binary: {msg}", file=sys.stderr)
    sys.exit(1)


def macho(platform, data):
    if data[:4] != b"\xcf\xfa\xed\xfe":
        fail("not a 64-bit little-endian Mach-O file")
    cpu, _sub, filetype, ncmds, _size, _flags = struct.unpack_from("<iIIIII", data, 4)
    if cpu & 0xFFFFFFFF != CPU[platform]:
        fail(f"Mach-O CPU type {cpu:#x}, not {CPU[platform]:#x} for {platform}")
    if filetype != 2:
        fail(f"Mach-O file type {filetype}, not an executable (2)")
    off = 32
    dylibs, signature = [], None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        if cmd in (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB):
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            raw = data[off + name_off : off + size]
            dylibs.append(raw.split(b"\0", 1)[0].decode())
        elif cmd == LC_CODE_SIGNATURE:
            signature = struct.unpack_from("<II", data, off + 8)
        off += size
    for lib in dylibs:
        print(f"  loads {lib}")
        if not lib.startswith(("/usr/lib/", "/System/Library/")):
            fail(f"{lib} is not a library every macOS has")
    if not any(lib.startswith("/usr/lib/libSystem") for lib in dylibs):
        fail("does not load libSystem")
    if signature is None:
        if platform == "darwin_arm64":
            fail("no code signature (LC_CODE_SIGNATURE): Apple silicon refuses to run it")
        # Intel macOS runs unsigned programs (Apple's own linker signs only arm64 by default).
        print("  code signature: none (not required on x86_64)")
        return
    dataoff, datasize = signature
    blob = data[dataoff : dataoff + datasize]
    magic, _length, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        fail(f"code signature magic {magic:#x} is not an embedded signature")
    checked = 0
    for i in range(count):
        _slot, boff = struct.unpack_from(">II", blob, 12 + 8 * i)
        if struct.unpack_from(">I", blob, boff)[0] != CSMAGIC_CODEDIRECTORY:
            continue
        (_m, _l, _version, flags, hash_off, _ident, _nspecial, ncode, code_limit, hash_size,
         hash_type, _platform, page_log2) = struct.unpack_from(">IIIIIIIIIBBBB", blob, boff)
        if hash_type not in HASHES:
            fail(f"code directory hash type {hash_type} unknown")
        page = 1 << page_log2
        for n in range(ncode):
            start = n * page
            want = blob[boff + hash_off + n * hash_size : boff + hash_off + (n + 1) * hash_size]
            got = HASHES[hash_type](data[start : min(start + page, code_limit)]).digest()
            if got[:hash_size] != want:
                fail(f"code signature page {n} does not match the file: modified after signing")
        kind = "ad hoc" if flags & 0x2 else "signed"
        print(f"  code signature: {kind}, {ncode} pages of {page} bytes verified")
        checked += 1
    if not checked:
        fail("code signature has no code directory")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in FILE_SAYS:
        fail("usage: scripts/check-binary.py " + "|".join(FILE_SAYS) + " BINARY")
    platform, path = sys.argv[1], sys.argv[2]
    try:
        said = subprocess.run(["file", "-b", path], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"cannot run `file` on {path} ({e}): install file")
    print(f"{platform}: file says: {said}")
    if not re.search(FILE_SAYS[platform], said):
        fail(f"{path} is not a {platform} program (want /{FILE_SAYS[platform]}/)")
    if platform in CPU:
        with open(path, "rb") as f:
            macho(platform, f.read())
    print(f"{platform}: ok")


if __name__ == "__main__":
    main()
