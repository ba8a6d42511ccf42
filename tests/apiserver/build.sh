#!/usr/bin/env bash
# Build kube-apiserver (or the kubelet) v1.20.2 from Debian's own `kubernetes` source package with
# Debian's Go, and cache the binary outside the work tree. Idempotent: when the cached binary exists it
# only checks that the runtime packages are installed and prints the binary's path (the only line on
# stdout).
#
#   build.sh [kube-apiserver|kubelet]     (default kube-apiserver)
#
# Environment:
#   VMMEM_APISERVER_CACHE  cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-vmmem/kube-apiserver-v1.20.2)
#   VMMEM_KUBELET_CACHE    the kubelet's (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-vmmem/kubelet-v1.20.2)
#   VMMEM_APISERVER_KEEP_BUILD=1  keep the unpacked source and Go build cache after a successful build
#
# Why each step is needed (kubernetes 1.20 on a current Go):
#   - GOPATH mode: module mode fails with "updates to go.mod needed, disabled by -mod=vendor".
#   - The source tarball lacks pkg/generated/openapi/zz_generated.openapi.go; it is generated here with
#     the vendored openapi-gen.
#   - The vendored github.com/modern-go/reflect2 v1.0.1 crashes under Go >= 1.18 on the first
#     custom-resource request; Debian's reflect2 1.0.2 replaces it.
#   - The kubelet is built with the `dockerless` tag (no dockershim; it talks CRI to containerd) and
#     CGO off, so it needs no C toolchain and no source patch.
set -euo pipefail

VERSION=v1.20.2
COMPONENT="${1:-kube-apiserver}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-vmmem"
case "$COMPONENT" in
kube-apiserver)
    CACHE="${VMMEM_APISERVER_CACHE:-$CACHE_ROOT/kube-apiserver-$VERSION}"
    TAGS=selinux,notest
    RUNTIME_PKGS=(etcd-server openssl curl)
    ;;
kubelet)
    CACHE="${VMMEM_KUBELET_CACHE:-$CACHE_ROOT/kubelet-$VERSION}"
    TAGS=selinux,notest,dockerless
    RUNTIME_PKGS=(containerd runc containernetworking-plugins iproute2)
    ;;
*) echo "usage: build.sh [kube-apiserver|kubelet]" >&2; exit 2 ;;
esac
BIN="$CACHE/bin/$COMPONENT"
# Bump when the recipe below changes: a cached binary from another recipe is rebuilt.
RECIPE=2
BUILD_PKGS=(golang-go dpkg-dev golang-github-modern-go-reflect2-dev)

log() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: ERROR: $*" >&2; exit 1; }

APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get -o DPkg::Lock::Timeout=900 update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
    done
}

ensure_pkgs() {
    local missing
    missing=$(missing_pkgs "$@" | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    [ "$(id -u)" = 0 ] || die "packages missing ($missing) and not root to install them"
    command -v apt-get >/dev/null || die "packages missing ($missing) and no apt-get on this machine"
    apt_update
    log "apt-get install $missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >&2 \
        || die "apt-get install $missing failed"
}

# deb-src entries mirroring every deb822 `Types: deb` stanza of the Debian sources.
ensure_deb_src() {
    local dst=/etc/apt/sources.list.d/kubectl-vmmem-deb-src.sources
    [ -f "$dst" ] && return 0
    if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src ' /etc/apt/sources.list; then
        return 0
    fi
    local src=/etc/apt/sources.list.d/debian.sources
    if [ -f "$src" ]; then
        log "enabling deb-src in $dst"
        sed 's/^Types:.*$/Types: deb-src/' "$src" >"$dst"
    elif [ -f /etc/apt/sources.list ]; then
        log "enabling deb-src in /etc/apt/sources.list.d/kubectl-vmmem-deb-src.list"
        grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
            >/etc/apt/sources.list.d/kubectl-vmmem-deb-src.list
    else
        die "no Debian apt sources found to derive deb-src entries from"
    fi
    APT_UPDATED=0
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9 # one build at a time; later callers find the cached binary

if [ -x "$BIN" ] && [ "$(cat "$BIN.recipe" 2>/dev/null)" = "$RECIPE" ] && "$BIN" --version >/dev/null 2>&1; then
    ensure_pkgs "${RUNTIME_PKGS[@]}"
    echo "$BIN"
    exit 0
fi

start=$(date +%s)
ensure_deb_src # before the first apt-get update, so that one update covers both
ensure_pkgs "${RUNTIME_PKGS[@]}" "${BUILD_PKGS[@]}"
apt_update

WORK="$CACHE/build"
rm -rf "$WORK"
mkdir -p "$WORK"
log "apt-get source kubernetes (into $WORK)"
(cd "$WORK" && apt-get source -qq kubernetes >&2) || die "apt-get source kubernetes failed"
SRC=$(find "$WORK" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n1)
if [ -z "$SRC" ] || [ ! -d "$SRC/cmd/$COMPONENT" ]; then die "unpacked kubernetes source not found in $WORK"; fi
grep -q 'gitMinor.*20\|1\.20' "$SRC/debian/changelog" 2>/dev/null || log "warning: source is not 1.20.x: $(head -n1 "$SRC/debian/changelog")"
log "source: $SRC ($(head -n1 "$SRC/debian/changelog"))"

export GO111MODULE=off GOPATH="$WORK/gopath" GOPROXY=off GOFLAGS="" GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE="$WORK/gocache"
mkdir -p "$GOPATH/src/k8s.io" "$GOPATH/bin"
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
log "go: $(go version)"

# reflect2 1.0.1 -> Debian's 1.0.2
R2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -d "$R2" ] || die "$R2 missing (package golang-github-modern-go-reflect2-dev)"
rm -rf vendor/github.com/modern-go/reflect2
mkdir -p vendor/github.com/modern-go
cp -rL "$R2" vendor/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/go.mod vendor/github.com/modern-go/reflect2/*_test.go

# pkg/generated/openapi/zz_generated.openapi.go
if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
    log "building openapi-gen"
    go build -o "$GOPATH/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >&2 || die "openapi-gen build failed"
    inputs=$(grep -rl --include='*.go' '+k8s:openapi-gen=' . \
        | grep -v -e '^\./vendor/' -e '^\./_output/' -e '^\./debian/' \
            -e '^\./staging/src/k8s.io/code-generator/' -e '^\./staging/src/k8s.io/sample-apiserver/' \
        | xargs -n1 dirname | sort -u \
        | sed -e 's#^\./staging/src/#./vendor/#' -e 's#^\./#k8s.io/kubernetes/#' | paste -sd, -)
    [ -n "$inputs" ] || die "no +k8s:openapi-gen packages found"
    log "openapi-gen over $(echo "$inputs" | tr ',' '\n' | wc -l) packages"
    "$GOPATH/bin/openapi-gen" --logtostderr -v 1 \
        -i "$inputs" \
        -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
        -o "$GOPATH/src" \
        -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
        -r "$WORK/api-rules-violations.list" 2>"$WORK/openapi-gen.log" \
        || { tail -n 30 "$WORK/openapi-gen.log" >&2; die "openapi-gen failed"; }
    [ -f pkg/generated/openapi/zz_generated.openapi.go ] || die "openapi-gen wrote no zz_generated.openapi.go"
    if ! cmp -s "$WORK/api-rules-violations.list" api/api-rules/violation_exceptions.list; then
        log "warning: openapi rule violations differ from api/api-rules/violation_exceptions.list"
    fi
fi

# Stamp the version as hack/lib/version.sh does: /version is served from pkg/version, --version
# from component-base; unstamped, /version says major "" minor "" gitVersion v0.0.0-master+<commit>.
LDFLAGS="-s -w"
for V in pkg/version vendor/k8s.io/client-go/pkg/version vendor/k8s.io/component-base/version; do
    V="k8s.io/kubernetes/$V"
    LDFLAGS="$LDFLAGS -X $V.gitVersion=$VERSION -X $V.gitMajor=1 -X $V.gitMinor=20 -X $V.gitTreeState=archive"
    LDFLAGS="$LDFLAGS -X $V.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
log "go build ./cmd/$COMPONENT"
mkdir -p "$CACHE/bin"
go build -p "$(nproc)" -tags "$TAGS" -ldflags "$LDFLAGS" -o "$BIN.tmp" "./cmd/$COMPONENT" >&2 \
    || die "go build ./cmd/$COMPONENT failed"
mv "$BIN.tmp" "$BIN"
echo "$RECIPE" >"$BIN.recipe"
"$BIN" --version >&2 || die "built binary does not run"
cd /
if [ "${VMMEM_APISERVER_KEEP_BUILD:-0}" != 1 ]; then
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
fi
log "built in $(($(date +%s) - start)) s: $BIN"
echo "$BIN"
