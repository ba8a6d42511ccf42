#!/bin/sh
# Build one release archive of kubectl-vmmem for krew and GitHub releases.
#
#   scripts/package.sh [--bin FILE] [--platform OS_ARCH] [--version vX.Y.Z] [--out DIR]
#
# The archive holds the binary (kubectl-vmmem, or kubectl-vmmem.exe for windows), LICENSE and
# README.md at its top level: kubectl-vmmem_<version>_<os>_<arch>.tar.gz (.zip for windows), with
# a <archive>.sha256 file next to it. Defaults: the binary of `cargo build --release` (built if
# missing), this machine's platform, v<version from Cargo.toml>, dist/.
# Prints the archive's path.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bin=""
platform=""
version=""
out="$root/dist"

while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done

if [ -z "$version" ]; then
  version="v$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
fi
case "$version" in
  v[0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "package.sh: version $version is not like v1.2.3 (krew needs the v)" >&2; exit 1 ;;
esac

if [ -z "$platform" ]; then
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW*|MSYS*|CYGWIN*) os=windows ;;
    *) echo "package.sh: unknown OS $(uname -s); pass --platform OS_ARCH" >&2; exit 1 ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "package.sh: unknown CPU $(uname -m); pass --platform OS_ARCH" >&2; exit 1 ;;
  esac
  platform="${os}_${arch}"
fi
case "$platform" in
  linux_amd64|linux_arm64|darwin_amd64|darwin_arm64|windows_amd64) ;;
  *) echo "package.sh: platform $platform is not one we release (linux_amd64, linux_arm64, darwin_amd64, darwin_arm64, windows_amd64)" >&2; exit 1 ;;
esac

exe=kubectl-vmmem
ext=tar.gz
case "$platform" in windows_*) exe=kubectl-vmmem.exe; ext=zip ;; esac

if [ -z "$bin" ]; then
  bin="$root/target/release/$exe"
  if [ ! -f "$bin" ]; then
    (cd "$root" && cargo build --release --locked) >&2
  fi
fi
[ -f "$bin" ] || { echo "package.sh: binary $bin not found" >&2; exit 1; }

name="kubectl-vmmem_${version}_${platform}"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
stage="$work/stage"
mkdir "$stage"
cp "$bin" "$stage/$exe"
cp "$root/LICENSE" "$root/README.md" "$stage/"
# Reproducible: the same binary, LICENSE and README give the same bytes, whoever packs them and
# whenever. Fixed modes, owner 0, every date 1980-01-01 00:00 UTC (the earliest a zip can hold),
# entries in sorted order, no extra zip fields, no name or date in the gzip header.
chmod 755 "$stage/$exe"
chmod 644 "$stage/LICENSE" "$stage/README.md"
TZ=UTC0 touch -t 198001010000 "$stage/$exe" "$stage/LICENSE" "$stage/README.md"
entries=$(printf '%s\n' "$exe" LICENSE README.md | LC_ALL=C sort)

archive="$out/$name.$ext"
rm -f "$archive"
if [ "$ext" = zip ]; then
  if command -v zip >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # entries are our three plain names
    (cd "$stage" && TZ=UTC0 zip -q -X -D "$archive" $entries)
  else
    echo "package.sh: need zip to build $archive" >&2; exit 1
  fi
else
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    # shellcheck disable=SC2086
    (cd "$stage" && tar --format=ustar --owner=0 --group=0 --numeric-owner -cf ../archive.tar $entries)
  else
    # bsdtar (macOS): no extended attributes or AppleDouble files.
    # shellcheck disable=SC2086
    (cd "$stage" && COPYFILE_DISABLE=1 tar --format ustar --uid 0 --gid 0 --numeric-owner \
        --no-xattrs --no-mac-metadata -cf ../archive.tar $entries)
  fi
  gzip -n -9 < "$stage/../archive.tar" > "$archive"
fi

if command -v sha256sum >/dev/null 2>&1; then
  sum=$(sha256sum "$archive" | cut -d' ' -f1)
else
  sum=$(shasum -a 256 "$archive" | cut -d' ' -f1)
fi
printf '%s  %s\n' "$sum" "$name.$ext" > "$archive.sha256"
echo "$archive"
