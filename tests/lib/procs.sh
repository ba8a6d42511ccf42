# The processes and ports of the test servers (tests/apiserver, tests/node, tests/prometheus):
# sourced by their start.sh once STATE (the state directory) and PIDS (the file the processes are
# recorded in, which their stop.sh reads) are set.

# port_in_use PORT: something listens on PORT (TCP, IPv4 or IPv6).
port_in_use() {
    local hex tables
    hex=$(printf ':%04X ' "$1")
    # No pipeline: under pipefail a missing tcp6 table (cat fails) or grep -q leaving early (its
    # writer gets SIGPIPE) would make a busy port look free.
    tables=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
    awk -v h="$hex" 'index($2 " ", h) { found = 1 } END { exit !found }' <<<"$tables"
}

# free_port VAR: set VAR to a free port below the usual ephemeral range (32768-60999) that this
# script has not taken yet (VAR is set in this shell, not printed, so the ports taken are kept).
TAKEN_PORTS=" "
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        case "$TAKEN_PORTS" in *" $p "*) continue ;; esac
        if ! port_in_use "$p"; then
            TAKEN_PORTS="$TAKEN_PORTS$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    return 1
}

# starttime PID: the process's start time (clock ticks after boot, /proc/PID/stat field 22), which
# tells it apart from a later process that reuses its PID.
starttime() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # shellcheck disable=SC2086 # split the fields after "(comm) "
    set -- ${st##*) }
    echo "${20}"
}

# record NAME PID: stop.sh stops exactly the recorded processes, the last recorded first.
record() { echo "$1 $2 $(starttime "$2")" >>"$PIDS"; }

alive() { kill -0 "$1" 2>/dev/null; }

# start_watchdog STOP_SCRIPT OWNER_PID: run `STOP_SCRIPT --purge STATE` once OWNER_PID has exited,
# so nothing outlives a test process that was killed before it could stop what this started.
start_watchdog() {
    nohup "$1" --after "$2" --purge "$STATE" </dev/null >>"$STATE/watchdog.log" 2>&1 &
    record watchdog "$!"
}
