"""The trial core: one run, start to end.

    config.py     the typed configuration and its one override path
    train.py      `train_and_evaluate(config, workdir)`, the one training path
    callbacks.py  per-epoch history, best epoch and early stopping
    state.py      the crash-consistent training state (resume)
    devices.py    `--devices` and the distribution strategy
    verdict.py    overfitting, underfitting, healthy: the rules and figures
    workdir.py    one writer per workdir, one kind of job per workdir
    tb_layout.py  the TensorBoard custom-scalars layout every run writes
    files.py      atomic file writes
"""
