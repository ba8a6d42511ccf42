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

# alive PID START: is PID still the process start.sh recorded (same start time; without one, a
# command line naming this state dir), and not yet a zombie? Exiting Go processes drop their command
# line before they are zombies, so "gone" is judged by /proc/PID/stat, not by the command line.
alive() {
    local st state
    [ "$1" != "$$" ] || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- "$1" "$2" ${st##*) }
    state=$3
    case "$state" in Z | X | x) return 1 ;; esac
    if [ -n "$2" ]; then
        [ "${22}" = "$2" ]
    else
        tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$STATE"
    fi
}

wait_gone() { # pid start tenths
    local i
    for ((i = 0; i < $3; i++)); do
        alive "$1" "$2" || return 0
        sleep 0.1
    done
    ! alive "$1" "$2"
}

status=0
if [ -f "$STATE/pids" ]; then
    # reverse start order: watchdog, apiserver, etcd
    entries=$(tac "$STATE/pids")
    while read -r _ pid start; do
        alive "$pid" "$start" && kill -TERM "$pid" 2>/dev/null
    done <<<"$entries"
    while read -r name pid start; do
        wait_gone "$pid" "$start" 100 && continue # 10 s after TERM, then KILL
        kill -KILL "$pid" 2>/dev/null
        if ! wait_gone "$pid" "$start" 100; then
            echo "stop.sh: $name (pid $pid) would not die" >&2
            status=1
        fi
    done <<<"$entries"
    [ "$status" = 0 ] && mv "$STATE/pids" "$STATE/pids.stopped"
fi
if [ "$PURGE" = 1 ] && [ "$status" = 0 ]; then
    rm -rf "$STATE"
fi
exit "$status"
