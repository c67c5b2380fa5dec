#!/usr/bin/env bash
# Starts a private single-node Ray head bound to 127.0.0.1 and prints its
# address. Usage: RAY_TMP=/tmp/ray-x ci/ray-up.sh ; stop it with
# RAY_TMP=/tmp/ray-x ci/ray-down.sh (never `ray stop`: it kills every Ray
# process on the host).
set -euo pipefail
RAY_BIN=${RAY_BIN:-ray}
RAY_TMP=${RAY_TMP:-/tmp/rnntune-ray}
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
mkdir -p "$RAY_TMP"
"$RAY_BIN" start --head --node-ip-address=127.0.0.1 --port="${RAY_PORT:-0}" \
  --num-cpus="${RAY_CPUS:-2}" --num-gpus=0 --include-dashboard=false \
  --disable-usage-stats --object-store-memory="${RAY_OBJ_MEM:-200000000}" \
  --temp-dir="$RAY_TMP" > "$RAY_TMP/start.log" 2>&1
cat "$RAY_TMP/ray_current_cluster"; echo
