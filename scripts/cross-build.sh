#!/bin/sh
# Build kubectl-vmmem for every platform krew installs it on, package each with scripts/package.sh,
# check each binary, and regenerate krew-manifest.yaml from the archives' real sha256 sums:
#
#   scripts/cross-build.sh [--platform OS_ARCH]... [--version vX.Y.Z] [--out DIR]
#                          [--no-manifest] [--allow-dirty] [--parallel]
#   scripts/cross-build.sh --print-targets
#
# Platforms (default: all five) and the Rust target each is built for:
#   linux_amd64 x86_64-unknown-linux-musl     static, runs on any distribution
#   linux_arm64 aarch64-unknown-linux-musl
#   darwin_amd64 x86_64-apple-darwin
#   darwin_arm64 aarch64-apple-darwin
#   windows_amd64 x86_64-pc-windows-gnu
# Linux and Windows are linked by zig through cargo-zigbuild on any host. On macOS, darwin
# targets are built by plain cargo against Apple's SDK; elsewhere they are linked by zig: with
# the SDK where SDKROOT names one, else against link stubs of the two frameworks the TLS stack
# uses (scripts/macos-framework-stubs.py says why that yields the same binary).
# Installs what it lacks: the rustup targets, and zig + cargo-zigbuild from PyPI into a venv in
# target/cross-tools (unless both are on PATH already). Every binary goes through scripts/check-binary.py (file type, CPU, static
# linking, Mach-O libraries and code signature); the one this machine can run is run.
# With all five platforms and without --no-manifest it rewrites krew-manifest.yaml (naming this
# build in its header) and installs the linux/amd64 or darwin archive of this machine, as the
# manifest describes it, into a temporary krew layout and runs it through kubectl.
# Builds from a clean work tree only (the binary's --version names the commit), unless
# --allow-dirty. Archives go to DIST (default dist/, not committed). --parallel builds all
# platforms at once, each after the first in target/cross/PLATFORM (more disk, less waiting).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

TARGETS="linux_amd64 x86_64-unknown-linux-musl
linux_arm64 aarch64-unknown-linux-musl
darwin_amd64 x86_64-apple-darwin
darwin_arm64 aarch64-apple-darwin
windows_amd64 x86_64-pc-windows-gnu"
# Versions of the PyPI tools this was last checked with; override to try others.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.17.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.24.1}

platforms=""
version=""
out="$root/dist"
manifest=1
allow_dirty=0
parallel=0
while [ $# -gt 0 ]; do
  case "$1" in
    --platform) platforms="$platforms $2"; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-manifest) manifest=0; shift ;;
    --allow-dirty) allow_dirty=1; shift ;;
    --parallel) parallel=1; shift ;;
    --print-targets) echo "$TARGETS"; exit 0 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "cross-build.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
all=$(echo "$TARGETS" | cut -d' ' -f1 | tr '\n' ' ')
[ -n "$platforms" ] || platforms=$all
for p in $platforms; do
  echo "$TARGETS" | grep -q "^$p " || { echo "cross-build.sh: unknown platform $p (one of: $all)" >&2; exit 1; }
done
if [ "$manifest" = 1 ]; then
  for p in $all; do
    case " $platforms " in *" $p "*) ;; *)
      echo "cross-build.sh: krew-manifest.yaml needs all five platforms; pass --no-manifest to build fewer" >&2
      exit 1 ;;
    esac
  done
fi
[ -n "$version" ] || version="v$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"

say() { printf '\n== %s\n' "$*"; }
die() { echo "cross-build.sh: $*" >&2; exit 1; }

if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && [ "$allow_dirty" = 0 ]; then
  die "the work tree has uncommitted changes; commit them (the binaries name the commit) or pass --allow-dirty"
fi
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo "unknown revision")

host_os=$(uname -s)
case "$(uname -m)" in x86_64|amd64) host_arch=amd64 ;; aarch64|arm64) host_arch=arm64 ;; *) host_arch=$(uname -m) ;; esac
case "$host_os" in Linux) host="linux_$host_arch" ;; Darwin) host="darwin_$host_arch" ;; *) host="other" ;; esac

target_of() { echo "$TARGETS" | grep "^$1 " | cut -d' ' -f2; }
exe_of() { case "$1" in windows_*) echo kubectl-vmmem.exe ;; *) echo kubectl-vmmem ;; esac; }
# How a platform is built on this host: cargo (native macOS SDK) or zig.
builder_of() {
  case "$1" in darwin_*) [ "$host_os" = Darwin ] && { echo cargo; return; } ;; esac
  echo zig
}

say "tools"
command -v rustup >/dev/null 2>&1 || die "rustup is needed to add the Rust targets"
for p in $platforms; do
  t=$(target_of "$p")
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
need_zig=0
for p in $platforms; do [ "$(builder_of "$p")" = zig ] && need_zig=1; done
tools="$root/target/cross-tools"
have_zig() { command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1; }
if [ "$need_zig" = 1 ]; then
  if ! { command -v cargo-zigbuild >/dev/null 2>&1 && have_zig; }; then
    if [ ! -x "$tools/venv/bin/cargo-zigbuild" ]; then
      python3 -m venv "$tools/venv" || die "python3 with venv is needed to install zig and cargo-zigbuild from PyPI"
      "$tools/venv/bin/python" -m pip install --quiet "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
    fi
    # cargo-zigbuild runs `python3 -m ziglang` when zig is not on PATH: the venv's python first.
    PATH="$tools/venv/bin:$PATH"
    export PATH
  fi
  zig_version=$(zig version 2>/dev/null || python3 -m ziglang version)
  zigbuild_version=$(cargo-zigbuild --version | cut -d' ' -f2)
fi
rustc_version=$(rustc --version | cut -d' ' -f2)
echo "rustc $rustc_version${zig_version:+, zig $zig_version, cargo-zigbuild $zigbuild_version}; commit $revision; host $host"

stubs=""
sdk_note=""
for p in $platforms; do
  case "$(builder_of "$p"):$p:${SDKROOT:-}" in
    zig:darwin_*:) sdk_note="darwin linked by zig against framework stubs (scripts/macos-framework-stubs.py), no macOS SDK"
      if [ -z "$stubs" ]; then
        stubs="$root/target/cross-tools/framework-stubs"
        rm -rf "$stubs"
        python3 scripts/macos-framework-stubs.py "$stubs" --target "$(target_of "$p")"
      fi ;;
    zig:darwin_*) sdk_note="darwin linked by zig against the macOS SDK in SDKROOT" ;;
  esac
done

# jemalloc (the Linux allocator) learns the page size by running a test program, which a cross
# build cannot: it would assume 4 KiB and refuse to start on arm64 kernels with 16 KiB pages
# (Raspberry Pi 5, Asahi) or 64 KiB pages (RHEL on arm64). 64 KiB works on all three.
AARCH64_UNKNOWN_LINUX_MUSL_JEMALLOC_SYS_WITH_LG_PAGE=${AARCH64_UNKNOWN_LINUX_MUSL_JEMALLOC_SYS_WITH_LG_PAGE:-16}
export AARCH64_UNKNOWN_LINUX_MUSL_JEMALLOC_SYS_WITH_LG_PAGE

# Where a platform's build goes: CARGO_TARGET_DIR or target/, except that with --parallel every
# platform but the first gets its own target/cross/PLATFORM (cargo locks a build folder, so
# builds sharing one would run one after another).
for first in $platforms; do break; done
target_dir_of() {
  if [ "$parallel" = 1 ] && [ "$1" != "$first" ]; then echo "$root/target/cross/$1"
  else echo "${CARGO_TARGET_DIR:-$root/target}"; fi
}

build_one() {
  p=$1
  t=$(target_of "$p")
  CARGO_TARGET_DIR=$(target_dir_of "$p")
  export CARGO_TARGET_DIR
  case "$(builder_of "$p"):$p" in
    cargo:*) cargo build --release --locked --target "$t" ;;
    zig:darwin_*)
      if [ -n "$stubs" ]; then
        # Only the final link needs the stubs: `rustc` passes the flag to this crate alone.
        cargo-zigbuild rustc --release --locked --target "$t" --bin kubectl-vmmem -- -L "framework=$stubs"
      else
        cargo-zigbuild zigbuild --release --locked --target "$t"
      fi ;;
    zig:*) cargo-zigbuild zigbuild --release --locked --target "$t" ;;
  esac
}

if [ "$parallel" = 1 ]; then
  say "build $platforms at once (logs in target/cross/PLATFORM.log)"
  mkdir -p "$root/target/cross"
  pids=""
  for p in $platforms; do
    (build_one "$p" > "$root/target/cross/$p.log" 2>&1) &
    pids="$pids $!:$p"
  done
  failed=""
  for pp in $pids; do
    wait "${pp%%:*}" || failed="$failed ${pp#*:}"
  done
  for p in $failed; do
    echo "build of $p failed; the end of target/cross/$p.log:" >&2
    tail -n 30 "$root/target/cross/$p.log" >&2
  done
  [ -z "$failed" ] || die "builds failed:$failed"
else
  for p in $platforms; do
    say "build $p ($(target_of "$p"))"
    build_one "$p"
  done
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
for p in $platforms; do
  say "check and package $p"
  bin="$(target_dir_of "$p")/$(target_of "$p")/release/$(exe_of "$p")"
  [ -f "$bin" ] || die "the build left no $bin"
  python3 scripts/check-binary.py "$p" "$bin"
  if [ "$p" = "$host" ] || { [ "$host" = darwin_arm64 ] && [ "$p" = darwin_amd64 ] && arch -x86_64 true 2>/dev/null; }; then
    said=$("$bin" --version)
    echo "$p: runs here: $said"
    case "$said" in *"($revision"*) ;; *) die "$bin --version does not name commit $revision: $said" ;; esac
  else
    echo "$p: not run (this machine is $host)"
  fi
  sh scripts/package.sh --bin "$bin" --platform "$p" --version "$version" --out "$out"
done

say "archives"
for p in $platforms; do
  for f in "$out"/kubectl-vmmem_"$version"_"$p".*; do
    case "$f" in *.sha256) ;; *) cat "$f.sha256" ;; esac
  done
done

[ "$manifest" = 1 ] || exit 0

say "krew-manifest.yaml"
built_by="scripts/cross-build.sh on $host from commit $revision with rustc $rustc_version"
[ -n "${zig_version:-}" ] && built_by="$built_by, zig $zig_version, cargo-zigbuild $zigbuild_version"
[ -n "$sdk_note" ] && built_by="$built_by; $sdk_note"
sh scripts/krew-manifest.sh --built-by "$built_by" "$version" "$out" > "$out/krew-manifest.yaml"
cp "$out/krew-manifest.yaml" krew-manifest.yaml
grep -E '^# |sha256:' krew-manifest.yaml

case "$host" in linux_amd64|darwin_amd64|darwin_arm64) ;; *)
  echo "no krew install check: krew-manifest.yaml has no archive for $host"; exit 0 ;;
esac
say "krew install of the $host archive, as krew-manifest.yaml describes it"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH: cannot check the plugin installs and runs through kubectl"
archive="$out/kubectl-vmmem_${version}_$host.tar.gz"
want=$(awk -v f="$(basename "$archive")" '$1 == "uri:" && index($2, "/" f) { getline; print $2 }' krew-manifest.yaml)
if command -v sha256sum >/dev/null 2>&1; then got=$(sha256sum "$archive" | cut -d' ' -f1)
else got=$(shasum -a 256 "$archive" | cut -d' ' -f1); fi
if [ -z "$want" ] || [ "$want" != "$got" ]; then die "$archive: sha256 $got, manifest says '$want'"; fi
krew=$(mktemp -d)
trap 'rm -rf "$krew"' EXIT INT TERM
store="$krew/store/vmmem/$version"
mkdir -p "$store" "$krew/bin" "$krew/receipts" "$krew/home"
tar xzf "$archive" -C "$store"
for f in LICENSE kubectl-vmmem; do [ -f "$store/$f" ] || die "$archive has no $f"; done
ln -s "$store/kubectl-vmmem" "$krew/bin/kubectl-vmmem"
cp krew-manifest.yaml "$krew/receipts/vmmem.yaml"
run() { HOME="$krew/home" KUBECONFIG="$krew/home/none" PATH="$krew/bin:$PATH" "$@"; }
run kubectl plugin list 2>/dev/null | grep -F "$krew/bin/kubectl-vmmem" >/dev/null \
  || die "kubectl plugin list does not find the installed plugin"
echo "kubectl plugin list: finds KREW_ROOT/bin/kubectl-vmmem"
said=$(run kubectl vmmem --version)
echo "kubectl vmmem --version: $said"
case "$said" in *"($revision"*) ;; *) die "the installed plugin does not name commit $revision" ;; esac
run kubectl vmmem list --demo > "$krew/list.txt" || die "kubectl vmmem list --demo failed"
head -n 3 "$krew/list.txt"
grep -q '^NAMESPACE' "$krew/list.txt" || die "kubectl vmmem list --demo printed no table"
echo "krew install check: ok"
