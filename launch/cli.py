"""rnntune: train, compare and inspect recurrent text models.

    rnntune compare --preset smoke --workdir runs/first
    rnntune train --preset imdb --set model.cell=lstm --workdir runs/lstm
    rnntune tune --preset smoke --space tiny --backend keras-tuner \\
        --algorithm random --max-trials 4 --workdir runs/study
    rnntune predict --model runs/lstm/model.keras "A wonderful film."
    rnntune tensorboard --workdir runs/first
    rnntune presets

Configuration comes from a preset and `--set section.key=value` overrides
(`rnntune presets --keys` lists every key). User mistakes (a bad key, a
missing file, an unreadable data set) print one line and exit with status 2.

The commands live by group, each module with the parser of its commands:
`launch.runs` (train, compare, predict), `launch.studies` (tune, worker),
`launch.clusters` (submit) and `launch.info` (report, tensorboard, spaces,
presets).
"""

import argparse
import os
import sys
from collections.abc import Sequence

from launch import clusters, info, runs, studies
from launch.common import USER_ERRORS, absolute_paths
from tuning.trial.noise import QuietStderr

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, as every user error is."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"rnntune: error: {message} (see "
                  f"{self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnntune",
        description="Train, compare and tune recurrent text models.")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="COMMAND")
    for group in (runs, studies, info, clusters):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "cluster", None) != "k8s":  # k8s paths are the pods'
        absolute_paths(args)
    # Before TensorFlow loads: its start-up chatter goes, real lines stay.
    verbose = getattr(args, "verbose", False)
    quiet = args.quiet_stderr = None if verbose else QuietStderr()
    try:
        return _run(args)
    finally:
        if quiet is not None:
            quiet.stop()


def _run(args) -> int:
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"rnntune: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `rnntune presets imdb | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        if e.filename is None:
            raise
        # A file the user named or the file system refused (permissions,
        # a full disk): one line, as for the other user errors.
        print(f"rnntune: error: {e.filename}: {e.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnntune: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130

