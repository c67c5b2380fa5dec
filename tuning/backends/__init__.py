"""The search backends: each picks values and schedules trials; trials
train through `tuning.study.runner.TrialTrainer` and are recorded by
`tuning.study.recorder.TrialRecorder`. Each backend module has one entry
point of the same shape, `run(workdir, spec, table, progress, *, resume,
runtime, address, report, status, verbose, trial_function)`.

    keras_tuner.py  Keras Tuner oracles and the tuner
    kt_workers.py   a Keras Tuner chief and its worker processes
    ray_tune.py     Ray Tune searchers, schedulers and the trainable
"""
