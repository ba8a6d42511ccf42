#!/usr/bin/env bash
# Stop the node start.sh started in STATE_DIR and undo what it, the kubelet and CNI changed on the
# host: pods (by the API, then by force), the kubelet and containerd (exactly the recorded PIDs), the
# containers' shims and processes, the mounts under STATE_DIR, the kubelet's cgroups and log
# directories when it created them, the sysctls it set, the network namespace and the veth pair, and
# finally etcd + kube-apiserver (tests/apiserver/stop.sh).
#
#   stop.sh [--purge] [--after PID] STATE_DIR
#
#   --purge      remove STATE_DIR afterwards
#   --after PID  first wait until PID has exited (the watchdog that start.sh --watch runs)
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

PURGE=0
AFTER=
while [ $# -gt 0 ]; do
    case "$1" in
    --purge) PURGE=1; shift ;;
    --after) AFTER="$2"; shift 2 ;;
    -*) echo "stop.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: stop.sh [--purge] [--after PID] STATE_DIR" >&2; exit 2; }
STATE="${1%/}"
[ -d "$STATE" ] || exit 0
STATE="$(cd "$STATE" && pwd)"
log() { echo "node/stop.sh: $*" >&2; }

if [ -n "$AFTER" ]; then
    while kill -0 "$AFTER" 2>/dev/null; do sleep 1; done
    [ -f "$STATE/node.pids" ] || exit 0 # already stopped by its owner
    log "owner $AFTER exited without stopping the node; stopping it"
fi
[ -f "$STATE/node.pids" ] || exit 0

# alive PID START: still the process start.sh recorded (same start time), and not a zombie.
alive() {
    local st
    [ "$1" != "$$" ] || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- "$1" "$2" ${st##*) }
    case "$3" in Z | X | x) return 1 ;; esac
    [ -z "$2" ] || [ "${22}" = "$2" ]
}
stop_pid() { # pid start
    local i
    alive "$1" "$2" || return 0
    kill -TERM "$1" 2>/dev/null
    for ((i = 0; i < 100; i++)); do alive "$1" "$2" || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    for ((i = 0; i < 50; i++)); do alive "$1" "$2" || return 0; sleep 0.1; done
    return 1
}
pid_of() { awk -v n="$1" '$1 == n {print $2" "$3}' "$STATE/node.pids" | tail -n1; }

status=0
# 1. Pods, while the kubelet still runs: it stops their containers and unmounts their volumes.
if [ -f "$STATE/env" ] && command -v kubectl >/dev/null; then
    # shellcheck disable=SC1091
    ADMIN_KUBECONFIG=$(sed -n 's/^ADMIN_KUBECONFIG=//p' "$STATE/env")
    read -r kpid kstart <<<"$(pid_of kubelet)"
    if [ -n "${kpid:-}" ] && alive "$kpid" "$kstart"; then
        timeout 40 kubectl --kubeconfig "$ADMIN_KUBECONFIG" delete pods --all --all-namespaces \
            --grace-period=1 --wait=true --request-timeout=30s >/dev/null 2>&1 || log "deleting the pods through the API did not finish; stopping them by force"
    fi
fi

# 2. The watchdog (unless that is us), the kubelet, then containerd.
for name in watchdog kubelet containerd; do
    read -r pid start <<<"$(pid_of "$name")"
    [ -n "${pid:-}" ] || continue
    [ "$name" = watchdog ] && [ -n "$AFTER" ] && continue
    stop_pid "$pid" "$start" || { log "$name (pid $pid) would not die"; status=1; }
done

# 3. Container processes and their shims: everything in the kubelet's cgroups, then the shims that
#    served this containerd (their command line names its socket).
SOCK="$STATE/containerd/containerd.sock"
for round in 1 2 3; do
    pids=$(cat /sys/fs/cgroup/memory/kubepods/cgroup.procs $(find /sys/fs/cgroup/memory/kubepods -mindepth 1 -name cgroup.procs 2>/dev/null) 2>/dev/null | sort -u)
    shims=$(grep -lsF -- "$SOCK" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3)
    [ -z "$pids$shims" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids $shims 2>/dev/null
    sleep 0.5
done

# 4. Mounts under STATE_DIR (kubelet's root bind mount, pod volumes, overlay rootfs, netns files),
#    deepest first.
for i in 1 2 3; do
    mounts=$(awk -v s="$STATE" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -z "$mounts" ] && break
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done
if awk -v s="$STATE" 'index($5, s) == 1' /proc/self/mountinfo | grep -q .; then
    log "mounts under $STATE remain"; status=1
fi

# 5. cgroups and directories the kubelet created; sysctls it set.
if [ -f "$STATE/created.dirs" ]; then
    while read -r d; do
        case "$d" in
        /sys/fs/cgroup/*)
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
            [ -d "$d" ] && { log "cgroup $d remains"; status=1; }
            ;;
        *) rm -rf "$d" ;;
        esac
    done <"$STATE/created.dirs"
fi
if [ -f "$STATE/sysctl.saved" ]; then
    while read -r k v; do sysctl -q -w "$k=$v" >/dev/null || status=1; done <"$STATE/sysctl.saved"
fi

# 6. etcd + kube-apiserver, then the network namespace and the veth pair.
if [ -d "$STATE/api" ]; then "$HERE/../apiserver/stop.sh" "$STATE/api" || status=1; fi
if [ -f "$STATE/netns" ]; then
    read -r netns host_if <"$STATE/netns"
    ip link del "$host_if" 2>/dev/null
    ip netns del "$netns" 2>/dev/null
    ! ip netns list | grep -qw "$netns" || { log "network namespace $netns remains"; status=1; }
fi

if [ "$status" = 0 ]; then
    mv "$STATE/node.pids" "$STATE/node.pids.stopped"
    [ "$PURGE" = 1 ] && rm -rf "$STATE"
fi
exit "$status"
