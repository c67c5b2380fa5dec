#!/usr/bin/env bash
# GPU checks for rnntune (cuDNN path, mirrored vs one trial per GPU); run it
# from the repository root on a machine with GPUs. Finishes within 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 300 "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
