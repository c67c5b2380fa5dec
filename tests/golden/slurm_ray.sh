#!/bin/bash
# rnntune study, ray mode: submit with sbatch; requeues itself before its time limit.
#SBATCH --cpus-per-task=8
#SBATCH --gpus-per-node=2
#SBATCH --job-name=rnntune
#SBATCH --mem=64G
#SBATCH --nodes=3
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/studies/imdb/slurm/%x-%j.out
#SBATCH --signal=B:USR1@120
#SBATCH --time=08:00:00
#SBATCH --requeue

set -uo pipefail
echo "rnntune: job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST:-$(hostname)}," \
  "restart ${SLURM_RESTART_COUNT:-0}"
groups=()  # process groups to stop: the study and its srun steps

stop_all() {
  for pid in "${groups[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  wait
}

requeue() {
  # Preemption or the time limit is near: stop the study (its trials keep
  # their last finished epoch) and requeue; the restart resumes the study.
  echo "rnntune: signal received, stopping the study and requeueing"
  stop_all
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
}
trap requeue USR1
trap 'stop_all; exit 143' TERM

WORKDIR=/scratch/studies/imdb
PYTHON=/opt/rnntune/bin/python
mkdir -p "$WORKDIR/slurm"

FIRST_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
HEAD="$FIRST_NODE"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
RAY="$(dirname "$PYTHON")/ray"
# Ports and temp dir unique to this job, so two jobs on a node never meet.
BASE=$((20000 + (SLURM_JOB_ID % 400) * 100))
PORTS="--node-manager-port=$((BASE + 1)) --object-manager-port=$((BASE + 2))
 --ray-client-server-port=$((BASE + 3)) --metrics-export-port=$((BASE + 4))
 --dashboard-agent-grpc-port=$((BASE + 5))
 --dashboard-agent-listen-port=$((BASE + 6))
 --runtime-env-agent-port=$((BASE + 7))
 --min-worker-port=$((BASE + 10)) --max-worker-port=$((BASE + 99))"
RAY_TMP="/tmp/rnntune-ray-$SLURM_JOB_ID"
setsid srun --overlap --nodes=1 --ntasks=1 -w "$FIRST_NODE" "$RAY" start \
    --head --block --node-ip-address="$HEAD" --port="$BASE" $PORTS \
    --temp-dir="$RAY_TMP" --num-gpus=2 \
    --include-dashboard=false --disable-usage-stats &
groups+=("$!")
for _ in $(seq 120); do
  (exec 3<>"/dev/tcp/$HEAD/$BASE") 2>/dev/null && break
  sleep 1
done
setsid srun --overlap --nodes=2 --ntasks-per-node=1 \
    --exclude="$FIRST_NODE" "$RAY" start --block --address="$HEAD:$BASE" \
    $PORTS --temp-dir="$RAY_TMP" --num-gpus=2 \
    --disable-usage-stats &
groups+=("$!")
setsid "$PYTHON" -m launch tune --preset imdb --space cells --max-trials 20 --max-epochs 8 --backend ray --algorithm asha --gpus-per-trial 1 --workdir "$WORKDIR" --ray-address "$HEAD:$BASE" &
study=$!
groups+=("$study")
wait "$study"
status=$?
stop_all  # tears the Ray cluster down
rm -rf "$RAY_TMP"
exit "$status"
