"""The one training path: `train_and_evaluate(config, workdir)`.

`rnntune train`, `rnntune compare` and the tuners all call it:

    metrics = train_and_evaluate(config, "runs/lstm")

It writes into `workdir` the files `tuning.trial.run.RunDir` names:

    config.json      resolved config, plus the runtime (replicas, batches;
                     for series, channels and the normalization)
    vocabulary.txt   the vectorizer's tokens, index order (texts only)
    labels.txt       class names, label index order (empty for a
                     regression)
    history.csv      one row per finished epoch
    metrics.json     the `RunMetrics`; written last, so it marks a
                     finished run
    model.keras      end-to-end model: raw strings (or raw series values
                     and lengths) in, probabilities (or, for a
                     regression, values) out
    logs/train, logs/validation, logs/gap   TensorBoard event files
    backup/          the training state while training runs
                     (`tuning.trial.state`)

A run killed at any moment continues from its last finished epoch when
called again on the same workdir and config. The steps live beside it:
`data` (read, vectorize, batch), `optimization` (optimizer and loss),
`evaluate` (metrics and scores), `export` (the end-to-end model).
"""

import dataclasses
import os
import shutil
import time
from collections.abc import Sequence

import keras
import tensorflow as tf

from data_pipeline.pipeline import VectorizedSplits
from data_pipeline.series import SeriesSplits
from data_pipeline.sources import TextSplits
from data_pipeline.text import save_vocabulary
from data_pipeline.vectors import FoundVectors
from models.builder import build_model, build_series_model
from models.config import cudnn_layers
from tuning.trial.callbacks import (BestEpoch, CommitEachEpoch,
                                    EpochHook, EpochHooks, EpochRecorder,
                                    LiveProgress, PlateauSchedule, Report,
                                    ShuffleForEpoch)
from tuning.trial.config import Config
from tuning.trial.data import (RunData, pretrained_vectors, prepare_data,
                               vectorized_data, warn_of_padded_final_steps,
                               warn_of_slow_kernels)
from tuning.trial.devices import describe as describe_devices
from tuning.trial.evaluate import (forecast_figures, forecast_test, score,
                                   score_exported)
from tuning.trial.forecast_plot import log_image, plot_forecast
from tuning.trial.export import export
from tuning.trial.files import write_atomic
from tuning.trial.optimization import compile_model, make_optimizer
from tuning.trial.provenance import provenance
from tuning.trial.run import RunDir, RunMetrics
from tuning.trial.state import BEST_WEIGHTS, TrainingState
from tuning.trial.tb_layout import write_layout
from tuning.trial.workdir import finished_metrics

# The TensorBoard runs it writes (`test`: a forecast's test span drawn).
LOG_RUNS = ("train", "validation", "gap", "test")


def train_and_evaluate(
    config: Config,
    workdir: str | os.PathLike,
    *,
    strategy: tf.distribute.Strategy | None = None,
    splits: TextSplits | SeriesSplits | None = None,
    vectorized: VectorizedSplits | None = None,
    report: Report = print,
    status: Report | None = None,
    epoch_hooks: Sequence[EpochHook] = (),
    keep_state: bool = False,
    evaluate_test: bool = True,
) -> RunMetrics:
    """Trains one model, evaluates it and writes the run into `workdir`.

    Args:
        config: the resolved configuration.
        workdir: the run's directory; created if missing. A finished run
            there with the same config is returned as is; an unfinished one
            resumes from its last finished epoch.
        strategy: distribution strategy (default: the current one).
        splits: texts or series to train on instead of `config.data`'s
            source (prepared here, not cached).
        vectorized: `config.data` already vectorized (shared by a
            study's trials); None: opened from the data cache, built
            there first if missing (`tuning.trial.data.vectorized_data`).
        report: receives one line per event (epoch finished, resume).
        status: receives a live line within each epoch (step, rate, time
            left), for a terminal; None for none.
        epoch_hooks: called as `hook(rows, last)` after each epoch's
            history row and training state are committed (`rows`: the
            history so far, this epoch's last; `last`: training ends with
            this epoch); the tuners report epochs through them.
        keep_state: keep the training state (`backup/`, best weights) after
            the run, so another run can continue from it (`continue_from`).
        evaluate_test: evaluate the test split at the end (on a finished
            run without test metrics, evaluate its exported model now). A
            study's trials and a comparison's cells train without: only
            the model they choose is evaluated, so the test split never
            takes part in a choice.

    Returns:
        The run's metrics, also written to `metrics.json`.

    Raises:
        DataError: the data source cannot be read.
        WorkdirError: `workdir` holds a run with another config.
    """
    run = RunDir(workdir)
    finished = finished_metrics(run, config)
    if finished is not None:
        if evaluate_test and not finished.diverged and not finished.tested:
            finished = add_test_metrics(run, finished, config, (
                vectorized or vectorized_data(config, splits=splits,
                                              report=report)))
        return reuse_finished(run, finished, keep_state=keep_state,
                              report=report)
    started = time.perf_counter()
    if vectorized is None:
        vectorized = vectorized_data(config, splits=splits, report=report)
    data = prepare_data(config, strategy or tf.distribute.get_strategy(),
                        vectorized=vectorized, report=report)
    warn_of_slow_kernels(config, report=report)
    warn_of_padded_final_steps(config, data.vectorized, report=report)
    vectors = pretrained_vectors(config, vectorized, report=report)
    state = TrainingState(run.path)
    resumed_after = open_workdir(run, state)
    write_run_files(run, config, data, vectors)
    # From here on the epochs are those of this corpus (config.json keeps
    # the config as given, which a resume compares).
    config = sized_to_corpus(config, vectorized.examples("train"),
                             report=report)
    model = create_model(config, data, state if resumed_after else None,
                         vectors)
    recorder, best, epochs = plan_epochs(config, run, resumed_after,
                                         report=report)
    live = [LiveProgress(status, epochs=config.train.epochs)] if status else []
    plateau = [PlateauSchedule(recorder, base=data.learning_rate,
                               objective=config.train.objective,
                               report=report)
               ] if config.train.lr_schedule == "plateau" else []
    train_model(model, data, initial_epoch=resumed_after, epochs=epochs,
                callbacks=[keras.callbacks.TerminateOnNaN(), *live,
                           *plateau, recorder,
                           best, keras.callbacks.TensorBoard(
                               run.logs, write_graph=False),
                           # After those: an epoch is only marked done once
                           # its history row and best weights are written.
                           CommitEachEpoch(state),
                           EpochHooks(recorder, epoch_hooks)])
    metrics = RunMetrics.from_history(
        recorder.rows, objective=config.train.objective,
        num_classes=data.num_classes, stopped_early=best.stopped_early,
        parameters=model.count_params(), baseline_loss=data.baseline_loss,
        task=config.data.task)
    if evaluate_test and "test" in data.datasets and not metrics.diverged:
        # The model that is exported, scored as every chosen model is.
        metrics = metrics.replace(**score(model, data.datasets["test"]))
        if config.data.task == "forecast":
            metrics = metrics.replace(**test_forecast(
                run, model, vectorized.forecast, epoch=metrics.epochs_run))
    if not metrics.diverged:
        export(run, (data.vectorized.vectorizer
                     if data.vectorized.kind == "text" else None), model)
    metrics = metrics.replace(wall_seconds=time.perf_counter() - started)
    run.write_metrics(metrics)
    # Only now that the run is recorded finished: killed before this, it
    # resumes from the state instead of training again.
    if not keep_state:
        state.discard()
    return metrics


def reuse_finished(run: RunDir, metrics: RunMetrics, *,
                   keep_state: bool, report: Report) -> RunMetrics:
    """A finished run's metrics, as they were recorded."""
    if not keep_state:  # killed between metrics.json and the cleanup
        TrainingState(run.path).discard()
    report(f"{run.path}: already finished, reusing its metrics")
    return metrics


def add_test_metrics(run: RunDir, metrics: RunMetrics, config: Config,
                     vectorized: VectorizedSplits) -> RunMetrics:
    """A finished run's metrics with its exported model's test figures,
    recorded in `metrics.json`."""
    metrics = metrics.replace(**score_exported(
        run.model_path, vectorized.test_inputs(),
        num_classes=len(vectorized.info.class_names),
        label_smoothing=config.train.label_smoothing))
    if config.data.task == "forecast" and metrics.tested:
        metrics = metrics.replace(**test_forecast(
            run, keras.models.load_model(run.model_path),
            vectorized.forecast, epoch=metrics.epochs_run))
    run.write_metrics(metrics)
    return metrics


def test_forecast(run: RunDir, model: keras.Model, windows, *,
                  epoch: int) -> dict:
    """A forecaster's test figures beside the trivial forecasts'
    (`forecast_figures`), its test span drawn into the run
    (`forecast.png`, and the image `test_forecast` in TensorBoard)."""
    forecast = forecast_test(model, windows)
    png = run / run.FORECAST_PLOT
    plot_forecast(windows, forecast, png)
    log_image(png, run.logs / "test", step=epoch)
    return forecast_figures(windows, forecast)


def sized_to_corpus(config: Config, train_examples: int, *,
                    report: Report) -> Config:
    """`config` training the epochs `train.min_examples_seen` asks of
    `train_examples` texts (said when they are more than `train.epochs`)."""
    epochs = config.train.epochs_for(train_examples)
    if epochs == config.train.epochs:
        return config
    report(f"train.min_examples_seen={config.train.min_examples_seen}: "
           f"{train_examples} training texts, so up to {epochs} epochs "
           f"rather than {config.train.epochs}")
    return dataclasses.replace(config, train=dataclasses.replace(
        config.train, epochs=epochs, min_examples_seen=0))


def open_workdir(run: RunDir, state: TrainingState) -> int:
    """Creates the run's directory and recovers its training state.

    Returns:
        The last finished epoch to resume after (0: a fresh start, the
        previous attempt's files dropped).
    """
    run.path.mkdir(parents=True, exist_ok=True)
    resumed_after = state.recover()
    if not resumed_after:
        state.start_fresh()
        # Only the runs this function writes: logs/ itself may hold a
        # tuner's HParams session for this trial.
        for name in LOG_RUNS:
            shutil.rmtree(run.logs / name, ignore_errors=True)
    return resumed_after


def write_run_files(run: RunDir, config: Config, data: RunData,
                    vectors: FoundVectors | None = None) -> None:
    """config.json (with the runtime, and what `vectors` came from),
    vocabulary.txt, labels.txt and the TensorBoard layout."""
    prepared = data.vectorized
    info = prepared.info
    runtime = {
        "replicas": data.strategy.num_replicas_in_sync,
        "per_replica_batch_size": data.per_replica_batch_size,
        "global_batch_size": data.global_batch_size,
        "strategy": type(data.strategy).__name__,
        "devices": describe_devices(data.strategy),
        "learning_rate": data.learning_rate,
        "data": info.description,
        "examples": {name: prepared.examples(name)
                     for name in prepared.labels},
        "class_names": list(info.class_names),
        "data_reading": info.stats,
        **({"vocabulary_size": prepared.vectorizer.vocabulary_size()}
           if prepared.kind == "text" else {
               "channels": prepared.channels,
               "steps": prepared.sequence_length,
               # Inside the model: what it does to raw values.
               "normalization": {"mean": prepared.mean.tolist(),
                                 "variance": prepared.variance.tolist()},
               # Regression: the output's scale, and the loss of
               # predicting the training mean (the verdict's baseline).
               **({"target": {"mean": prepared.target_mean,
                              "std": prepared.target_std},
                   "baseline_loss": data.baseline_loss}
                  if data.num_classes == 0 else {})}),
        "bucket_bounds": (list(prepared.bucket_bounds)
                          if config.data.bucket_by_length else None),
        # The word-vectors file: name, size, hash, words covered.
        **({"pretrained_embeddings": vectors.record} if vectors else {}),
        "precision": config.train.precision,
        # Whether each recurrent layer takes cuDNN on a GPU, and why not.
        "cudnn": cudnn_layers(config.model),
        # What the numbers were made with: versions, and a hash of each
        # split's texts and labels.
        **provenance(info),
    }
    run.write_config(config, runtime)
    if prepared.kind == "text":
        save_vocabulary(prepared.vectorizer, run / run.VOCABULARY)
    write_layout(run.path, regression=data.num_classes == 0)
    write_atomic(run / run.LABELS,
                 "".join(f"{name}\n" for name in info.class_names))


def create_model(config: Config, data: RunData,
                 state: TrainingState | None,
                 vectors: FoundVectors | None = None) -> keras.Model:
    """The compiled model under the run's strategy and precision, its
    embedding rows started from `vectors` where they hold a word, with the
    committed weights of `state` when it resumes."""
    # The policy applies to the layers built under it (the process-wide
    # default goes back at once: the next run may want another).
    keras.mixed_precision.set_global_policy(config.train.precision)
    try:
        with data.strategy.scope():
            model = _build(config, data)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with data.strategy.scope():
        if vectors is not None:
            embedding = model.get_layer("embedding").embeddings
            matrix = keras.ops.convert_to_numpy(embedding).copy()
            matrix[vectors.rows] = vectors.vectors
            embedding.assign(matrix)
        # Under mixed_float16 Keras wraps the optimizer in a
        # LossScaleOptimizer (dynamic loss scaling) by itself.
        compile_model(
            model, num_classes=data.num_classes,
            label_smoothing=config.train.label_smoothing,
            optimizer=make_optimizer(config.train, data.learning_rate,
                                     steps_per_epoch=data.steps_per_epoch))
        if state is not None:
            state.load(model)
    return model


def _build(config: Config, data: RunData) -> keras.Model:
    prepared = data.vectorized
    if prepared.kind == "series":
        return build_series_model(
            config.model, channels=prepared.channels,
            num_classes=data.num_classes, mean=prepared.mean,
            variance=prepared.variance,
            target=(prepared.target_mean, prepared.target_std),
            standardize_series=config.data.normalize == "series",
            horizon=(config.data.horizon if config.data.task == "forecast"
                     else 0),
            # A forecast reads the window it is given, the last steps.
            max_steps=(None if config.data.task == "forecast"
                       else config.data.sequence_length))
    return build_model(config.model, num_classes=data.num_classes,
                       vocab_size=prepared.vectorizer.vocabulary_size())


def plan_epochs(config: Config, run: RunDir, resumed_after: int, *,
                report: Report) -> tuple[EpochRecorder, BestEpoch, int]:
    """The history and best-epoch callbacks (carrying on from
    `resumed_after` epochs) and the epoch to train up to."""
    recorder = EpochRecorder(run.path, epochs=config.train.epochs,
                             report=report)
    best = BestEpoch(recorder, run / BEST_WEIGHTS,
                     objective=config.train.objective,
                     patience=config.train.early_stopping_patience,
                     restore=config.train.restore_best_weights)
    epochs = config.train.epochs
    if resumed_after and (resumed_after >= epochs or best.patience_spent()):
        report(f"resuming after epoch {resumed_after}/{epochs}: training "
               "had ended")
        epochs = resumed_after  # it had run its epochs or stopped early
    elif resumed_after:
        report(f"resuming at epoch {resumed_after + 1}/{epochs} from the "
               "last finished epoch")
    return recorder, best, epochs


def train_model(model: keras.Model, data: RunData, *, initial_epoch: int,
                epochs: int, callbacks: Sequence[keras.callbacks.Callback]
                ) -> None:
    """Fits from `initial_epoch` to `epochs`, validating every epoch
    (epoch `e` in epoch `e`'s shuffle order, resumed or not)."""
    model.fit(data.datasets["train"], validation_data=data.datasets[
        "validation"], initial_epoch=initial_epoch, epochs=epochs,
        callbacks=[ShuffleForEpoch(data.train_epochs), *callbacks],
        shuffle=False, verbose=0)
