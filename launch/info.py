"""`rnntune presets`, `spaces`, `report` and `tensorboard`: what there is
and what runs wrote."""

import os
import sys

from launch.common import UsageError, existing_dir, quiet_tensorflow, quote
from launch.presets import PRESETS
from tuning.trial.config import Config, keys


def cmd_presets(args) -> int:
    if args.keys:
        defaults = Config().flat()
        for key in keys():
            print(f"{key} = {defaults[key]!r}")
        return 0
    width = max(map(len, PRESETS))
    for name, (description, _) in PRESETS.items():
        print(f"{name.ljust(width)}  {description}")
    return 0


def cmd_spaces(args) -> int:
    from tuning.study.space import SPACES, get_space

    width = max(map(len, SPACES))
    for name, (description, _) in SPACES.items():
        print(f"{name.ljust(width)}  {description}")
        if args.verbose:
            for d in get_space(name).dimensions:
                when = (f"  when {d.when[0]} in {list(d.when[1])}"
                        if d.when else "")
                print(f"  {d.key} {d.kind} {d.domain()}{when}")
    return 0


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


def cmd_tensorboard(args) -> int:
    workdir = existing_dir(args.workdir)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a port number "
                         "from 1 to 65535")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir",
               str(workdir), "--host", args.host, "--port", str(args.port)]
    print(f"TensorBoard for {workdir} at http://{args.host}:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    quiet_tensorflow()
    # Become TensorBoard, so that signals reach it directly.
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
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tensorboard", help="serve TensorBoard for a workdir")
    p.add_argument("--workdir", required=True)
    p.add_argument("--port", type=int, default=6006)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; default loopback only")
    p.set_defaults(func=cmd_tensorboard)

    p = sub.add_parser("spaces", help="list the named search spaces")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show every dimension")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--keys", action="store_true",
                   help="list every config key with its default instead")
    p.set_defaults(func=cmd_presets)
