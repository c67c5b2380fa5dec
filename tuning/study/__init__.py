"""A study: many trials of one search, whatever the backend.

    spec.py      `StudySpec` (what to search, how, the budget) and `Runtime`
    space.py     search spaces as data
    results.py   the results table, `trials.csv` / `trials.json`
    recorder.py  `TrialRecorder`: a trial's row and HParams session
    runner.py    `TrialTrainer`: calls the trial function; `run_trial`
    hparams.py   the TensorBoard HParams experiment and sessions
    progress.py  the progress line
    confirm.py   top-k confirmation with new seeds
    export.py    `best/`: the chosen trial's model
"""
