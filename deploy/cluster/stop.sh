#!/usr/bin/env bash
# Stops what deploy/cluster/start.sh started and removes its folder.
set -uo pipefail
WORK=${1:-/tmp/ferry-cluster}
[ -e "$WORK/pids" ] || { echo "nothing running in $WORK" >&2; exit 0; }
while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$WORK/pids"
sleep 0.2
rm -rf "$WORK"
