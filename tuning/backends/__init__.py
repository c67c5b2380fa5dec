"""The search backends: each picks values and schedules trials; trials
train through `tuning.study.runner.TrialTrainer` and are recorded by
`tuning.study.recorder.TrialRecorder`. Each backend module has one entry
point of the same shape, `run(workdir, spec, table, progress, *, resume,
runtime, address, report, status, verbose, trial_function)`.

    keras_tuner.py  Keras Tuner oracles and the tuner
    kt_workers.py   a Keras Tuner chief and its worker processes
    ray_tune.py     the Ray Tune driver: connects, runs, records trials
    ray_space.py    the space as Ray sees it: domains, searchers, schedulers
    ray_worker.py   what runs inside a Ray trial: the trainable, its reports
"""
