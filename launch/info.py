"""`rnntune presets`, `spaces`, `report` and `tensorboard`: what there is
and what runs wrote."""

import os
import sys

from launch.common import (UsageError, add_verbose, existing_dir,
                           quiet_tensorflow, quote)
from launch.presets import PRESETS, get_preset
from tuning.trial.config import Config, keys


def cmd_presets(args) -> int:
    if args.keys:
        defaults = Config().flat()
        for key in keys():
            print(f"{key} = {defaults[key]!r}")
        return 0
    if args.name is None:
        if args.smoke:
            raise UsageError("presets --smoke shows a preset's twin: name "
                             "the preset, e.g. rnntune presets imdb --smoke")
        width = max(map(len, PRESETS))
        for name, (description, _) in PRESETS.items():
            print(f"{name.ljust(width)}  {description}")
        return 0
    config = get_preset(args.name, smoke=args.smoke).flat()
    defaults = Config().flat()
    print(f"{args.name}{' --smoke' if args.smoke else ''}: "
          f"{PRESETS[args.name][0]}"
          + (" (its seconds-long twin)" if args.smoke else ""))
    print("(* marks a value that differs from the default, shown after it)")
    width = max([len(f"{k} = {v!r}") for k, v in config.items()
                 if v != defaults[k]], default=0)
    for key, value in config.items():
        line = f"{key} = {value!r}"
        if value != defaults[key]:
            print(f"* {line.ljust(width)}  [{defaults[key]!r}]")
        else:
            print(f"  {line}")
    return 0


def cmd_spaces(args) -> int:
    from tuning.study.space import SPACES, get_space

    if args.name is None:
        width = max(map(len, SPACES))
        for name, (description, _) in SPACES.items():
            print(f"{name.ljust(width)}  {description}")
            if args.all:
                _print_dimensions(get_space(name))
        return 0
    space = get_space(args.name)
    print(f"{space.name}: " + (SPACES[args.name][0] if args.name in SPACES
                               else args.name))
    _print_dimensions(space)
    return 0


def _print_dimensions(space) -> None:
    for d in space.dimensions:
        when = f"  when {d.when[0]} in {list(d.when[1])}" if d.when else ""
        print(f"  {d.key} {d.kind} {d.domain()}{when}")
    for note in space.notes():
        print(f"  note: {note}")


def cmd_report(args) -> int:
    workdir = existing_dir(args.workdir)
    quiet_tensorflow()
    from tuning.reporting.report import (build_report, format_text,
                                         write_outputs)

    report = build_report(workdir)
    paths = write_outputs(report, workdir)
    if args.format == "json":
        import json

        print(json.dumps(report, indent=2))
    elif args.format == "html":
        print(paths["html"])
    else:
        print(format_text(report))
        print(f"\nreport: {quote(paths['html'])} (and report.json, PNGs "
              "beside it)")
    return 0


TENSORBOARD = "from tensorboard.main import run_main\nrun_main()\n"
# Its "NOTE: Using experimental fast data loading logic ..." paragraph,
# printed on every start, says nothing a user needs to act on.
QUIET_TENSORBOARD = ("import tensorboard.program\n"
                     "tensorboard.program._DATA_SERVER_ADVISORY_MESSAGE = ''\n")


def cmd_tensorboard(args) -> int:
    workdir = existing_dir(args.workdir)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a port number "
                         "from 1 to 65535")
    # TensorBoard in this process's place (so that signals reach it
    # directly), its start-up chatter filtered as ours unless --verbose.
    command = [sys.executable, "-c", TENSORBOARD if args.verbose else
               "from tuning.trial.noise import QuietStderr\n"
               "QuietStderr()\n" + QUIET_TENSORBOARD + TENSORBOARD,
               "--logdir", str(workdir), "--host", args.host,
               "--port", str(args.port)]
    print(f"TensorBoard for {workdir} at http://{args.host}:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    quiet_tensorflow()
    if args.quiet_stderr is not None:  # no thread of ours survives exec
        args.quiet_stderr.stop()
    os.execv(sys.executable, command)


REPORT_FORMATS = ("text", "html", "json")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "report", help="which runs overfit, from when, and which settings "
        "go with it")
    p.add_argument("--workdir", required=True,
                   help="what train, compare or tune wrote")
    p.add_argument("--format", choices=REPORT_FORMATS,
                   default=REPORT_FORMATS[0], help="what to print (every "
                   "format is written under WORKDIR/report/)")
    add_verbose(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tensorboard", help="serve TensorBoard for a workdir")
    p.add_argument("--workdir", required=True)
    p.add_argument("--port", type=int, default=6006)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; default loopback only")
    add_verbose(p)
    p.set_defaults(func=cmd_tensorboard)

    p = sub.add_parser(
        "spaces", help="list the named search spaces, or show one")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="a space (or a .json / .toml space file) to show "
                   "dimension by dimension")
    p.add_argument("--all", action="store_true",
                   help="show every named space's dimensions")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("presets", help="list the presets, or show one")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="a preset to show in full, its values that differ "
                   "from the defaults marked")
    p.add_argument("--smoke", action="store_true",
                   help="show the preset's seconds-long twin")
    p.add_argument("--keys", action="store_true",
                   help="list every config key with its default instead")
    p.set_defaults(func=cmd_presets)
