#!/usr/bin/env bash
# Stop what start.sh started in STATE_DIR: exactly the PIDs recorded in STATE_DIR/pids (checked
# against their start time), the same way as the apiserver harness.
#
#   stop.sh [--purge] [--after PID] STATE_DIR
#
#   --purge      remove STATE_DIR afterwards
#   --after PID  first wait until PID has exited (the watchdog that start.sh --watch runs)
exec "$(cd "$(dirname "$0")" && pwd)/../apiserver/stop.sh" "$@"
