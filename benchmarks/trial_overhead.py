"""A study's per-trial fixed overhead: each trial's wall time (the study's
`started_at` to `ended_at`) minus the sum of its epochs' times
(`history.csv`), for each backend.

    python benchmarks/trial_overhead.py [--preset imdb] [--trials 2]
        [--epochs 2] [--backends keras-tuner ray] [--set KEY=VALUE ...]

Each backend runs `rnntune tune --preset P --space cells --algorithm random`
in a fresh process and workdir. The overhead is what a trial spends outside
its epochs: opening the study's data cache, building and compiling the
model, exporting and scoring it, and (Ray) starting its actor. Goal (issue
"data at scale"): at most 5 % of the trial on the `imdb` preset.
"""

import argparse
import csv
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def overheads(workdir: pathlib.Path) -> list[dict]:
    """Per finished trial: wall seconds, epoch seconds, overhead share."""
    found = []
    for row in json.loads((workdir / "trials.json").read_text()):
        if not row.get("ended_at") or row["status"] == "failed":
            continue
        with open(workdir / "trials" / row["trial_id"] / "history.csv") as f:
            epochs = sum(float(r["seconds"]) for r in csv.DictReader(f))
        wall = row["ended_at"] - row["started_at"]
        found.append({"trial": row["trial_id"], "wall_s": wall,
                      "epochs_s": epochs, "overhead_s": wall - epochs,
                      "share": (wall - epochs) / wall})
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="imdb")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--backends", nargs="+",
                        default=["keras-tuner", "ray"])
    parser.add_argument("--set", action="append", default=[],
                        metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    summary = {}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = pathlib.Path(tmp) / "study"
            command = [sys.executable, "-m", "launch", "tune",
                       "--preset", args.preset, "--space", "cells",
                       "--backend", backend, "--algorithm", "random",
                       "--max-trials", str(args.trials),
                       "--max-epochs", str(args.epochs),
                       "--workdir", str(workdir),
                       *[x for item in args.set for x in ("--set", item)]]
            done = subprocess.run(command, cwd=ROOT, capture_output=True,
                                  text=True)
            if done.returncode:
                raise SystemExit(f"{backend}: {done.stderr[-3000:]}")
            rows = overheads(workdir)
        for r in rows:
            print(f"{backend} trial {r['trial']}: wall {r['wall_s']:.1f} s, "
                  f"epochs {r['epochs_s']:.1f} s, overhead "
                  f"{r['overhead_s']:.1f} s ({r['share']:.1%})", flush=True)
        summary[backend] = statistics.median(r["share"] for r in rows)
    for backend, share in summary.items():
        print(f"{backend}: median per-trial overhead {share:.1%} of the "
              "trial (goal: at most 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
