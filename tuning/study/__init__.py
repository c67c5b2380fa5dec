"""A study: many trials of one search, whatever the backend.

    spec.py      `StudySpec` (what to search, how, the budget) and `Runtime`
    space.py     search spaces as data
    results.py   the results table, `trials.csv` / `trials.json`
    runner.py    `TrialRunner`: records a trial and calls the trial function
    hparams.py   the TensorBoard HParams experiment and sessions
    progress.py  the progress line
    export.py    `best/`: the chosen trial's model
"""
