"""`rnntune submit slurm|k8s`: a study as a cluster job."""

import pathlib
import shutil
import subprocess
import sys

from launch.common import UsageError, quote
from launch.slurm import MODES
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
    from launch.slurm import SlurmSpec, render

    options = StudyOptions.from_args(args)
    spec = options.spec(args.command)
    check_backend_flags(args, spec.backend)
    if args.mode != "single" and spec.backend != args.mode:
        raise UsageError(f"--mode {args.mode} runs a {args.mode} study; got "
                         f"--backend {spec.backend}")
    workdir = pathlib.Path(args.workdir).absolute()
    slurm = SlurmSpec(
        mode=args.mode, workdir=str(workdir), python=args.python,
        tune_args=tuple(options.argv()), job_name=args.job_name,
        nodes=args.nodes, gpus_per_node=args.gpus_per_node,
        cpus_per_gpu=args.cpus_per_gpu, cpus=args.cpus, mem=args.mem,
        time=args.time, partition=args.partition, account=args.account,
        gpus_per_trial=max(1, int(args.gpus_per_trial or 1)),
        workers_per_node=args.workers_per_node,
        signal_seconds=args.signal_seconds, head_address=args.head_address,
        extra_sbatch=tuple(_pairs(args.extra_sbatch, "--extra-sbatch")))
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
    from launch.k8s import RayJobSpec, render

    options = StudyOptions.from_args(args)
    spec = options.spec(args.command)
    check_backend_flags(args, spec.backend)
    if spec.backend != "ray":
        raise UsageError("a RayJob runs a ray study; got --backend "
                         f"{spec.backend}")
    if not args.dry_run:
        raise UsageError("submit k8s renders the manifest only: pass "
                         "--dry-run and apply it with `kubectl apply -f -`")
    print(render(RayJobSpec(
        name=args.name, image=args.image, tune_args=tuple(options.argv()),
        workdir=args.workdir, namespace=args.namespace, workers=args.workers,
        gpus_per_worker=args.gpus_per_worker, cpus=args.cpus,
        memory=args.memory, volume_claim=args.volume_claim,
        ray_version=args.ray_version)), end="")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("submit", help="submit a study to a cluster")
    clusters = p.add_subparsers(dest="cluster", required=True,
                                metavar="CLUSTER")
    p = clusters.add_parser(
        "slurm", help="write (and sbatch) a SLURM script for the study")
    p.add_argument("--mode", required=True, choices=MODES,
                   help="single: one node; keras-tuner: chief and srun "
                   "workers; ray: a Ray cluster inside the allocation")
    add_study_options(p)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--cpus-per-gpu", type=int, default=4)
    p.add_argument("--cpus", type=int, default=4,
                   help="CPUs per node when there are no GPUs")
    p.add_argument("--mem", default="16G", help="memory per node")
    p.add_argument("--time", default="04:00:00",
                   help="time limit, e.g. 04:00:00 or 1-12:00:00")
    p.add_argument("--partition")
    p.add_argument("--account")
    p.add_argument("--job-name", default="rnntune")
    p.add_argument("--workers-per-node", type=int, default=1,
                   help="keras-tuner mode without GPUs: workers per node")
    p.add_argument("--signal-seconds", type=int, default=120,
                   help="stop and requeue this long before the time limit")
    p.add_argument("--head-address", default=None,
                   help="address the chief / Ray head binds (default: the "
                   "first node's hostname)")
    p.add_argument("--extra-sbatch", action="append", default=[],
                   metavar="KEY=VALUE", help="another #SBATCH --KEY=VALUE")
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter the job runs (absolute path)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the script (it is written either way)")
    p.add_argument("--workdir", required=True)
    p.set_defaults(func=cmd_submit_slurm)

    p = clusters.add_parser(
        "k8s", help="render a KubeRay RayJob manifest for the study")
    add_study_options(p)
    p.add_argument("--name", required=True, help="the RayJob's name")
    p.add_argument("--image", required=True,
                   help="an image with rnntune and Ray installed")
    p.add_argument("--namespace", default="default")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--cpus", type=int, default=8)
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--volume-claim", default=None,
                   help="a PersistentVolumeClaim holding the workdir")
    p.add_argument("--ray-version", default="2.40.0")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--workdir", default="/data/study",
                   help="the workdir inside the containers")
    p.set_defaults(func=cmd_submit_k8s)
