#!/usr/bin/env bash
# Stops only the Ray head that ci/ray-up.sh started under $RAY_TMP, by PID,
# in `ray stop`'s order: raylet and its children, helper daemons, GCS last.
RAY_TMP=${RAY_TMP:-/tmp/rnntune-ray}
S=$(basename "$(readlink -f "$RAY_TMP/session_latest" 2>/dev/null)")
GCS=$(cat "$RAY_TMP/ray_current_cluster" 2>/dev/null)
[ -n "$S" ] && [ -n "$GCS" ] || exit 0
match() { grep -l -a -e "$S" -e "address=$GCS" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | grep -vx "$$"; }
children() { for p in "$@"; do cat /proc/$p/task/*/children 2>/dev/null; done | tr ' ' '\n' | grep .; }
term_wait() {  # SIGTERM, wait up to ${2:-10} s, then SIGKILL
  local pids="$1" alive
  [ -z "$pids" ] && return
  kill $pids 2>/dev/null
  for i in $(seq $(( ${2:-10} * 10 ))); do alive=; for p in $pids; do kill -0 $p 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && return; sleep 0.1; done
  kill -9 $alive 2>/dev/null
}
ALL=$(match)
RAYLET=$(for p in $ALL; do grep -qa 'raylet/raylet' /proc/$p/cmdline 2>/dev/null && echo $p; done)
GCSP=$(for p in $ALL; do grep -qa 'gcs/gcs_server' /proc/$p/cmdline 2>/dev/null && echo $p; done)
KIDS=$(children $RAYLET)
term_wait "$RAYLET $KIDS" 10
REST=$(for p in $ALL; do [[ " $RAYLET $KIDS $GCSP " == *" $p "* ]] || echo $p; done)
term_wait "$REST" 10
term_wait "$GCSP" 10
exit 0
