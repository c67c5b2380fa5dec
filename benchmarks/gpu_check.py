"""GPU checks: the cuDNN path, steps per second by preset, bucketing and
precision, and mirrored trials against one trial per GPU.

    bash benchmarks/gpu_check.sh        # on a machine with GPUs, < 5 minutes
    python benchmarks/gpu_check.py --cpu    # the script itself, on a CPU

1. cuDNN: for GRU and LSTM under the presets' model configs (and masked,
   bidirectional and recurrent-dropout variants), each recurrent layer is
   forced to `use_cudnn=True` and run on the GPU, on a batch that holds a
   text of only punctuation (one `[UNK]` token, never a fully masked row):
   Keras raises where cuDNN cannot serve a config, so every config is
   reported as cuDNN or not, with why, beside what
   `models.config.cudnn_layers` predicts from the config alone.
2. Steps per second of the imdb and rotten_tomatoes presets (a sample of
   the data) with fixed padding and with length bucketing, in each
   precision (float32, mixed_float16, mixed_bfloat16): one epoch to trace
   every padded length, then one timed.
3. Throughput of the imdb preset (a sample of the data, a few epochs): one
   trial mirrored across all GPUs (`--devices gpu:all`) against one trial
   per GPU at once (each process sees one GPU), as trials per hour; with a
   single GPU, one trial against two sharing it (memory growth is on).

Prints tables and a JSON line.
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
    "recurrent dropout 0.2": {"model.mask_zero": True,
                              "model.recurrent_dropout": 0.2},
}


def cudnn_report() -> list[dict]:
    import keras
    import numpy as np

    from data_pipeline.pipeline import vectorize
    from data_pipeline.text import make_vectorizer
    from launch.presets import get_preset
    from models.builder import build_model
    from models.config import cudnn_layers
    from tuning.trial.config import apply_overrides

    rows = []
    texts = np.asarray(["a fine film, well acted", "...", "dull <br /> and "
                        "far too long"] * 3, dtype=object)
    vectorizer = make_vectorizer(max_tokens=100, sequence_length=20,
                                 train_texts=texts)
    ids = vectorize(texts, vectorizer)  # right-padded, no empty row
    for cell in ("gru", "lstm"):
        for name, overrides in CONFIGS.items():
            config = apply_overrides(get_preset("seed"),
                                     {"model.cell": cell, **overrides})
            predicted = all(layer["cudnn"]
                            for layer in cudnn_layers(config.model))
            model = build_model(config.model, vocab_size=100, num_classes=2)
            for layer in model.layers:
                inner = getattr(layer, "forward_layer", None)
                for rnn in ([layer] if inner is None
                            else [layer.forward_layer, layer.backward_layer]):
                    if hasattr(rnn, "use_cudnn"):
                        rnn.use_cudnn = True  # raise instead of falling back
            try:
                model(ids, training=True)
                rows.append({"cell": cell, "config": name, "cudnn": True,
                             "predicted": predicted, "why": ""})
            except Exception as e:  # Keras says why cuDNN cannot run it
                lines = [line.strip() for line in str(e).splitlines()
                         if line.strip() and not line.startswith(
                             "Exception encountered")]
                rows.append({"cell": cell, "config": name, "cudnn": False,
                             "predicted": predicted,
                             "why": (lines[0] if lines else repr(e))[:120]})
            keras.backend.clear_session()
    rows.append({"cell": "simple_rnn", "config": "any", "cudnn": False,
                 "predicted": False, "why": "SimpleRNN has no cuDNN kernel"})
    return rows


def steps_per_second(examples: int) -> list[dict]:
    """Training steps per second by preset, bucketing and precision."""
    import dataclasses

    import keras

    from data_pipeline.pipeline import VectorizedSplits
    from data_pipeline.sources import load_splits
    from launch.presets import get_preset
    from models.builder import build_model
    from tuning.trial.config import PRECISIONS

    rows = []
    for preset in ("imdb", "rotten_tomatoes"):
        config = get_preset(preset)
        data = dataclasses.replace(config.data, max_examples=examples)
        vectorized = VectorizedSplits.build(
            load_splits(data), max_tokens=data.max_tokens,
            sequence_length=data.sequence_length)
        for bucket in (False, True):
            train = vectorized.dataset(
                "train", global_batch_size=config.train.batch_size,
                shuffle=True, seed=data.seed, bucket=bucket)
            steps = int(train.cardinality().numpy())
            for precision in PRECISIONS:
                keras.mixed_precision.set_global_policy(precision)
                model = build_model(config.model, vocab_size=vectorized
                                    .vectorizer.vocabulary_size(),
                                    num_classes=2)
                keras.mixed_precision.set_global_policy("float32")
                model.compile(optimizer="adam", loss="binary_crossentropy")
                model.fit(train, epochs=1, shuffle=False,
                          verbose=0)  # traces every shape
                started = time.perf_counter()
                model.fit(train, epochs=1, shuffle=False, verbose=0)
                seconds = time.perf_counter() - started
                rows.append({"preset": preset, "bucketed": bucket,
                             "precision": precision, "steps": steps,
                             "steps_per_second": steps / seconds})
                keras.backend.clear_session()
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
    parser.add_argument("--step-examples", type=int, default=4000,
                        help="examples per preset for the steps/s table")
    parser.add_argument("--cpu", action="store_true",
                        help="no GPU: run the steps/s table on a few "
                        "hundred examples, to check the script itself")
    args = parser.parse_args(argv)
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    if args.cpu:
        for r in steps_per_second(300):
            print(r)
        return 0
    if not gpus:
        print("no GPU visible: nothing to check")
        return 1
    rows = cudnn_report()
    print(f"{'cell':<11} {'config':<24} cuDNN  predicted  why not")
    for r in rows:
        print(f"{r['cell']:<11} {r['config']:<24} "
              f"{'yes' if r['cudnn'] else 'no ':<5}  "
              f"{'yes' if r['predicted'] else 'no ':<9}  {r['why']}")
    steps = steps_per_second(args.step_examples)
    print(f"\n{'preset':<16} {'padding':<9} {'precision':<15} steps/s")
    for r in steps:
        print(f"{r['preset']:<16} {'bucketed' if r['bucketed'] else 'fixed':<9}"
              f" {r['precision']:<15} {r['steps_per_second']:.1f}")
    speed = throughput(gpus, args.examples, args.epochs)
    print(f"one trial mirrored over {gpus} GPU(s): "
          f"{speed['mirrored_trials_per_hour']:.0f} trials/hour; "
          f"{speed['parallel_trials']} trials at once (one per GPU, or two "
          f"sharing one): {speed['parallel_trials_per_hour']:.0f} "
          "trials/hour")
    print(json.dumps({"cudnn": rows, "steps_per_second": steps,
                      "throughput": speed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
