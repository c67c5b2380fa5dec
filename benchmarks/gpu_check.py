"""GPU checks: the cuDNN path, and mirrored trials against one trial per GPU.

    bash benchmarks/gpu_check.sh        # on a machine with GPUs, < 5 minutes

1. cuDNN: for GRU and LSTM under the presets' model configs (and masked and
   bidirectional variants), each recurrent layer is forced to
   `use_cudnn=True` and run on the GPU: Keras raises where cuDNN cannot
   serve a config, so every config is reported as cuDNN or not, with why.
   SimpleRNN has no cuDNN kernel.
2. Throughput of the imdb preset (a sample of the data, a few epochs): one
   trial mirrored across all GPUs (`--devices gpu:all`) against one trial
   per GPU at once (each process sees one GPU), as trials per hour; with a
   single GPU, one trial against two sharing it (memory growth is on).

Prints a table and a JSON line.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = {
    "seed (no mask)": {},
    "imdb (masked)": {"model.mask_zero": True},
    "masked + bidirectional": {"model.mask_zero": True,
                               "model.bidirectional": True},
    "dropout 0.3": {"model.dropout": 0.3},
}


def cudnn_report() -> list[dict]:
    import keras
    import numpy as np

    from launch.presets import get_preset
    from models.builder import build_model
    from tuning.trial.config import apply_overrides

    rows = []
    ids = np.zeros((8, 50), dtype="int32")
    ids[:, :20] = np.random.default_rng(0).integers(2, 100, (8, 20))
    for cell in ("gru", "lstm"):
        for name, overrides in CONFIGS.items():
            config = apply_overrides(get_preset("seed"),
                                     {"model.cell": cell, **overrides})
            model = build_model(config.model, vocab_size=100,
                                sequence_length=50, num_classes=2)
            for layer in model.layers:
                inner = getattr(layer, "forward_layer", None)
                for rnn in ([layer] if inner is None
                            else [layer.forward_layer, layer.backward_layer]):
                    if hasattr(rnn, "use_cudnn"):
                        rnn.use_cudnn = True  # raise instead of falling back
            try:
                model(ids, training=True)
                rows.append({"cell": cell, "config": name, "cudnn": True,
                             "why": ""})
            except Exception as e:  # Keras says why cuDNN cannot run it
                lines = [line.strip() for line in str(e).splitlines()
                         if line.strip() and not line.startswith(
                             "Exception encountered")]
                rows.append({"cell": cell, "config": name, "cudnn": False,
                             "why": (lines[0] if lines else repr(e))[:120]})
            keras.backend.clear_session()
    rows.append({"cell": "simple_rnn", "config": "any", "cudnn": False,
                 "why": "SimpleRNN has no cuDNN kernel"})
    return rows


def _train(workdir, devices, visible, examples, epochs):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=visible)
    return subprocess.Popen(
        [sys.executable, "-m", "launch", "train", "--preset", "imdb",
         "--set", f"data.max_examples={examples}", "--set",
         f"train.epochs={epochs}", "--set", "train.early_stopping_patience=0",
         "--devices", devices, "--workdir", str(workdir)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run_all(processes) -> float:
    started = time.perf_counter()
    for p in processes:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(err[-2000:])
    return time.perf_counter() - started


def throughput(gpus: int, examples: int, epochs: int) -> dict:
    ids = ",".join(map(str, range(gpus)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        mirrored = _run_all([_train(tmp / "mirrored", "gpu:all", ids,
                                    examples, epochs)])
        slots = [str(i) for i in range(gpus)] if gpus > 1 else ["0", "0"]
        per_gpu = _run_all([_train(tmp / f"t{i}", "auto", visible, examples,
                                   epochs) for i, visible in enumerate(slots)])
    return {"gpus": gpus, "mirrored_seconds": mirrored,
            "mirrored_trials_per_hour": 3600 / mirrored,
            "parallel_trials": len(slots), "parallel_seconds": per_gpu,
            "parallel_trials_per_hour": 3600 * len(slots) / per_gpu}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    if not gpus:
        print("no GPU visible: nothing to check")
        return 1
    rows = cudnn_report()
    print(f"{'cell':<11} {'config':<24} cuDNN  why not")
    for r in rows:
        print(f"{r['cell']:<11} {r['config']:<24} "
              f"{'yes' if r['cudnn'] else 'no ':<5}  {r['why']}")
    speed = throughput(gpus, args.examples, args.epochs)
    print(f"one trial mirrored over {gpus} GPU(s): "
          f"{speed['mirrored_trials_per_hour']:.0f} trials/hour; "
          f"{speed['parallel_trials']} trials at once (one per GPU, or two "
          f"sharing one): {speed['parallel_trials_per_hour']:.0f} "
          "trials/hour")
    print(json.dumps({"cudnn": rows, "throughput": speed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
