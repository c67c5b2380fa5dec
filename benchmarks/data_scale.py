"""Data set-up at a user's corpus sizes: the vectorized-data cache against
reading and vectorizing in every trial.

    python benchmarks/data_scale.py [--sizes 25000 100000 400000 1000000]
        [--dir /tmp/rnntune-data-scale] [--skip-uncached-above 400000]

For each size it writes a CSV corpus made from the embedded IMDB reviews
(each text's words shuffled by a seeded generator, cycling through the
25,000 reviews), then measures at the `imdb` preset's vectorizer settings
(20,000 tokens) with `data.sequence_length=500`, each in a fresh process:

- build: the first open of the cache (read + adapt + vectorize + write),
  seconds and peak RSS above the process's baseline (TensorFlow imported);
- open: a later trial's data set-up (the cache opened, its arrays mapped);
- trial: one trial process from start to its first training step (the
  `imdb` preset's model, batch 64, length buckets), its peak RSS above the
  baseline; `uncached` is the same trial with `data.cache=false` (it reads
  and vectorizes the corpus itself, as every trial did before the cache);
- 2 trials: two such trial processes at once on the cached data, the
  node's memory in use (MemTotal - MemAvailable) at its peak above before
  they started: their mapped pages count once;
- disk: the cache entry's size.

Goals (issue "data at scale"): open under 2 s at any size; one trial's
peak RSS at 1,000,000 texts under 2.5 GB above its baseline; build time
linear (the 1,000,000 / 100,000 ratio at most 11); 2 concurrent trials at
1,000,000 texts inside this machine's memory.
"""

import argparse
import csv
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Runs in a fresh process: prints one JSON line of its figures.
CHILD = r"""
import json, os, sys, time
started = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import keras

def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
from data_pipeline.cache import DataCache
from data_pipeline.config import DataConfig
from data_pipeline.pipeline import VectorizedSplits
from data_pipeline.sources import load_splits
from launch.presets import get_preset
from models.builder import build_model
from tuning.trial.optimization import compile_model
import pathlib
mode, csv_path, cache = sys.argv[1:4]
import dataclasses
preset = get_preset("imdb")
data = dataclasses.replace(preset.data, source="csv", path=csv_path,
                           sequence_length=500)
baseline = rss("VmRSS")
t0 = time.perf_counter()
if mode == "uncached":
    vectorized = VectorizedSplits.build(
        load_splits(data), max_tokens=data.max_tokens,
        sequence_length=data.sequence_length)
else:
    vectorized = DataCache(cache, report=lambda line: None).open(data)
setup = time.perf_counter() - t0
out = {"setup_s": setup, "setup_peak_mib": rss("VmHWM") - baseline}
if mode in ("trial", "uncached"):
    ds = vectorized.dataset("train", global_batch_size=64, shuffle=True,
                            seed=1, bucket=True)
    model = build_model(preset.model, vocab_size=len(vectorized.vocabulary),
                        num_classes=2)
    compile_model(model, num_classes=2, label_smoothing=0.0,
                  optimizer=keras.optimizers.Adam())
    model.fit(ds.take(1), verbose=0)
    out["to_first_step_s"] = time.perf_counter() - started
    out["trial_peak_mib"] = rss("VmHWM") - baseline
out["baseline_mib"] = baseline
print(json.dumps(out), flush=True)
"""


def make_corpus(path: pathlib.Path, size: int) -> None:
    """`size` reviews, each an embedded IMDB review with its words
    shuffled (a seeded generator), as a `text,label` CSV."""
    import numpy as np

    from data_pipeline.config import DataConfig
    from data_pipeline.sources import load_splits

    splits = load_splits(DataConfig(source="imdb", test_split=0,
                                    validation_split=0.5))
    texts = [*splits.train.texts, *splits.validation.texts]
    labels = [*splits.train.labels, *splits.validation.labels]
    words = [t.split() for t in texts]
    rng = np.random.default_rng(0)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(size):
            k = i % len(texts)
            order = rng.permutation(len(words[k]))
            writer.writerow([" ".join(words[k][j] for j in order),
                             int(labels[k])])
    os.replace(tmp, path)


def child(mode: str, corpus: pathlib.Path, cache: pathlib.Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(corpus), str(cache)],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def node_used_mib() -> float:
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":")
            fields[name] = int(value.split()[0]) / 1024
    return fields["MemTotal"] - fields["MemAvailable"]


def two_trials(corpus: pathlib.Path, cache: pathlib.Path) -> float:
    """The node's memory in use at its peak while two trial processes run
    at once, above what it was before (MiB)."""
    before = node_used_mib()
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], node_used_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    runs = [subprocess.Popen(
        [sys.executable, "-c", CHILD, "trial", str(corpus), str(cache)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(2)]
    for run in runs:
        run.wait()
    stop.set()
    sampler.join()
    if any(run.returncode for run in runs):
        raise SystemExit("a concurrent trial failed")
    return peak[0] - before


def disk_mib(cache: pathlib.Path) -> float:
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()
               and not p.name.endswith(".lock")) / 2 ** 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[25000, 100000, 400000, 1000000])
    parser.add_argument("--dir", type=pathlib.Path,
                        default=pathlib.Path("/tmp/rnntune-data-scale"))
    parser.add_argument("--opens", type=int, default=3,
                        help="later opens to take the median of")
    parser.add_argument("--skip-uncached-above", type=int, default=10 ** 9,
                        help="no uncached trial above this size")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        corpus = args.dir / f"corpus_{size}.csv"
        if not corpus.exists():
            make_corpus(corpus, size)
        cache = args.dir / f"cache_{size}"
        if cache.exists():
            import shutil
            shutil.rmtree(cache)
        build = child("open", corpus, cache)
        opens = [child("open", corpus, cache) for _ in range(args.opens)]
        trial = child("trial", corpus, cache)
        row = {
            "texts": size,
            "csv_mib": corpus.stat().st_size / 2 ** 20,
            "build_s": build["setup_s"],
            "build_peak_mib": build["setup_peak_mib"],
            "open_s": statistics.median(o["setup_s"] for o in opens),
            "trial_first_step_s": trial["to_first_step_s"],
            "trial_peak_mib": trial["trial_peak_mib"],
            "two_trials_node_mib": two_trials(corpus, cache),
            "cache_mib": disk_mib(cache),
        }
        if size <= args.skip_uncached_above:
            uncached = child("uncached", corpus, cache)
            row["uncached_setup_s"] = uncached["setup_s"]
            row["uncached_peak_mib"] = uncached["trial_peak_mib"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    header = ("texts", "csv MiB", "build s", "build MiB", "open s",
              "uncached s", "trial MiB", "uncached MiB", "2 trials MiB",
              "cache MiB")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join([
            f"{r['texts']:,}", f"{r['csv_mib']:.0f}", f"{r['build_s']:.1f}",
            f"{r['build_peak_mib']:.0f}", f"{r['open_s']:.2f}",
            (f"{r['uncached_setup_s']:.1f}" if "uncached_setup_s" in r
             else "-"),
            f"{r['trial_peak_mib']:.0f}",
            (f"{r['uncached_peak_mib']:.0f}" if "uncached_peak_mib" in r
             else "-"),
            f"{r['two_trials_node_mib']:.0f}", f"{r['cache_mib']:.0f}"]))
    by_size = {r["texts"]: r for r in rows}
    if 100000 in by_size and 1000000 in by_size:
        print(f"build time 1,000,000 / 100,000: "
              f"{by_size[1000000]['build_s'] / by_size[100000]['build_s']:.1f}"
              " (goal: at most 11)")
    for r in rows:
        if "uncached_setup_s" in r:
            print(f"{r['texts']:,} texts: a later trial's data set-up "
                  f"{r['open_s']:.2f} s cached vs {r['uncached_setup_s']:.1f}"
                  f" s uncached ({r['uncached_setup_s'] / r['open_s']:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
