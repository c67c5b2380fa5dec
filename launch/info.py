"""`rnntune presets`, `spaces`, `report` and `tensorboard`: what there is
and what runs wrote."""

import errno
import ipaddress
import socket
import sys
import time

from launch.common import (UsageError, add_verbose, existing_dir,
                           quiet_tensorflow, quote)
from launch.presets import PRESETS, get_preset
from tuning.trial.config import Config, keys


def cmd_presets(args) -> int:
    if args.keys:  # every key, with the named preset's value or its default
        values = (Config() if args.name is None
                  else get_preset(args.name, smoke=args.smoke)).flat()
        for key in keys():
            print(f"{key} = {values[key]!r}")
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
    from tuning.reporting.render import format_text, write_outputs
    from tuning.reporting.report import build_report

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
    quiet_tensorflow()
    url = _start_tensorboard(workdir, args.host, args.port,
                             verbose=args.verbose)
    print(f"TensorBoard for {workdir} at {url} (Ctrl-C stops it)",
          flush=True)
    if _exposed(args.host):
        print(f"rnntune: warning: --host {args.host} serves TensorBoard "
              "to the network without authentication: whoever reaches "
              f"http://{socket.gethostname()}:{args.port}/ reads the runs' "
              "configs and data paths; the default --host 127.0.0.1 "
              f"behind an SSH tunnel (ssh -L {args.port}:127.0.0.1:"
              f"{args.port} HOST) keeps it private", file=sys.stderr,
              flush=True)
    try:
        while True:  # TensorBoard serves from its own thread
            time.sleep(3600)
    except KeyboardInterrupt:  # Ctrl-C: the way to stop it
        return 0


def _start_tensorboard(logdir, host: str, port: int, *,
                       verbose: bool) -> str:
    """Serves TensorBoard for `logdir` from a thread of this process once
    it holds the port, and returns a URL that opens it.

    Raises:
        UsageError: the port is in use, or the address cannot be bound.
    """
    _check_port(host, port)  # before TensorBoard starts its data server
    import tensorboard.program  # the module itself, not its lazy proxy
    from tensorboard import default, main_lib

    program = tensorboard.program
    if not verbose:
        # Its "NOTE: Using experimental fast data loading logic ..."
        # paragraph, printed on every start, says nothing a user needs.
        program._DATA_SERVER_ADVISORY_MESSAGE = ""
    main_lib.global_init()
    board = program.TensorBoard(plugins=default.get_plugins())
    board.configure(argv=[None, "--logdir", str(logdir), "--host", host,
                          "--port", str(port)])
    try:
        board.launch()
    except program.TensorBoardPortInUseError:  # taken since the check
        raise _port_in_use(port) from None
    except program.TensorBoardServerException as e:
        raise UsageError(f"--host {host} --port {port}: {e.msg}") from None
    except SystemExit:  # werkzeug's exit on a failed bind, reason printed
        raise UsageError(f"--host {host} --port {port}: TensorBoard could "
                         "not serve there") from None
    return _url(host, port)


def _check_port(host: str, port: int) -> None:
    """Binds `host:port` as TensorBoard's server will (address reuse on),
    then lets it go.

    Raises:
        UsageError: the port is taken, or `host` is no address of this
            machine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise _port_in_use(port) from None
        raise UsageError(f"--host {host} --port {port}: "
                         f"{e.strerror or e}") from None


def _port_in_use(port: int) -> UsageError:
    return UsageError(
        f"port {port} is in use (another TensorBoard, or another program); "
        f"choose another with --port, e.g. --port {_free_port()}")


def _url(host: str, port: int) -> str:
    """A URL that opens a server bound to `host`: on this machine for a
    wildcard address (0.0.0.0 is no address to browse to)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else \
        f"http://{host}:{port}/"


def _exposed(host: str) -> bool:
    """Whether a server bound to `host` is reachable from other machines
    (any address but a loopback one)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(
            host or None, None, proto=socket.IPPROTO_TCP,
            flags=socket.AI_PASSIVE)}
    except OSError:
        return True
    return not all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                   for a in addresses)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                   help="list every config key with its default (with NAME, "
                   "the preset's value) instead")
    p.set_defaults(func=cmd_presets)
