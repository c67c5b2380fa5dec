"""A KubeRay `RayJob` manifest for a study, rendered by a pure function.

    print(render(RayJobSpec(name="imdb-study", image="registry/rnntune:1",
                            tune_args=("--preset", "imdb", ...))))

The head and one worker group (with GPU requests) form the Ray cluster; the
study is the job's entrypoint, joining that cluster (`--ray-address auto`)
and writing to a workdir on a shared volume; the cluster is removed when the
job ends.
"""

import dataclasses
import json
import re
import shlex

from launch.options import option

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ManifestError(ValueError):
    """An invalid manifest option (a user error)."""


@dataclasses.dataclass(frozen=True)
class RayJobSpec:
    """One study's RayJob. The fields with a help are the options of
    `rnntune submit k8s` (`launch.options`); `tune_args` holds the
    `rnntune tune` options (Ray backend), without `--workdir` and
    `--ray-address`."""

    name: str = option(help="the RayJob's name (a DNS label)")
    image: str = option(help="an image with rnntune and Ray installed")
    tune_args: tuple[str, ...]
    workdir: str = option("/data/study",
                          help="the study's workdir inside the containers")
    namespace: str = option("default", help="the Kubernetes namespace")
    workers: int = option(1, help="worker pods")
    gpus_per_worker: int = option(1, help="GPUs each worker pod requests")
    cpus: int = option(8, help="each pod's CPU request and limit")
    memory: str = option("32Gi", help="each pod's memory request and limit")
    volume_claim: str | None = option(
        None, help="a PersistentVolumeClaim holding the workdir, mounted at "
        "its parent on every pod (shared storage for results and logs)")
    ray_version: str = option("2.40.0", help="the Ray version in the image")

    def __post_init__(self):
        for flag, value in (("--name", self.name),
                            ("--namespace", self.namespace)):
            if not NAME.match(value) or len(value) > 63:
                raise ManifestError(f"{flag} {value!r}: expected a DNS "
                                    "label (lower-case letters, digits, -)")
        if self.workers < 1:
            raise ManifestError(f"--workers {self.workers}: expected >= 1")
        if self.gpus_per_worker < 0:
            raise ManifestError(f"--gpus-per-worker {self.gpus_per_worker}:"
                                " expected >= 0")
        if not self.workdir.startswith("/"):
            raise ManifestError(f"--workdir {self.workdir!r}: expected an "
                                "absolute path inside the containers")


def _container(spec: RayJobSpec, name: str, gpus: int) -> dict:
    limits = {"cpu": str(spec.cpus), "memory": spec.memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    container = {"name": name, "image": spec.image,
                 "resources": {"limits": limits,
                               "requests": dict(limits)}}
    if spec.volume_claim:
        container["volumeMounts"] = [{
            "name": "workdir",
            "mountPath": spec.workdir.rsplit("/", 1)[0] or "/"}]
    return container


def _pod(spec: RayJobSpec, name: str, gpus: int) -> dict:
    pod = {"containers": [_container(spec, name, gpus)]}
    if spec.volume_claim:
        pod["volumes"] = [{"name": "workdir", "persistentVolumeClaim": {
            "claimName": spec.volume_claim}}]
    return {"spec": pod}


def manifest(spec: RayJobSpec) -> dict:
    entrypoint = " ".join(shlex.quote(a) for a in (
        "python", "-m", "launch", "tune", *spec.tune_args,
        "--ray-address", "auto", "--workdir", spec.workdir))
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace},
        "spec": {
            "entrypoint": entrypoint,
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 600,
            "rayClusterSpec": {
                "rayVersion": spec.ray_version,
                "headGroupSpec": {
                    "rayStartParams": {"num-gpus": "0"},
                    "template": _pod(spec, "ray-head", 0),
                },
                "workerGroupSpecs": [{
                    "groupName": "workers",
                    "replicas": spec.workers,
                    "minReplicas": spec.workers,
                    "maxReplicas": spec.workers,
                    "rayStartParams": {},
                    "template": _pod(spec, "ray-worker",
                                     spec.gpus_per_worker),
                }],
            },
        },
    }


def render(spec: RayJobSpec) -> str:
    """The manifest as JSON (pure), which `kubectl apply -f` reads as it
    reads YAML."""
    return json.dumps(manifest(spec), indent=2) + "\n"
