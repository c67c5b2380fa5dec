"""`rnntune train`, `compare` and `predict`: single runs and their models."""

import csv
import pathlib
import sys

from launch.common import (UsageError, add_config_options, add_verbose,
                           make_config, quiet_tensorflow, quote, say,
                           status_sink, strategy_from)
from models.config import CELL_NAMES


def _config(args):
    return make_config(args.preset, smoke=args.smoke, overrides=args.set,
                       no_cache=args.no_cache)


def cmd_train(args) -> int:
    config = _config(args)
    strategy = strategy_from(args)
    from tuning.trial.run import RunDir
    from tuning.trial.train import train_and_evaluate
    from tuning.trial.workdir import lock_workdir

    with lock_workdir(args.workdir, kind="run"):
        metrics = train_and_evaluate(config, args.workdir,
                                     strategy=strategy, report=say,
                                     status=status_sink())
    say(f"{args.workdir}: {metrics.describe()}")
    for line in metrics.forecast_lines():
        say(line)
    if metrics.diverged:
        return 1
    say(f"model: {quote(RunDir(args.workdir).model_path)}")
    return 0


def parse_cells(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELL_NAMES]
    if unknown or not cells:
        raise UsageError(
            f"--cells {text!r}: expected a comma-separated list of "
            f"{', '.join(CELL_NAMES)}")
    if len(set(cells)) != len(cells):
        raise UsageError(f"--cells {text!r}: a cell is listed twice")
    return cells


def cmd_compare(args) -> int:
    config = _config(args)
    cells = parse_cells(args.cells)
    strategy = strategy_from(args)
    from tuning.compare import compare_cells, format_comparison

    if args.ensemble and config.data.task == "forecast":
        raise UsageError("--ensemble: not for data.task=forecast (its "
                          "windows' forecasts are not yet averaged); leave "
                          "it out")

    rows = compare_cells(config, cells, args.workdir, strategy=strategy,
                         report=say, status=status_sink(),
                         ensemble=args.ensemble)
    workdir = pathlib.Path(args.workdir)
    say("")
    say(format_comparison(rows))
    say(f"table: {quote(workdir / 'comparison.csv')}, "
        f"{quote(workdir / 'comparison.json')}; curves: "
        f"{quote(workdir / 'curves_<cell>.png')}")
    say(f"tensorboard: rnntune tensorboard --workdir {quote(workdir)}")
    return 0


def read_texts(args) -> list[str]:
    """The texts to label: arguments, a file, or standard input."""
    if args.file and args.texts:
        raise UsageError(f"--file {args.file} and texts given as arguments:"
                         " pass one or the other")
    if args.file:
        path = pathlib.Path(args.file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None
    elif args.texts and args.texts != ["-"]:
        lines = args.texts
    else:
        stream = getattr(sys.stdin, "buffer", None)  # None: a text stream
        try:
            lines = (stream.read().decode("utf-8") if stream
                     else sys.stdin.read()).splitlines()
        except UnicodeDecodeError as e:
            raise UsageError(f"standard input: not UTF-8 text (byte "
                             f"{e.start}); convert it to UTF-8") from None
    texts = [t for t in lines if t.strip()]
    if not texts and args.file:
        raise UsageError(f"{args.file}: empty; nothing to predict")
    if not texts:
        raise UsageError("no text to predict: pass texts, --file FILE, or "
                         "lines on standard input")
    return texts


def load_model(path: pathlib.Path):
    """An exported model, or a one-line error saying why it won't load."""
    import keras

    import rnntune  # noqa: F401  registers what exported models hold

    try:
        return keras.models.load_model(path)
    except Exception as e:  # any file a user names: say why, one line
        text = " ".join(str(e).split())
        if "Lambda" in text and "safe_mode" in text:
            raise UsageError(
                f"{path}: holds a Lambda layer (Python code), which safe "
                "mode refuses to load; if you trust the file, load it with "
                "keras.models.load_model(path, safe_mode=False)") from None
        raise UsageError(f"{path}: not a loadable Keras model "
                         f"({type(e).__name__}: {text[:200]})") from None


def cmd_predict(args) -> int:
    from tuning.trial.run import RunDir

    model_path = pathlib.Path(args.model)
    if (model_path / RunDir.MODEL).is_file():  # a run's (or best/'s) folder
        model_path = model_path / RunDir.MODEL
    elif model_path.is_dir():  # a study's or a comparison's: name them
        inside = sorted(p.parent for p in model_path.glob(f"*/{RunDir.MODEL}"))
        if inside:
            raise UsageError(
                f"{model_path}: holds no {RunDir.MODEL} itself; the models "
                "in it: " + ", ".join(f"--model {quote(p)}"
                                      for p in inside[:5])
                + (", ..." if len(inside) > 5 else ""))
    if not model_path.is_file():
        raise UsageError(f"{model_path}: no such model file")

    labels_path = model_path.with_name(RunDir.LABELS)
    series_file = args.file and pathlib.Path(args.file).suffix.lower() in (
        ".ts", ".npz", ".tsf")
    texts = None if series_file else read_texts(args)
    quiet_tensorflow()
    import numpy as np

    from tuning.trial.evaluate import predicted_labels

    model = load_model(model_path)
    if model.name.endswith("_forecaster"):
        return print_forecasts(args, model, model_path)
    if isinstance(model.input, dict):  # a series model
        inputs, shown = read_series_inputs(args, model, model_path)
    elif series_file:
        raise UsageError(f"{model_path} labels texts; {args.file} holds "
                         "series (pass a text file, one text per line)")
    else:
        inputs = np.asarray(texts, dtype=object)
        shown = [t if len(t) <= 60 else t[:57] + "..." for t in texts]
    probs = model.predict(inputs, verbose=0)
    if model.name.endswith("_regressor"):  # one number per series
        for text, value in zip(shown, probs[:, 0]):
            print(f"{float(value):.6g}\t{text}")
        return 0
    names = (labels_path.read_text(encoding="utf-8").split()
             if labels_path.exists() else None)
    for text, p, index in zip(shown, probs, predicted_labels(probs)):
        index = int(index)
        if p.shape[-1] == 1:
            prob = float(p[0] if index else 1 - p[0])
        else:
            prob = float(p[index])
        label = names[index] if names else str(index)
        print(f"{label}\t{prob:.4f}\t{text}")
    return 0


def read_series_inputs(args, model, model_path: pathlib.Path
                       ) -> tuple[dict, list[str]]:
    """The series of `--file` as the series model takes them (raw values
    and lengths), read with the run's own data settings (`config.json`
    beside the model: channel order, CSV columns), and a line naming each.
    """
    from data_pipeline.config import DataConfig, DataError
    from data_pipeline.series import read_series
    from tuning.trial.run import RunDir

    if not args.file or args.texts:
        raise UsageError(f"{model_path} labels numeric series: pass them as "
                         "--file FILE (.ts, .npz or .csv)")
    try:
        data = RunDir(model_path.parent).read_config().data
    except (OSError, ValueError, KeyError, TypeError):
        data = DataConfig()  # a model without its run: the defaults
    try:
        found = read_series(
            pathlib.Path(args.file), task="unlabelled",
            channels_first=data.channels_first,
            value_columns=[c.strip() for c in data.value_columns.split(",")
                           if c.strip()],
            id_column=data.id_column, time_column=data.time_column,
            label_column=data.label_column)
    except DataError as e:
        raise UsageError(str(e)) from None
    channels = model.input["values"].shape[-1]
    if found.channels != channels:
        raise UsageError(f"{args.file}: series of {found.channels} "
                         f"channel(s); {model_path} takes {channels}")
    values, lengths = found.padded()
    # The model itself reads the first steps only (its run's length).
    cuts = [layer.steps for layer in model.layers
            if layer.name == "first_steps"]
    read = cuts[0] if cuts else None
    return ({"values": values, "lengths": lengths},
            [f"series {i + 1} ({n} steps"
             + (f", the first {read} read)" if read and n > read else ")")
             for i, n in enumerate(lengths)])


def print_forecasts(args, model, model_path: pathlib.Path) -> int:
    """Prints the next `horizon` values of each series of `--file` (a
    history read with the run's own data settings: target and input
    columns, time column), from its last `lookback` steps: a line per
    step, `series`, time (the next stamps, or `+k` without a time
    column) and value."""
    import numpy as np

    from data_pipeline.config import DataError
    from data_pipeline.forecast_files import read_forecast_csv, read_tsf
    from tuning.trial.run import RunDir

    if not args.file or args.texts:
        raise UsageError(f"{model_path} forecasts a series: pass its "
                         "history as --file FILE (.csv or .tsf)")
    try:
        data = RunDir(model_path.parent).read_config().data
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{model_path}: its run's config.json (the "
                         "lookback and the columns it reads) is not beside "
                         "it") from None
    path = pathlib.Path(args.file)
    target, time_column = _columns_of(data)
    if time_column and path.suffix.lower() != ".tsf":
        time_column = _time_column_in(path, time_column)
    try:
        found = (read_tsf(path, gaps=data.gaps)
                 if path.suffix.lower() == ".tsf" else read_forecast_csv(
                     path, target=target,
                     inputs=[c.strip() for c in data.value_columns.split(",")
                             if c.strip()],
                     time_column=time_column, id_column=data.id_column,
                     gaps=data.gaps))
    except DataError as e:
        # predict reads as the run did: its data.gaps, not set here.
        raise UsageError(str(e).replace(
            "set data.gaps=fill to interpolate them, or fill them in the "
            "file", "fill them in the file (the model's run refused gaps, "
            "data.gaps=refuse)")) from None
    short = [s for s in found.series if len(s) < data.lookback]
    if short:
        raise UsageError(f"{path}: series {short[0].name!r} has "
                         f"{len(short[0])} steps; the model reads the last "
                         f"{data.lookback} (data.lookback)")
    values = np.stack([s.values[-data.lookback:] for s in found.series])
    forecasts = model.predict(
        {"values": values,
         "lengths": np.full(len(values), data.lookback, np.int32)},
        verbose=0)
    print("series\ttime\tforecast")
    for series, forecast in zip(found.series, forecasts):
        times = (series.next_times(len(forecast))
                 or [f"+{k + 1}" for k in range(len(forecast))])
        for time, value in zip(times, forecast):
            print(f"{series.name}\t{time}\t{float(value):.6g}")
    return 0


def _time_column_in(path: pathlib.Path, name: str) -> str:
    """`name` if the history's header has it; else '' (the forecast is
    the same; its steps are shown as +1, +2, ...), said on stderr."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError):
        return name  # the reader says what is wrong
    if name in header:
        return name
    print(f"{path}: no column {name!r} (the run's time column): the "
          "forecast steps are shown as +1, +2, ...", file=sys.stderr)
    return ""


def _columns_of(data) -> tuple[str, str]:
    """(target, time column) a forecasting run reads: an embedded set's
    own, else the run's `data.target_column` and `data.time_column`."""
    from data_pipeline.forecast_files import EMBEDDED_FORECASTS

    if data.source in EMBEDDED_FORECASTS:
        return tuple(EMBEDDED_FORECASTS[data.source][2:][::-1])
    return data.target_column, data.time_column


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train one model")
    add_config_options(p, default_preset=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "compare", help="train every cell type on the same data and "
        "compare them for overfitting")
    add_config_options(p, default_preset="seed")
    p.add_argument("--cells", default=",".join(CELL_NAMES),
                   help="comma-separated cell types; default all")
    p.add_argument("--ensemble", action="store_true",
                   help="also average the cells' models (greedy selection "
                   "on validation) into WORKDIR/ensemble/, chosen if it "
                   "beats the best cell on validation")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("predict", help="label raw texts (or numeric series; "
                       "a regression model gives a number per series) with "
                       "a saved model")
    p.add_argument("--model", required=True,
                   help="a run's model.keras (or its folder)")
    p.add_argument("--file", help="read texts from FILE, one per line; for "
                   "a series model, the series of a .ts, .npz or .csv file")
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="texts to label; none or '-' reads standard input")
    add_verbose(p)
    p.set_defaults(func=cmd_predict)
