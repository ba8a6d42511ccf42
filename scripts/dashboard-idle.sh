#!/bin/sh
# The dashboard's idle CPU and memory on the demo cluster: runs `top --demo --refresh 2s` in a
# tmux pane (a probe exec per node per refresh, the simulator in the same process), lets it
# settle for 20 s, then reads utime+stime (and the reaped children's, i.e. the probe's `sh`
# processes) from /proc/PID/stat over 60 s, and VmRSS/VmHWM at the end.
#
#   scripts/dashboard-idle.sh                        # builds the release binary first
#   scripts/dashboard-idle.sh path/to/kubectl-vmmem
#   scripts/dashboard-idle.sh path/to/kubectl-vmmem --split
#
# With --split the simulator runs as its own process (`kubectl vmmem sim`) and both are
# measured, to tell the dashboard's share from the simulator's. Needs tmux, Linux /proc, awk.
set -eu
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null 2>&1; then
    echo "dashboard-idle.sh: tmux is not installed (apt-get install tmux)" >&2
    exit 1
fi
bin=${1:-}
split=${2:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/kubectl-vmmem
fi
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac

dir=$(mktemp -d)
sock="vmmem-idle-$$"
simpid=""
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    if [ -n "$simpid" ]; then kill "$simpid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$split" = "--split" ]; then
    "$bin" sim --write-kubeconfig "$dir/kubeconfig" >"$dir/sim.log" 2>&1 &
    simpid=$!
    sleep 3
    args="top -A --kubeconfig '$dir/kubeconfig' --refresh 2s"
else
    args="top --demo --refresh 2s"
fi
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 40 \
    "sh -c 'echo \$\$ > \"$dir/pid\"; exec \"$bin\" $args'"
sleep 20
pid=$(cat "$dir/pid")

# utime+stime and cutime+cstime in clock ticks.
ticks() { awk '{ print $14 + $15, $16 + $17 }' "/proc/$1/stat"; }
now() { awk '{ print $1 }' /proc/uptime; }
d0=$(ticks "$pid"); t0=$(now)
[ -n "$simpid" ] && s0=$(ticks "$simpid")
sleep 60
d1=$(ticks "$pid"); t1=$(now)
[ -n "$simpid" ] && s1=$(ticks "$simpid")
hz=$(getconf CLK_TCK)

report() { # NAME BEFORE AFTER PID
    echo "$2 $3" | awk -v name="$1" -v hz="$hz" -v t="$(echo "$t0 $t1" | awk '{ print $2 - $1 }')" '{
        printf "%s: %.2f%% of a core (+%.2f%% in child processes) over %.0f s\n",
            name, ($3 - $1) / hz / t * 100, ($4 - $2) / hz / t * 100, t }'
    grep -E '^(VmRSS|VmHWM)' "/proc/$4/status" | tr -s ' \t' ' ' | sed "s/^/  /"
}
if [ -n "$simpid" ]; then
    report "dashboard" "$d0" "$d1" "$pid"
    report "simulator" "$s0" "$s1" "$simpid"
else
    report "dashboard --demo (simulator in-process)" "$d0" "$d1" "$pid"
fi
if tmux -L "$sock" capture-pane -p -t 0 | grep -q STALE; then
    echo "warning: the dashboard showed STALE data during the run (machine too busy?)" >&2
fi
tmux -L "$sock" send-keys -t 0 q
sleep 2
