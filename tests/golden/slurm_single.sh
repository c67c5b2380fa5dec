#!/bin/bash
# rnntune study, single mode: submit with sbatch; requeues itself before its time limit.
#SBATCH --account=ml
#SBATCH --cpus-per-task=16
#SBATCH --gpus-per-node=4
#SBATCH --job-name=rnntune
#SBATCH --mem=64G
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/studies/imdb/slurm/%x-%j.out
#SBATCH --partition=gpu
#SBATCH --signal=B:USR1@120
#SBATCH --time=1-00:00:00
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

setsid "$PYTHON" -m launch tune --preset imdb --space cells --max-trials 20 --max-epochs 8 --backend keras-tuner --algorithm hyperband --gpus-per-trial 1 --workdir "$WORKDIR" &
study=$!
groups+=("$study")
wait "$study"
status=$?
exit "$status"
