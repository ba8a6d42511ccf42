#!/usr/bin/env bash
# Stop what start.sh started in STATE_DIR: exactly the PIDs recorded in STATE_DIR/pids, and only while
# each still is the process start.sh started (its command line names STATE_DIR).
#
#   stop.sh [--purge] [--after PID] STATE_DIR
#
#   --purge      remove STATE_DIR afterwards
#   --after PID  first wait until PID has exited (the watchdog that start.sh --watch runs)
set -uo pipefail

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

if [ -n "$AFTER" ]; then
    while kill -0 "$AFTER" 2>/dev/null; do sleep 1; done
    [ -f "$STATE/pids" ] || exit 0 # already stopped by its owner
    echo "stop.sh: owner $AFTER exited without stopping the server; stopping it" >&2
fi

# ours PID: does PID still run a command started for this state dir?
ours() {
    [ "$1" != "$$" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$STATE"
}

status=0
if [ -f "$STATE/pids" ]; then
    # apiserver before etcd, watchdog last (reverse start order)
    pids=$(awk '{print $2}' "$STATE/pids" | tac)
    for pid in $pids; do
        ours "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in $pids; do
        for _ in $(seq 1 100); do # up to 10 s, then SIGKILL
            ours "$pid" || break
            # a zombie still has /proc but an empty cmdline, so `ours` is false for it
            sleep 0.1
        done
        if ours "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            sleep 0.2
            if ours "$pid"; then
                echo "stop.sh: pid $pid would not die" >&2
                status=1
            fi
        fi
    done
    [ "$status" = 0 ] && mv "$STATE/pids" "$STATE/pids.stopped"
fi
if [ "$PURGE" = 1 ] && [ "$status" = 0 ]; then
    rm -rf "$STATE"
fi
exit "$status"
