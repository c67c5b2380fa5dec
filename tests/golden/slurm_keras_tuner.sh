#!/bin/bash
# rnntune study, keras-tuner mode: submit with sbatch; requeues itself before its time limit.
#SBATCH --constraint=a100
#SBATCH --cpus-per-task=8
#SBATCH --gpus-per-node=4
#SBATCH --job-name=rnntune
#SBATCH --mem=64G
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2
#SBATCH --open-mode=append
#SBATCH --output=/scratch/studies/imdb/slurm/%x-%j.out
#SBATCH --partition=gpu
#SBATCH --qos=high
#SBATCH --signal=B:USR1@120
#SBATCH --time=12:00:00
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
PORT=$((20000 + SLURM_JOB_ID % 20000))  # one chief port per job
# The chief (the oracle) alone, in the batch step on the first node.
setsid "$PYTHON" -m launch tune --preset imdb --space cells --max-trials 20 --max-epochs 8 --backend keras-tuner --algorithm random --concurrent-trials 0 --workdir "$WORKDIR" \
    --oracle-host "$HEAD" --oracle-port "$PORT" &
chief=$!
groups+=("$chief")
# One worker per GPU group (or CPU slot) on every node; each waits for the
# chief and runs trials until the study is done.
setsid srun --overlap --ntasks-per-node=2 --gpus-per-task=2 \
    bash -c 'exec "$0" -m launch worker --oracle "$1" --workdir "$2" \
        --devices auto --tuner-id "worker-$SLURM_NODEID-$SLURM_LOCALID"' \
    "$PYTHON" "$HEAD:$PORT" "$WORKDIR" &
workers=$!
groups+=("$workers")
wait "$chief"
status=$?
wait "$workers"
exit "$status"
