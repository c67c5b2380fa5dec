"""Runs, compares and tunes recurrent text models: one trial function and
what composes trials. Each folder is one room, and imports only go down:

    tuning/tune.py, compare.py   entry points: a study, a cell comparison
    tuning/backends/   Keras Tuner (and its worker processes), Ray Tune:
                       pick values and schedule trials, nothing else
    tuning/reporting/  read what runs wrote, for a person: report, plots,
                       tables
    tuning/study/      a study's spec and space, its results table, the
                       recorder and the trainer of its trials, HParams
                       records, best/
    tuning/trial/      one run, start to end: its contract (run.py), config,
                       the trial function, its training state, devices,
                       verdicts, workdirs

`tuning.trial.config` and `tuning.study.space` are plain Python (the
command line's `--help` and script rendering need no TensorFlow).
"""
