#!/usr/bin/env bash
# Runs tests/test_distributed.py N times in a row (default 20) while two
# busy loops keep both cores busy, and stops at the first failure.
#
#   bash ci/soak-distributed.sh [N] [LOGDIR]
#
# One loop runs at nice 0; the other at nice 15, the niceness Ray gives its
# trial workers, which a second nice-0 loop would starve (about 4 % of a
# core each). Run it from the repository root with rnntune's venv active.
set -u
runs=${1:-20}
logs=${2:-$(mktemp -d /tmp/soak.XXXXXX)}
mkdir -p "$logs"
python3 -c "while True: pass" & busy1=$!
nice -n 15 python3 -c "while True: pass" & busy2=$!
trap 'kill $busy1 $busy2' EXIT
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    timeout 1500 python -m pytest -q -x --slow -p no:cacheprovider \
        tests/test_distributed.py > "$logs/run$i.log" 2>&1
    code=$?
    echo "run $i: exit $code, $(( $(date +%s) - start )) s," \
        "$(tail -n 1 "$logs/run$i.log")" | tee -a "$logs/summary.txt"
    [ "$code" -eq 0 ] || exit "$code"
done
