"""SLURM batch scripts for a study, rendered by a pure function.

    text = render(SlurmSpec(mode="single", workdir="/scratch/study",
                            python="/opt/venv/bin/python",
                            tune_args=("--preset", "imdb", ...)))

Three modes:

- `single`: the study runs on one node, with the device layout its tune
  options choose (all GPUs per trial, or one trial per GPU).
- `keras-tuner`: the Keras Tuner chief runs in the batch step on the first
  node; `srun` starts one worker per GPU group (or CPU slot) on every node.
- `ray`: a Ray head on the first node and Ray workers on the others, started
  with `srun` on ports and a temp dir derived from the job id (two jobs on
  one node never collide); the study joins that cluster, which is torn down
  at the end.

Every script asks for a signal before its time limit (`--signal`), traps it,
stops the study and requeues itself (`--requeue`); on restart the same
command resumes the study where it stopped. Every user-supplied value is
quoted: in `#SBATCH` lines (which no shell expands) inside double quotes,
in the script with `shlex.quote`.
"""

import dataclasses
import re
import shlex
import typing
from typing import Literal

from launch.options import option

Mode = Literal["single", "keras-tuner", "ray"]
MODES: tuple[str, ...] = typing.get_args(Mode)
TIME = re.compile(r"^(\d+-\d{1,2}(:\d{2}){0,2}|\d+(:\d{2}){0,2})$")
MEM = re.compile(r"^\d+[KMGT]?$")
SBATCH_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


def time_limit_seconds(text: str) -> int | None:
    """A SLURM time limit in seconds (`sbatch --time`'s formats), or None
    if `text` is not one."""
    if not TIME.match(text):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = [*parts, 0, 0][:3]
        hours += int(days) * 24
    elif len(parts) == 3:  # HH:MM:SS
        hours, minutes, seconds = parts
    else:  # MM, MM:SS
        hours, minutes, seconds = 0, parts[0], (parts + [0])[1]
    if seconds >= 60 or (minutes >= 60 and (days or len(parts) == 3)):
        return None
    return hours * 3600 + minutes * 60 + seconds


class SubmitError(ValueError):
    """An invalid submission option (a user error)."""


@dataclasses.dataclass(frozen=True)
class SlurmSpec:
    """One study's SLURM job. The fields with a help are the options of
    `rnntune submit slurm` (`launch.options`); the others:

    Attributes:
        workdir: the study's workdir (absolute; shared by the nodes).
        python: the interpreter that runs rnntune (absolute: jobs inherit
            the submitter's environment, not its PATH lookups).
        tune_args: the `rnntune tune` options, without `--workdir`.
        gpus_per_trial: GPUs per Keras Tuner worker (keras-tuner mode):
            the study's `--gpus-per-trial`.
    """

    mode: Mode = dataclasses.field(metadata={
        "help": "single: one node; keras-tuner: chief and srun workers; "
        "ray: a Ray cluster inside the allocation"})
    workdir: str
    python: str
    tune_args: tuple[str, ...]
    job_name: str = option("rnntune", help="the job's name")
    nodes: int = option(1, help="nodes to allocate")
    gpus_per_node: int = option(0, help="GPUs per node")
    cpus_per_gpu: int = option(4, help="CPUs per GPU")
    cpus: int = option(4, help="CPUs per node when there are no GPUs")
    mem: str = option("16G", help="memory per node")
    time: str = option("04:00:00",
                       help="time limit, e.g. 04:00:00 or 1-12:00:00")
    partition: str | None = option(None, help="the partition to run in")
    account: str | None = option(None, help="the account to charge")
    gpus_per_trial: int = 1
    workers_per_node: int = option(
        1, help="keras-tuner mode without GPUs: workers per node")
    signal_seconds: int = option(
        120, help="stop and requeue this many seconds before the time "
        "limit")
    head_address: str | None = option(
        None, default_help="the first node's hostname", help="address the "
        "chief / Ray head binds and the workers dial")
    extra_sbatch: tuple[tuple[str, str], ...] = option(
        (), metavar="KEY=VALUE", help="another #SBATCH --KEY=VALUE line "
        "(repeatable)")

    def __post_init__(self):
        def bad(flag, value, accepted):
            raise SubmitError(f"{flag} {value!r}: expected {accepted}")

        if self.mode not in MODES:
            bad("--mode", self.mode, "single, keras-tuner or ray")
        for flag, value in (("--nodes", self.nodes),
                            ("--cpus-per-gpu", self.cpus_per_gpu),
                            ("--cpus", self.cpus),
                            ("--gpus-per-trial", self.gpus_per_trial),
                            ("--workers-per-node", self.workers_per_node),
                            ("--signal-seconds", self.signal_seconds)):
            if value < 1:
                bad(flag, value, "an integer >= 1")
        if self.gpus_per_node < 0:
            bad("--gpus-per-node", self.gpus_per_node, "an integer >= 0")
        if self.mode == "single" and self.nodes != 1:
            bad("--nodes", self.nodes, "1 in single mode (use keras-tuner "
                "or ray to span nodes)")
        if self.gpus_per_node and self.gpus_per_node % self.gpus_per_trial:
            bad("--gpus-per-trial", self.gpus_per_trial,
                f"a divisor of --gpus-per-node {self.gpus_per_node}")
        limit = time_limit_seconds(self.time)
        if limit is None:
            bad("--time", self.time, "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM "
                "or D-HH:MM:SS (minutes and seconds below 60)")
        if self.signal_seconds >= limit:
            bad("--signal-seconds", self.signal_seconds,
                f"fewer seconds than the time limit, --time {self.time} "
                f"({limit} s): the job would stop and requeue as it starts")
        if not MEM.match(self.mem):
            bad("--mem", self.mem, "a size such as 64G, 4000M or 16000")
        if not self.workdir.startswith("/"):
            bad("--workdir", self.workdir, "an absolute path")
        for key, value in self.extra_sbatch:
            if not SBATCH_KEY.match(key):
                bad("--extra-sbatch", key, "an sbatch option name such as "
                    "qos or constraint")
        for flag, value in (("--job-name", self.job_name),
                            ("--partition", self.partition),
                            ("--account", self.account),
                            ("--workdir", self.workdir),
                            *(("--extra-sbatch", v)
                              for _, v in self.extra_sbatch)):
            if value is not None and ("\n" in value or "\r" in value
                                      or not value.strip()):
                bad(flag, value, "a non-empty value on one line")

    @property
    def tasks_per_node(self) -> int:
        if self.mode != "keras-tuner":
            return 1
        if self.gpus_per_node:
            return self.gpus_per_node // self.gpus_per_trial
        return self.workers_per_node

    @property
    def cpus_per_task(self) -> int:
        per_node = (self.cpus_per_gpu * self.gpus_per_node
                    if self.gpus_per_node else self.cpus)
        return max(1, per_node // self.tasks_per_node)


def _sbatch_value(value: str) -> str:
    """A value for an #SBATCH line: sbatch reads these lines itself, no
    shell expands them; double quotes keep spaces and `;` in one value."""
    if re.fullmatch(r"[A-Za-z0-9_.:/@%,=+-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sbatch_lines(spec: SlurmSpec) -> list[str]:
    options = {
        "job-name": spec.job_name,
        "nodes": str(spec.nodes),
        "ntasks-per-node": str(spec.tasks_per_node),
        "cpus-per-task": str(spec.cpus_per_task),
        "mem": spec.mem,
        "time": spec.time,
        "output": f"{spec.workdir}/slurm/%x-%j.out",
        "open-mode": "append",
        "signal": f"B:USR1@{spec.signal_seconds}",
    }
    if spec.gpus_per_node:
        options["gpus-per-node"] = str(spec.gpus_per_node)
    if spec.partition:
        options["partition"] = spec.partition
    if spec.account:
        options["account"] = spec.account
    options.update(dict(spec.extra_sbatch))
    lines = [f"#SBATCH --{key}={_sbatch_value(value)}"
             for key, value in sorted(options.items())]
    return lines + ["#SBATCH --requeue"]


PREAMBLE = r"""set -uo pipefail
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
"""


def _tune(spec: SlurmSpec, *extra: str) -> str:
    args = " ".join(shlex.quote(a) for a in (*spec.tune_args, *extra))
    return f'"$PYTHON" -m launch tune {args} --workdir "$WORKDIR"'


def _first_node(spec: SlurmSpec) -> str:
    lines = ['FIRST_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" '
             '| head -n 1)']
    if spec.head_address:
        lines.append(f"HEAD={shlex.quote(spec.head_address)}")
    else:
        lines.append('HEAD="$FIRST_NODE"')
    return "\n".join(lines)


def _single(spec: SlurmSpec) -> str:
    return f"""setsid {_tune(spec)} &
study=$!
groups+=("$study")
wait "$study"
status=$?
exit "$status"
"""


def _keras_tuner(spec: SlurmSpec) -> str:
    gpus = (f" --gpus-per-task={spec.gpus_per_trial}"
            if spec.gpus_per_node else "")
    return f"""{_first_node(spec)}
PORT=$((20000 + SLURM_JOB_ID % 20000))  # one chief port per job
# The chief (the oracle) alone, in the batch step on the first node.
setsid {_tune(spec, "--concurrent-trials", "0")} \\
    --oracle-host "$HEAD" --oracle-port "$PORT" &
chief=$!
groups+=("$chief")
# One worker per GPU group (or CPU slot) on every node; each waits for the
# chief and runs trials until the study is done.
setsid srun --overlap --ntasks-per-node={spec.tasks_per_node}{gpus} \\
    bash -c 'exec "$0" -m launch worker --oracle "$1" --workdir "$2" \\
        --devices auto --tuner-id "worker-$SLURM_NODEID-$SLURM_LOCALID"' \\
    "$PYTHON" "$HEAD:$PORT" "$WORKDIR" &
workers=$!
groups+=("$workers")
wait "$chief"
status=$?
wait "$workers"
exit "$status"
"""


def _ray(spec: SlurmSpec) -> str:
    loopback = ("export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0  # keep "
                "127.0.0.1\n" if (spec.head_address or "").startswith(
                    "127.") else "")
    workers = "" if spec.nodes == 1 else f"""\
setsid srun --overlap --nodes={spec.nodes - 1} --ntasks-per-node=1 \\
    --exclude="$FIRST_NODE" "$RAY" start --block --address="$HEAD:$BASE" \\
    $PORTS --temp-dir="$RAY_TMP" --num-gpus={spec.gpus_per_node} \\
    --disable-usage-stats &
groups+=("$!")
"""
    return f"""{_first_node(spec)}
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
{loopback}RAY="$(dirname "$PYTHON")/ray"
# Ports and temp dir unique to this job, so two jobs on a node never meet.
BASE=$((20000 + (SLURM_JOB_ID % 400) * 100))
PORTS="--node-manager-port=$((BASE + 1)) --object-manager-port=$((BASE + 2))
 --ray-client-server-port=$((BASE + 3)) --metrics-export-port=$((BASE + 4))
 --dashboard-agent-grpc-port=$((BASE + 5))
 --dashboard-agent-listen-port=$((BASE + 6))
 --runtime-env-agent-port=$((BASE + 7))
 --min-worker-port=$((BASE + 10)) --max-worker-port=$((BASE + 99))"
RAY_TMP="/tmp/rnntune-ray-$SLURM_JOB_ID"
setsid srun --overlap --nodes=1 --ntasks=1 -w "$FIRST_NODE" "$RAY" start \\
    --head --block --node-ip-address="$HEAD" --port="$BASE" $PORTS \\
    --temp-dir="$RAY_TMP" --num-gpus={spec.gpus_per_node} \\
    --include-dashboard=false --disable-usage-stats &
groups+=("$!")
for _ in $(seq 120); do
  (exec 3<>"/dev/tcp/$HEAD/$BASE") 2>/dev/null && break
  sleep 1
done
{workers}setsid {_tune(spec)} --ray-address "$HEAD:$BASE" &
study=$!
groups+=("$study")
wait "$study"
status=$?
stop_all  # tears the Ray cluster down
rm -rf "$RAY_TMP"
exit "$status"
"""


def render(spec: SlurmSpec) -> str:
    """The batch script of `spec` (pure: no file or network access)."""
    body = {"single": _single, "keras-tuner": _keras_tuner,
            "ray": _ray}[spec.mode](spec)
    return "\n".join([
        "#!/bin/bash",
        f"# rnntune study, {spec.mode} mode: submit with sbatch; requeues "
        "itself before its time limit.",
        *_sbatch_lines(spec),
        "",
        PREAMBLE,
        f"WORKDIR={shlex.quote(spec.workdir)}",
        f"PYTHON={shlex.quote(spec.python)}",
        'mkdir -p "$WORKDIR/slurm"',
        "",
        body,
    ])
