#!/usr/bin/env python3
"""Link stubs (.tbd) for the two macOS frameworks kubectl-vmmem links, for building the darwin
binaries on a machine without Apple's SDK:

    scripts/macos-framework-stubs.py OUT_DIR [--target TRIPLE]

kube's rustls stack verifies server certificates through the OS (rustls-platform-verifier and
rustls-native-certs, both through the security-framework crates), so the darwin binary links
Security.framework and CoreFoundation.framework. Linking needs only each framework's install
name and the symbols it exports: that is what the SDK's own .tbd files hold. This writes
OUT_DIR/<Name>.framework/<Name>.tbd with the install name every macOS has and, as exports, every
function and static that the locked core-foundation-sys and security-framework-sys crates declare
in their `extern "C"` blocks (their link_name spellings too). The binary then records the same
load commands and symbol bindings as one linked against the SDK; dyld resolves them in the real
frameworks at run time. Pass OUT_DIR to rustc as `-L framework=OUT_DIR`.

A framework that the dependency tree links but this script knows nothing of is an error, so a new
dependency cannot slip through to a binary that fails to load.
"""
import json
import os
import re
import subprocess
import sys

# framework -> (crate that declares its symbols, install name on every macOS)
FRAMEWORKS = {
    "CoreFoundation": (
        "core-foundation-sys",
        "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
    ),
    "Security": (
        "security-framework-sys",
        "/System/Library/Frameworks/Security.framework/Versions/A/Security",
    ),
}

LINK_FRAMEWORK = re.compile(r'link\(\s*name\s*=\s*"([^"]+)"\s*,\s*kind\s*=\s*"framework"')
EXTERN_OPEN = re.compile(r'^\s*(unsafe\s+)?extern\s+"C"\s*\{\s*$')
DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:safe\s+|unsafe\s+)?(?:fn|static(?:\s+mut)?)\s+([A-Za-z_][A-Za-z0-9_$]*)")
LINK_NAME = re.compile(r'link_name\s*=\s*"([^"]+)"')


def fail(msg):
    print(f"macos-framework-stubs: {msg}", file=sys.stderr)
    sys.exit(1)


def metadata(target):
    """The packages cargo resolves for `target`, each with the features the lock enables."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--filter-platform", target],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)
    enabled = {n["id"]: set(n.get("features", [])) for n in meta["resolve"]["nodes"]}
    pkgs = [p for p in meta["packages"] if p["id"] in enabled]
    for p in pkgs:
        p["enabled"] = enabled[p["id"]]
    return pkgs


def rust_files(package):
    src = os.path.dirname(package["manifest_path"])
    for d, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def linked_frameworks(pkgs):
    """framework name -> crates that link it (outside tests and examples)."""
    found = {}
    for p in pkgs:
        src_dir = os.path.join(os.path.dirname(p["manifest_path"]), "src")
        for path in rust_files(p):
            if not path.startswith(src_dir + os.sep):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in LINK_FRAMEWORK.finditer(text):
                # A link behind a cargo feature the lock does not enable (security-framework's
                # job-bless -> ServiceManagement) is not in the binary: its cfg(feature = "...")
                # stands on the lines just above.
                above = "\n".join(text[: m.start()].splitlines()[-3:])
                gates = re.findall(r'feature\s*=\s*"([^"]+)"', above)
                if any(g not in p["enabled"] for g in gates):
                    continue
                found.setdefault(m.group(1), set()).add(p["name"])
    return found


def symbols(package):
    names = set()
    for path in rust_files(package):
        depth = 0
        pending_link_name = None
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                code = line.split("//", 1)[0]
                if depth == 0:
                    if EXTERN_OPEN.match(code):
                        depth = 1
                    continue
                m = LINK_NAME.search(code)
                if m:
                    pending_link_name = m.group(1)
                    continue
                m = DECL.match(code)
                if m:
                    names.add(m.group(1))
                    if pending_link_name:
                        names.add(pending_link_name)
                    pending_link_name = None
                depth += code.count("{") - code.count("}")
    return sorted(names)


def tbd(install_name, names):
    targets = "[ x86_64-macos, arm64-macos ]"
    lines = [
        "--- !tapi-tbd",
        "tbd-version:     4",
        f"targets:         {targets}",
        f"install-name:    '{install_name}'",
        "current-version: 1",
        "compatibility-version: 1",
        "exports:",
        f"  - targets:         {targets}",
        "    symbols:         [ " + ", ".join(f"'_{n}'" for n in names) + " ]",
        "...",
    ]
    return "\n".join(lines) + "\n"


def main():
    args = sys.argv[1:]
    target = "aarch64-apple-darwin"
    if "--target" in args:
        i = args.index("--target")
        target = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        fail("usage: scripts/macos-framework-stubs.py OUT_DIR [--target TRIPLE]")
    out = args[0]
    pkgs = metadata(target)
    by_name = {p["name"]: p for p in pkgs}
    linked = linked_frameworks(pkgs)
    unknown = sorted(set(linked) - set(FRAMEWORKS))
    if unknown:
        fail(
            "the dependency tree links frameworks this script has no stub for: "
            + ", ".join(f"{f} (by {', '.join(sorted(linked[f]))})" for f in unknown)
            + "; build on macOS or teach the script their crates"
        )
    for fw, (crate, install) in FRAMEWORKS.items():
        if fw not in linked:
            continue
        if crate not in by_name:
            fail(f"{fw} is linked but {crate}, which declares its symbols, is not in the tree")
        names = symbols(by_name[crate])
        if len(names) < 20:
            fail(f"found only {len(names)} symbols in {crate}: the source layout changed")
        d = os.path.join(out, f"{fw}.framework")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{fw}.tbd"), "w", encoding="utf-8") as f:
            f.write(tbd(install, names))
        print(f"{fw}: {len(names)} symbols from {crate} {by_name[crate]['version']}")


if __name__ == "__main__":
    main()
