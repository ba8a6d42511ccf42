#!/usr/bin/env bash
# Start a throwaway Prometheus (Debian's `prometheus` package) on a free loopback port with its TSDB
# in STATE_DIR, after loading history into it. `stop.sh STATE_DIR` stops exactly what this started.
#
#   start.sh [--watch PID] [--import FILE]... [--blocks DIR]... [--scrape FILE] STATE_DIR
#
#   --watch PID    also start a watchdog that runs stop.sh (and removes STATE_DIR) once PID has
#                  exited, so nothing outlives a test process that was killed before it stopped it.
#   --import FILE  load FILE (OpenMetrics text, `# EOF` at the end) with `promtool tsdb
#                  create-blocks-from openmetrics` into the TSDB before the server starts.
#   --blocks DIR   copy the TSDB blocks in DIR (made earlier by promtool, e.g. a cache) into the TSDB.
#   --scrape FILE  YAML of one or more `scrape_configs` entries (a list) for the config file.
#
# stdout: KEY=VALUE lines (also written to STATE_DIR/env): URL (http://127.0.0.1:PORT),
# PROMETHEUS_PID, DATA_DIR, CONFIG, IMPORT_MS (promtool's wall time
# for all imports, ms).
# Environment: VMMEM_PROMETHEUS_READY_TIMEOUT (seconds, default 120).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

WATCH=
IMPORTS=()
BLOCKS=()
SCRAPE=
while [ $# -gt 0 ]; do
    case "$1" in
    --watch) WATCH="$2"; shift 2 ;;
    --import) IMPORTS+=("$2"); shift 2 ;;
    --blocks) BLOCKS+=("$2"); shift 2 ;;
    --scrape) SCRAPE="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "start.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: start.sh [--watch PID] [--import FILE]... [--blocks DIR]... [--scrape FILE] STATE_DIR" >&2; exit 2; }
mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
[ ! -e "$STATE/pids" ] || { echo "start.sh: $STATE already holds a server (pids file)" >&2; exit 2; }

PIDS="$STATE/pids"
# shellcheck source=tests/lib/procs.sh
. "$HERE/../lib/procs.sh"
fail() {
    echo "prometheus/start.sh: ERROR: $*" >&2
    [ -s "$STATE/prometheus.log" ] && { echo "--- last lines of prometheus.log:" >&2; tail -n 15 "$STATE/prometheus.log" >&2; }
    "$HERE/stop.sh" "$STATE" >&2 || true
    exit 1
}
trap 'fail "interrupted"' INT TERM

for tool in prometheus promtool curl; do
    command -v "$tool" >/dev/null \
        || { echo "prometheus/start.sh: ERROR: $tool not found (Debian packages prometheus, curl; .ci/run installs them)" >&2; exit 1; }
done

# --- history ----------------------------------------------------------------------------------------
DATA="$STATE/data"
mkdir -p "$DATA"
t0=$(date +%s%N)
for f in ${IMPORTS[@]+"${IMPORTS[@]}"}; do
    promtool tsdb create-blocks-from openmetrics --quiet "$f" "$DATA" >"$STATE/promtool.log" 2>&1 \
        || { echo "prometheus/start.sh: ERROR: promtool could not import $f: $(tail -n 5 "$STATE/promtool.log")" >&2; exit 1; }
done
IMPORT_MS=$((($(date +%s%N) - t0) / 1000000))
for d in ${BLOCKS[@]+"${BLOCKS[@]}"}; do
    for b in "$d"/*/; do
        [ -f "$b/meta.json" ] || continue
        cp -a "${b%/}" "$DATA/" || { echo "prometheus/start.sh: ERROR: copying block $b failed" >&2; exit 1; }
    done
done

# --- config -----------------------------------------------------------------------------------------
CONFIG="$STATE/prometheus.yml"
{
    echo "global:"
    echo "  scrape_interval: 15s"
    echo "  evaluation_interval: 1m"
    if [ -n "$SCRAPE" ]; then
        echo "scrape_configs:"
        sed 's/^/  /' "$SCRAPE"
    fi
} >"$CONFIG"
promtool check config "$CONFIG" >"$STATE/check.log" 2>&1 \
    || { echo "prometheus/start.sh: ERROR: the config is refused: $(cat "$STATE/check.log")" >&2; exit 1; }

# --- prometheus -------------------------------------------------------------------------------------
: >"$STATE/pids"
READY_TIMEOUT="${VMMEM_PROMETHEUS_READY_TIMEOUT:-120}"
start_prometheus() {
    free_port PORT || return 1
    URL="http://127.0.0.1:$PORT"
    # Retention far longer than any history a test loads: blocks from the past are kept. No
    # admin API, no lifecycle endpoints.
    prometheus --config.file="$CONFIG" --storage.tsdb.path="$DATA" \
        --storage.tsdb.retention.time=3650d --web.listen-address="127.0.0.1:$PORT" \
        --log.level=info </dev/null >"$STATE/prometheus.log" 2>&1 &
    PROMETHEUS_PID=$!
    record prometheus "$PROMETHEUS_PID"
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$PROMETHEUS_PID" || return 1
        if curl -fsS --max-time 2 "$URL/-/ready" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 2
}

t1=$SECONDS
started=0
for attempt in 1 2 3; do
    rc=0
    start_prometheus || rc=$?
    if [ "$rc" = 0 ]; then started=1; break; fi
    [ "$rc" = 2 ] && fail "prometheus not ready after ${READY_TIMEOUT}s; log: $STATE/prometheus.log"
    echo "prometheus/start.sh: prometheus exited (attempt $attempt): $(grep -m3 -iE 'err|bind' "$STATE/prometheus.log" 2>/dev/null)" >&2
    wait "$PROMETHEUS_PID" 2>/dev/null || true
done
[ "$started" = 1 ] || fail "prometheus did not start; log: $STATE/prometheus.log"
echo "prometheus/start.sh: ready at $URL in $((SECONDS - t1)) s (pid $PROMETHEUS_PID)" >&2

[ -z "$WATCH" ] || start_watchdog "$HERE/stop.sh" "$WATCH"

cat >"$STATE/env" <<ENV
URL=$URL
PROMETHEUS_PID=$PROMETHEUS_PID
DATA_DIR=$DATA
CONFIG=$CONFIG
IMPORT_MS=$IMPORT_MS
ENV
cat "$STATE/env"
