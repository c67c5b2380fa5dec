"""`rnntune submit slurm|k8s`: a study as a cluster job."""

import dataclasses
import pathlib
import shutil
import subprocess
import sys

from launch.common import UsageError, path_override, quote
from launch.k8s import RayJobSpec
from launch.options import add_options, values
from launch.slurm import SlurmSpec
from launch.studies import (StudyOptions, add_study_options,
                            check_backend_flags)


def _pairs(items, flag) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE, e.g. "
                             "qos=high")
        pairs.append((key, value))
    return pairs


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def cmd_submit_slurm(args) -> int:
    from launch.slurm import render

    options = StudyOptions.from_args(args)
    spec = options.spec(args.command)
    check_backend_flags(args, spec.backend)
    if args.mode != "single" and spec.backend != args.mode:
        raise UsageError(f"--mode {args.mode} runs a {args.mode} study; got "
                         f"--backend {spec.backend}")
    workdir = pathlib.Path(args.workdir).absolute()
    given = values(args, SlurmSpec)
    given["extra_sbatch"] = tuple(_pairs(given["extra_sbatch"],
                                         "--extra-sbatch"))
    slurm = SlurmSpec(
        **given, workdir=str(workdir), python=args.python,
        tune_args=tuple(options.argv()),
        gpus_per_trial=max(1, int(args.gpus_per_trial or 1)))
    script = render(slurm)
    (workdir / "slurm").mkdir(parents=True, exist_ok=True)
    path = workdir / "slurm" / f"{_safe_name(args.job_name)}.sbatch"
    path.write_text(script)
    if args.dry_run:
        print(script, end="")
        print(f"# written to {quote(path)}; submit it with: sbatch "
              f"{quote(path)}", file=sys.stderr)
        return 0
    if shutil.which("sbatch") is None:
        raise UsageError("sbatch not found: run this on a SLURM login node, "
                         f"or pass --dry-run (the script is in "
                         f"{quote(path)})")
    done = subprocess.run(["sbatch", "--parsable", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"sbatch refused {path}: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    job = done.stdout.strip().split(";")[0]
    log = workdir / "slurm" / f"{args.job_name}-{job}.out"
    print(f"submitted job {job}: {quote(path)}")
    print(f"  follow it:   squeue -j {job}")
    print(f"  its log:     {quote(log)}")
    print(f"  TensorBoard: rnntune tensorboard --workdir {quote(workdir)}")
    return 0


def cmd_submit_k8s(args) -> int:
    from launch.k8s import render

    options = StudyOptions.from_args(args)
    spec = options.spec(args.command)
    check_backend_flags(args, spec.backend)
    if spec.backend != "ray":
        raise UsageError("a RayJob runs a ray study; got --backend "
                         f"{spec.backend}")
    if not args.dry_run:
        raise UsageError("submit k8s renders the manifest only: pass "
                         "--dry-run and apply it with `kubectl apply -f -`")
    job = RayJobSpec(**values(args, RayJobSpec),
                     tune_args=tuple(options.argv()))
    for item in args.set or ():  # read inside the pods, not here
        path = path_override(item)
        if path is not None and not path.startswith(("/", "~")):
            raise UsageError(f"--set {item}: the pods read it; give its "
                             "absolute path inside the containers (on the "
                             "volume, say)")
    if args.space.endswith((".json", ".toml")) and not args.space.startswith(
            "/"):
        raise UsageError(f"--space {args.space}: the pods read it; give its "
                         "absolute path inside the containers")
    gpus = args.gpus_per_trial
    if job.gpus_per_worker and not gpus:  # each trial one of a pod's GPUs
        job = dataclasses.replace(job, tune_args=(
            *job.tune_args, "--gpus-per-trial", "1"))
    elif gpus and gpus > job.gpus_per_worker:
        raise UsageError(f"--gpus-per-trial {gpus:g}: more than a worker "
                         f"pod's --gpus-per-worker {job.gpus_per_worker}")
    print(render(job), end="")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("submit", help="submit a study to a cluster")
    clusters = p.add_subparsers(dest="cluster", required=True,
                                metavar="CLUSTER")
    p = clusters.add_parser(
        "slurm", help="write (and sbatch) a SLURM script for the study")
    add_options(p, SlurmSpec)
    add_study_options(p)
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter the job runs (absolute path)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the script (it is written either way)")
    p.add_argument("--workdir", required=True,
                   help="the study's workdir (shared by the nodes)")
    p.set_defaults(func=cmd_submit_slurm)

    p = clusters.add_parser(
        "k8s", help="render a KubeRay RayJob manifest for the study")
    add_study_options(p)
    add_options(p, RayJobSpec)
    p.add_argument("--dry-run", action="store_true",
                   help="print the manifest (required: apply it with "
                   "kubectl)")
    p.set_defaults(func=cmd_submit_k8s)
