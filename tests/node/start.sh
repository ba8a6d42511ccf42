#!/usr/bin/env bash
# Start a real single-node Kubernetes for the tests: etcd + kube-apiserver (tests/apiserver/start.sh),
# containerd + runc and a kubelet v1.20.2, all inside a network namespace this script creates and joins
# to the host by a veth pair with a private /30. Nothing listens on the machine's own interfaces: the
# apiserver and the kubelet listen on the namespace's end of the pair (the node IP), which the tests
# reach from the host's end. `stop.sh STATE_DIR` stops exactly what this started and undoes what the
# kubelet and CNI changed on the host (sysctls, mounts, cgroups, directories).
#
#   start.sh [--watch PID] STATE_DIR
#
#   --watch PID   also start a watchdog that runs stop.sh --purge once PID has exited, so nothing
#                 outlives a test process that was killed before it could stop the node.
#
# stdout: KEY=VALUE lines (also in STATE_DIR/env): the apiserver's (SERVER, ADMIN_KUBECONFIG,
# USER_KUBECONFIG, CA_FILE, ...) plus NODE_NAME, NODE_IP, NETNS, IMAGE (the busybox image with the fake
# launcher processes), KUBELET_PID, CONTAINERD_PID, CONTAINERD_SOCK.
# Environment: VMMEM_KUBE_APISERVER / VMMEM_KUBELET (binaries; built and cached by
# tests/apiserver/build.sh otherwise); VMMEM_NODE_READY_TIMEOUT (seconds, default 180).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

WATCH=
while [ $# -gt 0 ]; do
    case "$1" in
    --watch) WATCH="$2"; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "start.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: start.sh [--watch PID] STATE_DIR" >&2; exit 2; }
mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
[ ! -e "$STATE/node.pids" ] || { echo "start.sh: $STATE already holds a node (node.pids)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "start.sh: ERROR: a real node needs root (network namespace, cgroups, mounts)" >&2; exit 1; }

PIDS="$STATE/node.pids"
# shellcheck source=tests/lib/procs.sh
. "$HERE/../lib/procs.sh"
log() { echo "node/start.sh: $*" >&2; }
fail() {
    echo "node/start.sh: ERROR: $*" >&2
    local f
    for f in "$STATE/containerd.log" "$STATE/kubelet.log"; do
        [ -s "$f" ] && { echo "--- last lines of $(basename "$f"):" >&2; tail -n 20 "$f" >&2; }
    done
    "$HERE/stop.sh" "$STATE" >&2 || true
    exit 1
}
trap 'fail "interrupted"' INT TERM

# --- binaries and images ----------------------------------------------------------------------------
# The kubelet build installs containerd, runc, the CNI plugins and iproute2 (its runtime packages).
KUBELET="${VMMEM_KUBELET:-}"
[ -n "$KUBELET" ] || KUBELET="$("$HERE/../apiserver/build.sh" kubelet | tail -n1)" || { echo "node/start.sh: ERROR: cannot build the kubelet (see above)" >&2; exit 1; }
[ -x "$KUBELET" ] || { echo "node/start.sh: ERROR: kubelet binary not executable: $KUBELET" >&2; exit 1; }
for tool in containerd containerd-shim-runc-v2 runc ctr ip nsenter gcc busybox python3; do
    command -v "$tool" >/dev/null || fail "$tool not found (Debian packages containerd, runc, iproute2, gcc, busybox-static)"
done
CNI_BIN=/usr/lib/cni
[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/loopback" ] \
    || fail "CNI plugins missing in $CNI_BIN (Debian package containernetworking-plugins)"

mkdir -p "$STATE/images"
gcc -static -O2 -o "$STATE/images/vmmem-fake" "$HERE/fake/vmmem-fake.c" 2>"$STATE/images/gcc.log" \
    || fail "building the fake launcher processes failed: $(cat "$STATE/images/gcc.log")"
python3 "$HERE/images.py" "$STATE/images/vmmem-fake" "$(command -v busybox)" "$STATE/images" \
    || fail "building the test images failed"

# --- what the kubelet changes on the host, saved to restore on stop ----------------------------------
: >"$STATE/node.pids"
SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"
for k in $SYSCTLS; do echo "$k $(sysctl -n "$k")"; done >"$STATE/sysctl.saved"
: >"$STATE/created.dirs"
for d in /var/log/pods /var/log/containers; do [ -e "$d" ] || echo "$d" >>"$STATE/created.dirs"; done
for h in /sys/fs/cgroup/*/; do
    [ -e "$h/kubepods" ] || echo "${h%/}/kubepods" >>"$STATE/created.dirs"
done

# --- the network namespace --------------------------------------------------------------------------
# A random private /30 in 10.250.0.0/16 so that two runs on one machine do not collide.
SUFFIX=$(printf '%04x' $((RANDOM % 65536)))
NETNS="vmmem-node-$SUFFIX"
HOST_IF="vmh$SUFFIX"
NODE_IF="vmn$SUFFIX"
OCTET=$((RANDOM % 256))
QUAD=$(((RANDOM % 64) * 4))
HOST_IP="10.250.$OCTET.$((QUAD + 1))"
NODE_IP="10.250.$OCTET.$((QUAD + 2))"
echo "$NETNS $HOST_IF" >"$STATE/netns"
ip netns add "$NETNS" || fail "ip netns add $NETNS failed"
ip link add "$HOST_IF" type veth peer name "$NODE_IF" || fail "creating the veth pair failed"
ip link set "$NODE_IF" netns "$NETNS"
ip addr add "$HOST_IP/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$NETNS" addr add "$NODE_IP/30" dev "$NODE_IF"
ip -n "$NETNS" link set "$NODE_IF" up
ip -n "$NETNS" link set lo up
# nsenter, not `ip netns exec`: the latter also makes a mount namespace with a sysfs of the network
# namespace on /sys, which hides the host's cgroup mounts from the kubelet ("mountpoint for cpu not
# found") and its mounts from the host.
IN_NS=(nsenter "--net=/var/run/netns/$NETNS")

# --- etcd + kube-apiserver inside the namespace --------------------------------------------------------
NODE_NAME="vmmem-node-$SUFFIX"
VMMEM_APISERVER_ADDRESS="$NODE_IP" VMMEM_APISERVER_AUTHORIZATION_MODE=Node,RBAC \
    VMMEM_APISERVER_EXTRA_ARGS="--enable-admission-plugins=NodeRestriction --kubelet-preferred-address-types=InternalIP --kubelet-client-certificate=$STATE/api/pki/admin.crt --kubelet-client-key=$STATE/api/pki/admin.key" \
    "${IN_NS[@]}" "$HERE/../apiserver/start.sh" "$STATE/api" >"$STATE/api.env" \
    || fail "the API server did not start (see above)"
# shellcheck disable=SC1091
. "$STATE/api.env"
PKI="$STATE/api/pki"

# The node's client certificate (the Node authorizer knows it by CN and group) and its kubeconfig.
(
    cd "$PKI"
    umask 077
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout node.key -out node.csr \
        -subj "/O=system:nodes/CN=system:node:$NODE_NAME" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" >node.ext
    openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -out node.crt -extfile node.ext 2>/dev/null
    rm -f node.csr node.ext
) || fail "openssl failed to make the node's certificate"
sed -e "s#$(base64 -w0 <"$PKI/admin.crt")#$(base64 -w0 <"$PKI/node.crt")#" \
    -e "s#$(base64 -w0 <"$PKI/admin.key")#$(base64 -w0 <"$PKI/node.key")#" \
    -e "s#vmmem-admin#system:node:$NODE_NAME#g" "$ADMIN_KUBECONFIG" >"$STATE/kubelet.kubeconfig"
chmod 600 "$STATE/kubelet.kubeconfig"

# --- containerd -------------------------------------------------------------------------------------
CD="$STATE/containerd"
mkdir -p "$CD/root" "$CD/state" "$CD/runc" "$CD/opt" "$STATE/cni/net.d" "$STATE/cni/ipam"
SOCK="$CD/containerd.sock"
cat >"$CD/config.toml" <<TOML
version = 2
root = "$CD/root"
state = "$CD/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "local/pause:1"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni/net.d"
TOML
cat >"$STATE/cni/net.d/10-vmmem.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "vmmem", "plugins": [
  {"type": "bridge", "bridge": "vmmem0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.0.0/24"}]], "dataDir": "$STATE/cni/ipam"}},
  {"type": "loopback"}]}
CNI
"${IN_NS[@]}" containerd --config "$CD/config.toml" </dev/null >"$STATE/containerd.log" 2>&1 &
CONTAINERD_PID=$!
record containerd "$CONTAINERD_PID"
for i in $(seq 1 100); do
    kill -0 "$CONTAINERD_PID" 2>/dev/null || fail "containerd exited; log: $STATE/containerd.log"
    ctr --address "$SOCK" version >/dev/null 2>&1 && break
    [ "$i" = 100 ] && fail "containerd did not answer on $SOCK within 20 s"
    sleep 0.2
done
for img in pause node; do
    ctr --address "$SOCK" -n k8s.io images import "$STATE/images/$img.tar" >"$STATE/images/import.log" 2>&1 \
        || fail "importing the $img image failed: $(cat "$STATE/images/import.log")"
done

# --- kubelet ----------------------------------------------------------------------------------------
KL="$STATE/kubelet"
mkdir -p "$KL/root" "$KL/pki" "$KL/plugins"
cat >"$KL/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failSwapOn: false
evictionHard: {}
evictionSoft: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
YAML
"${IN_NS[@]}" "$KUBELET" --config "$KL/config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" --containerd="$SOCK" \
    --root-dir "$KL/root" --cert-dir "$KL/pki" --volume-plugin-dir "$KL/plugins" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --pod-infra-container-image=local/pause:1 \
    --v=2 </dev/null >"$STATE/kubelet.log" 2>&1 &
KUBELET_PID=$!
record kubelet "$KUBELET_PID"

# --- watchdog (before the wait, so a test killed while waiting cleans up too) --------------------------
[ -z "$WATCH" ] || start_watchdog "$HERE/stop.sh" "$WATCH"

KUBECTL=(kubectl --kubeconfig "$ADMIN_KUBECONFIG")
READY_TIMEOUT="${VMMEM_NODE_READY_TIMEOUT:-180}"
t0=$SECONDS
while :; do
    kill -0 "$KUBELET_PID" 2>/dev/null || fail "the kubelet exited; log: $STATE/kubelet.log"
    ready=$("${KUBECTL[@]}" get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [ "$ready" = True ] && break
    [ $((SECONDS - t0)) -ge "$READY_TIMEOUT" ] && fail "node $NODE_NAME not Ready after ${READY_TIMEOUT}s (Ready=$ready)"
    sleep 0.5
done
log "node $NODE_NAME Ready at $NODE_IP in $((SECONDS - t0)) s"

cat "$STATE/api.env" >"$STATE/env"
cat >>"$STATE/env" <<ENV
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NETNS=$NETNS
IMAGE=local/vmmem-node:1
KUBELET_PID=$KUBELET_PID
CONTAINERD_PID=$CONTAINERD_PID
CONTAINERD_SOCK=$SOCK
ENV
cat "$STATE/env"
