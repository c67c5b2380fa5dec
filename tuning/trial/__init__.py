"""The trial core: one run, start to end.

    run.py           the run's contract: `RunMetrics` (metrics.json), the
                     files of a run and of a study (`RunDir`, `StudyDir`),
                     a trial's `Status`
    config.py        the typed configuration and its one override path
    train.py         `train_and_evaluate(config, workdir)`, the one
                     training path (an outline of the steps below)
    data.py          the run's data, batched for its strategy
    optimization.py  the optimizer and loss a model is compiled with
    evaluate.py      scoring a model on a split, one decision rule
    export.py        the end-to-end model (raw strings in)
    callbacks.py     per-epoch history, best epoch and early stopping
    state.py         the crash-consistent training state (resume)
    devices.py       `--devices` and the distribution strategy
    verdict.py       overfitting, underfitting, healthy: the rules,
                     figures and the one ranking of runs
    workdir.py       one writer per workdir, one kind of job per workdir
    tb_layout.py     the TensorBoard custom-scalars layout every run writes
    files.py         atomic file writes
"""
