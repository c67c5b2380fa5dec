"""Which devices a run uses, and the distribution strategy over them.

    devices = parse_devices("cpu:2")     # plain Python, no TensorFlow
    strategy = make_strategy(devices)     # before TensorFlow runs any op

`auto` mirrors across every visible GPU when there are two or more and uses
the default strategy otherwise; `gpu:all` and `gpu:0,1` mirror across those
GPUs; `cpu` runs on the CPU; `cpu:N` splits the CPU into N logical devices
and mirrors across them (how the multi-replica path runs without GPUs).
GPU memory growth is turned on, so trials can share a GPU.
"""

import dataclasses
import os
from typing import Literal

from tuning.trial.config import ConfigError

DeviceKind = Literal["auto", "cpu", "gpu"]


@dataclasses.dataclass(frozen=True)
class Devices:
    kind: DeviceKind = "auto"
    count: int = 1  # cpu:N
    gpus: tuple[int, ...] | None = None  # gpu:0,1 (None: all)

    def __str__(self) -> str:
        if self.kind == "cpu":
            return f"cpu:{self.count}" if self.count > 1 else "cpu"
        if self.kind == "gpu":
            return "gpu:" + (",".join(map(str, self.gpus))
                             if self.gpus is not None else "all")
        return "auto"


ACCEPTED = "auto, cpu, cpu:N, gpu:all or gpu:0,1,..."
HELP = ("auto (mirror across all GPUs if two or more), gpu:all, gpu:0,1, "
        "cpu, or cpu:N (N logical CPU devices, mirrored)")


def parse_devices(text: str) -> Devices:
    """Parses `--devices`.

    Raises:
        ConfigError: not one of `ACCEPTED`.
    """
    kind, _, rest = text.strip().lower().partition(":")
    try:
        if kind == "auto" and not rest:
            return Devices("auto")
        if kind == "cpu":
            count = int(rest) if rest else 1
            if count < 1:
                raise ValueError
            return Devices("cpu", count=count)
        if kind == "gpu" and rest == "all":
            return Devices("gpu")
        if kind == "gpu" and rest:
            gpus = tuple(int(i) for i in rest.split(","))
            if min(gpus) < 0 or len(set(gpus)) != len(gpus):
                raise ValueError
            return Devices("gpu", gpus=gpus)
    except ValueError:
        pass
    raise ConfigError(f"--devices {text!r}: expected {ACCEPTED}")


def make_strategy(devices: Devices):
    """Configures TensorFlow's devices and returns the strategy.

    Call it before TensorFlow runs any operation (device layouts cannot
    change after), once per process.

    Raises:
        ConfigError: GPUs were asked for and are not visible.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if devices.kind == "cpu":
        tf.config.set_visible_devices([], "GPU")
        if devices.count == 1:
            return tf.distribute.OneDeviceStrategy("/cpu:0")
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices.count)
        names = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(names) != devices.count:  # else fit() would hang
            raise ConfigError(
                f"--devices {devices}: TensorFlow shows {len(names)} CPU "
                "device(s); it was configured before this call")
        return tf.distribute.MirroredStrategy(names)
    if devices.kind == "gpu":
        if not gpus:
            raise ConfigError(
                f"--devices {devices}: no GPU is visible "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})")
        if devices.gpus is not None:
            missing = [i for i in devices.gpus if i >= len(gpus)]
            if missing:
                raise ConfigError(
                    f"--devices {devices}: only {len(gpus)} GPU(s) visible")
            chosen = [gpus[i] for i in devices.gpus]
            tf.config.set_visible_devices(chosen, "GPU")
            gpus = chosen
        names = [f"/gpu:{i}" for i in range(len(gpus))]
        return (tf.distribute.MirroredStrategy(names) if len(names) > 1
                else tf.distribute.OneDeviceStrategy(names[0]))
    if len(gpus) >= 2:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe(strategy) -> list[str]:
    """The devices a strategy's replicas run on."""
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()
                if d.device_type == "GPU"][:1] or ["/cpu:0"]
